//! Simulated physical memory: frames in a `Vec`, a simulated TLB and CR3,
//! and the same frame check as the kernel's direct map.
//!
//! # Invariants
//! - Both views of a frame (table, bytes) always show the same bits.
//! - Once [`SimMemory::restrict`]ed, the VMM gets a view only of a frame
//!   in its ranges (what the kernel's `DirectMap` checks); the CPU's touches
//!   ([`SimMemory::cpu_bytes`], [`SimMemory::cpu_translate`]) are not
//!   checked, as the MMU does not ask.
//! - The CPU walks from `cr3` only, which changes only when the VMM loads a
//!   root ([`PhysMemory::load_root`], which empties the TLB as a CR3 write
//!   does) or the machine starts ([`SimMemory::start_at`]): a VMM that
//!   records a switch without loading the root leaves the CPU in the old
//!   space, as the real CPU would be.

use crate::conv::usize_of;
use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;
use x86_64::structures::paging::{Page, PageTable, PhysFrame};

use crate::backend::{FrameRefused, PhysMemory};
use crate::frames::frame_number;
use crate::layout::{DIRECT_MAP_PML4_SLOT, KERNEL_PML4_SLOT};
use crate::pte;

/// One simulated frame: never written (zero), last seen as bytes, or last
/// seen as a table. Switching views converts the contents, so both views
/// always show the same bits.
#[derive(Debug)]
enum SimFrame {
    Zero,
    Bytes(Box<[u8; 4096]>),
    Table(Box<PageTable>),
}

/// A translation in the simulated TLB: the frame, whether it allows
/// writing, and whether it was written through since it was cached (the
/// CPU set the level-1 entry's dirty bit then, and sets it again only
/// through a new translation, after a flush).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cached {
    pub frame: PhysFrame,
    pub writable: bool,
    pub dirty: bool,
}

impl Cached {
    /// A translation just cached, not yet written through.
    pub fn new(frame: PhysFrame, writable: bool) -> Self {
        Cached {
            frame,
            writable,
            dirty: false,
        }
    }
}

/// Simulated physical memory: `frames` frames, allocated lazily.
#[derive(Debug)]
pub struct SimMemory {
    frames: Vec<SimFrame>,
    /// Pages flushed from the (simulated) TLB, in order.
    pub flushed: Vec<Page>,
    /// Full flushes so far (each empties the TLB, and covers every page).
    pub full_flushes: u64,
    /// The simulated TLB: page address → what the CPU cached of it,
    /// filled by touches, emptied page by page by flushes.
    pub tlb: BTreeMap<u64, Cached>,
    /// Test support: flushes are recorded but leave the TLB as it is (a
    /// CPU whose `invlpg` does nothing, to test what catches a missing
    /// flush).
    pub ignore_flushes: bool,
    /// Test support: page-table frames looked at so far (the cost of the
    /// VMM's walks, which repeats where time does not).
    pub table_reads: u64,
    /// The frames the VMM may use, as the kernel's direct map checks them
    /// (`None`: every frame of the memory).
    guard: Option<Guard>,
    /// The CPU's CR3: the PML4 its walks start from (`None`: no root yet,
    /// nothing translates).
    pub cr3: Option<PhysFrame>,
    /// Roots loaded by the VMM so far.
    pub root_loads: u64,
    /// The PML4 the machine started with: every root loaded must hold its
    /// entries for the kernel's own slots.
    boot_root: Option<PhysFrame>,
}

/// Frame numbers the VMM may write, and those it may only read.
#[derive(Debug, Clone)]
struct Guard {
    write: Vec<Range<u64>>,
    read: Vec<Range<u64>>,
}

impl SimMemory {
    /// A memory of `frames` zeroed frames.
    pub fn new(frames: u64) -> Self {
        SimMemory {
            frames: (0..frames).map(|_| SimFrame::Zero).collect(),
            flushed: Vec::new(),
            full_flushes: 0,
            tlb: BTreeMap::new(),
            ignore_flushes: false,
            table_reads: 0,
            guard: None,
            cr3: None,
            root_loads: 0,
            boot_root: None,
        }
    }

    /// Starts the CPU at `root` (the boot PML4: what the kernel finds in
    /// CR3), against which every root loaded later is checked.
    pub fn start_at(&mut self, root: PhysFrame) {
        self.cr3 = Some(root);
        self.boot_root = Some(root);
        self.tlb.clear();
    }

    /// The frame and writability the CPU finds for `addr` walking from
    /// `cr3` (the TLB aside): `None` where an entry on the way is not
    /// present, is a huge page (never used in the managed space) or names
    /// a frame beyond the memory.
    pub fn cpu_translate(&mut self, addr: u64) -> Option<(PhysFrame, bool)> {
        let (n, i, writable) = self.cpu_walk(addr)?;
        let raw = pte::raw(&self.table_at(n)[i]);
        (raw & 1 != 0).then(|| (pte::frame_of(raw), writable && raw & 2 != 0))
    }

    /// Whether every byte of `frame` is zero, read in whichever view the
    /// frame is in (without turning it into another): a frame past the
    /// memory holds nothing.
    pub fn holds_only_zeros(&self, frame: PhysFrame) -> bool {
        match self.frames.get(usize_of(frame_number(frame))) {
            None | Some(SimFrame::Zero) => true,
            Some(SimFrame::Bytes(b)) => b.iter().all(|&x| x == 0),
            Some(SimFrame::Table(t)) => t.is_empty(),
        }
    }

    /// What the CPU does on the first write through a TLB entry: walks
    /// from `cr3` to the level-1 entry of `addr` and sets its dirty bit,
    /// if the entry is present and every entry on the way is (as
    /// [`SimMemory::cpu_translate`]).
    pub fn cpu_set_dirty(&mut self, addr: u64) {
        let Some((n, i, _)) = self.cpu_walk(addr) else {
            return;
        };
        let entry = &mut self.table_at(n)[i];
        let raw = pte::raw(entry);
        if raw & 1 != 0 {
            pte::set_raw(entry, raw | pte::DIRTY);
        }
    }

    /// The CPU's walk from `cr3` to the level-1 entry of `addr`: the page
    /// table's frame number, the entry's index and whether every upper
    /// entry on the way allows writing; `None` where an upper entry is not
    /// present, is a huge page or names a frame beyond the memory.
    fn cpu_walk(&mut self, addr: u64) -> Option<(usize, usize, bool)> {
        let mut table = self.cr3?;
        let mut writable = true;
        for level in (2..=4u32).rev() {
            let n = usize_of(frame_number(table));
            if n >= self.frames.len() {
                return None;
            }
            let i = usize_of((addr >> (12 + 9 * (level - 1))) & 511);
            let raw = pte::raw(&self.table_at(n)[i]);
            if raw & 1 == 0 || raw & HUGE != 0 {
                return None;
            }
            writable &= raw & 2 != 0;
            table = pte::frame_of(raw);
        }
        let n = usize_of(frame_number(table));
        (n < self.frames.len()).then(|| (n, usize_of((addr >> 12) & 511), writable))
    }

    /// From now on refuses the VMM every frame outside `write` (ranges of
    /// frame numbers) for writing, and outside `write` and `read` for
    /// reading, as the kernel refuses frames that are not RAM the allocator
    /// manages.
    pub fn restrict(&mut self, write: &[Range<u64>], read: &[Range<u64>]) {
        self.guard = Some(Guard {
            write: write.to_vec(),
            read: read.to_vec(),
        });
    }

    /// Whether the VMM may use `frame` (for writing if `write`).
    fn check(&self, frame: PhysFrame, write: bool) -> Result<usize, FrameRefused> {
        let n = frame_number(frame);
        let inside = |rs: &[Range<u64>]| rs.iter().any(|r| r.contains(&n));
        let allowed = usize_of(n) < self.frames.len()
            && self
                .guard
                .as_ref()
                .is_none_or(|g| inside(&g.write) || (!write && inside(&g.read)));
        if allowed {
            Ok(usize_of(n))
        } else {
            Err(FrameRefused { frame, write })
        }
    }

    /// The frame `frame` as the CPU writes it through a present entry: no
    /// check but the memory's size (the MMU does not ask the kernel).
    ///
    /// # Panics
    /// If `frame` is beyond the simulated memory.
    pub fn cpu_bytes(&mut self, frame: PhysFrame) -> &mut [u8; 4096] {
        let n = usize_of(frame_number(frame));
        let len = self.frames.len();
        assert!(
            n < len,
            "frame {n} outside the simulated memory of {len} frames"
        );
        self.bytes_at(n)
    }

    fn table_at(&mut self, n: usize) -> &mut PageTable {
        let slot = &mut self.frames[n];
        let table = match core::mem::replace(slot, SimFrame::Zero) {
            SimFrame::Table(t) => t,
            SimFrame::Zero => Box::new(PageTable::new()),
            SimFrame::Bytes(b) => {
                let mut t = Box::new(PageTable::new());
                for (e, chunk) in t.iter_mut().zip(b.chunks_exact(8)) {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(chunk);
                    pte::set_raw(e, u64::from_le_bytes(w));
                }
                t
            }
        };
        *slot = SimFrame::Table(table);
        match slot {
            SimFrame::Table(t) => t,
            _ => unreachable!(),
        }
    }

    fn bytes_at(&mut self, n: usize) -> &mut [u8; 4096] {
        let slot = &mut self.frames[n];
        let bytes = match core::mem::replace(slot, SimFrame::Zero) {
            SimFrame::Bytes(b) => b,
            SimFrame::Zero => Box::new([0u8; 4096]),
            SimFrame::Table(t) => {
                let mut b = Box::new([0u8; 4096]);
                for (e, chunk) in t.iter().zip(b.chunks_exact_mut(8)) {
                    chunk.copy_from_slice(&pte::raw(e).to_le_bytes());
                }
                b
            }
        };
        *slot = SimFrame::Bytes(bytes);
        match slot {
            SimFrame::Bytes(b) => b,
            _ => unreachable!(),
        }
    }
}

// SAFETY: every view is of one frame's own boxed contents, borrowed from
// `self`; `check` refuses frames beyond the memory and, once `restrict`ed,
// frames outside the VMM's ranges.
#[allow(unsafe_code)]
unsafe impl PhysMemory for SimMemory {
    fn try_table(&mut self, frame: PhysFrame) -> Result<&mut PageTable, FrameRefused> {
        let n = self.check(frame, true)?;
        self.table_reads += 1;
        Ok(self.table_at(n))
    }

    fn try_frame_bytes(&mut self, frame: PhysFrame) -> Result<&mut [u8; 4096], FrameRefused> {
        let n = self.check(frame, true)?;
        Ok(self.bytes_at(n))
    }

    fn try_frame(&mut self, frame: PhysFrame) -> Result<&[u8; 4096], FrameRefused> {
        let n = self.check(frame, false)?;
        Ok(self.bytes_at(n))
    }

    fn flush(&mut self, page: Page) {
        if !self.ignore_flushes {
            self.tlb.remove(&page.start_address().as_u64());
        }
        self.flushed.push(page);
    }

    fn flush_all(&mut self) {
        if !self.ignore_flushes {
            self.tlb.clear();
        }
        self.full_flushes += 1;
    }

    fn load_root(&mut self, root: PhysFrame) {
        if let Err(e) = self.check(root, true) {
            panic!("{e} (as a root)");
        }
        if let Some(boot) = self.boot_root {
            // The PML4 slots of the kernel's own mappings (direct map,
            // image).
            let own = [DIRECT_MAP_PML4_SLOT, KERNEL_PML4_SLOT].map(usize::from);
            // The accessed bit is the CPU's, set in each PML4 on its own.
            let mut entry = |f: PhysFrame, slot: usize| {
                pte::raw(&self.table_at(usize_of(frame_number(f)))[slot]) & !pte::ACCESSED
            };
            for slot in own {
                let want = entry(boot, slot);
                let got = entry(root, slot);
                assert_eq!(
                    got, want,
                    "VMM bug: root {root:?} loaded without the kernel's PML4 entry {slot}"
                );
            }
        }
        // A CR3 write drops every translation (no PCID, no global page in
        // the managed space), whatever `ignore_flushes` says of `invlpg`.
        self.tlb.clear();
        self.cr3 = Some(root);
        self.root_loads += 1;
    }
}

/// The huge-page bit of an upper-level entry.
const HUGE: u64 = 1 << 7;
