//! The VMM: page tables of the managed space, the frame allocator, the
//! host's frames and the kernel virtual allocator, with their counters.
//!
//! Operations live in `ops` (map, unmap, convert, query), `hostframes`
//! (AllocFrames/FreeFrames) and [`crate::kvalloc`] (valloc/vfree); this
//! module holds the state, the page-fault handler and reset.

use protocol::{FaultReason, PhysRange, Stats};
use x86_64::structures::paging::PhysFrame;

use crate::backend::PhysMemory;
use crate::frames::{frame_number, FrameAllocator};
use crate::kvalloc::VALLOC_BITMAP_FRAMES;
use crate::paging::user;
use crate::pte::Pte;
use crate::validate::{is_canonical, Span, KERNEL_REQUEST_END, KERNEL_REQUEST_START, LINEAR_MASK};

/// Counters kept as the state changes (never recomputed by a walk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub present_pages: u64,
    pub alloc_on_write_pages: u64,
    pub page_table_frames: u64,
    pub host_frames: u64,
    pub valloc_pages: u64,
    pub faults_resolved: u64,
}

/// The VMM's own metadata in guest RAM, one contiguous run of frames taken
/// at construction: the host-frame ownership bitmap (bit `n` = the host holds
/// frame `n`), then the `Valloc` bitmap (bit `n` = page `n` of the region is
/// handed out).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meta {
    pub base: PhysFrame,
    pub host_frames: u64,
}

impl Meta {
    pub fn valloc_base(&self) -> u64 {
        frame_number(self.base) + self.host_frames
    }
}

/// The virtual memory manager over a [`PhysMemory`].
#[derive(Debug)]
pub struct Vmm<M> {
    pub(crate) mem: M,
    pub(crate) frames: FrameAllocator,
    pub(crate) pml4: PhysFrame,
    pub(crate) counters: Counters,
    pub(crate) meta: Option<Meta>,
}

/// The user space, as a span.
pub(crate) const USER_SPAN: Span = Span {
    start: 0,
    end: 1 << 47,
};
/// The kernel request space, as a span.
pub(crate) const KERNEL_SPAN: Span = Span {
    start: KERNEL_REQUEST_START & LINEAR_MASK,
    end: KERNEL_REQUEST_END & LINEAR_MASK,
};

impl<M: PhysMemory> Vmm<M> {
    /// The VMM over `mem`, allocating from `frames`, with the page tables
    /// rooted at `pml4` (whose managed slots must be empty).
    ///
    /// Takes one contiguous run of frames for its metadata (host-frame
    /// ownership bitmap and `Valloc` bitmap; see [`Vmm::metadata_range`])
    /// and then records the boot free count: the kernel lists that range in
    /// `Hello::boot_reserved` and reports `boot_free_frames` from
    /// [`Vmm::stats`]. With too little RAM for it, `AllocFrames` and
    /// `Valloc` always fail.
    pub fn new(mem: M, mut frames: FrameAllocator, pml4: PhysFrame) -> Self {
        let host_frames = frames.total_frames().div_ceil(4096 * 8).max(1);
        let meta = frames
            .alloc_contiguous(host_frames + VALLOC_BITMAP_FRAMES)
            .map(|base| Meta { base, host_frames });
        frames.set_boot_point();
        let mut vmm = Vmm {
            mem,
            frames,
            pml4,
            counters: Counters::default(),
            meta,
        };
        if let Some(m) = meta {
            for n in 0..host_frames + VALLOC_BITMAP_FRAMES {
                let f = crate::frames::frame_at(frame_number(m.base) + n);
                vmm.mem.frame_bytes(f).fill(0);
            }
        }
        vmm
    }

    /// The physical range of the VMM's metadata frames (empty if none), a
    /// boot reservation.
    pub fn metadata_range(&self) -> PhysRange {
        match self.meta {
            Some(m) => {
                let start = m.base.start_address().as_u64();
                PhysRange {
                    start,
                    end: start + (m.host_frames + VALLOC_BITMAP_FRAMES) * 4096,
                }
            }
            None => PhysRange { start: 0, end: 0 },
        }
    }

    /// The physical memory backend.
    pub fn mem(&mut self) -> &mut M {
        &mut self.mem
    }

    /// The frame allocator.
    pub fn frames(&self) -> &FrameAllocator {
        &self.frames
    }

    /// The PML4 frame.
    pub fn pml4(&self) -> PhysFrame {
        self.pml4
    }

    /// The counters of the VMM and the frame allocator.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        Stats {
            total_frames: self.frames.total_frames(),
            free_frames: self.frames.free_frames(),
            boot_free_frames: self.frames.boot_free_frames(),
            page_table_frames: c.page_table_frames,
            present_pages: c.present_pages,
            alloc_on_write_pages: c.alloc_on_write_pages,
            host_frames: c.host_frames,
            valloc_pages: c.valloc_pages,
            faults_resolved: c.faults_resolved,
            ..Stats::default()
        }
    }

    /// Adds (`add`) or removes a page of state `p` to the counters.
    pub(crate) fn count(&mut self, p: Pte, add: bool) {
        let c = match p {
            Pte::PresentRam { .. } | Pte::PresentMmap { .. } => &mut self.counters.present_pages,
            Pte::AllocOnWrite => &mut self.counters.alloc_on_write_pages,
            _ => return,
        };
        if add {
            *c += 1;
        } else {
            *c -= 1;
        }
    }

    /// The state of the page holding `addr` (any canonical address; a
    /// non-canonical one reads unusable).
    pub fn page_state(&mut self, addr: u64) -> Pte {
        if !is_canonical(addr) {
            return Pte::Unusable;
        }
        self.lookup(addr & LINEAR_MASK)
    }

    /// Where a touch of `addr` goes, as the CPU would find it: the frame and
    /// writability of a present page, `None` for a not-present one.
    pub fn translate(&mut self, addr: u64) -> Option<(PhysFrame, bool)> {
        match self.page_state(addr) {
            Pte::PresentRam { frame, writable }
            | Pte::PresentMmap {
                frame, writable, ..
            } => Some((frame, writable)),
            _ => None,
        }
    }

    /// The page-fault handler's decision for a fault at `addr` (a `write`
    /// or a read). Allocate-on-write pages get a zeroed frame (on reads
    /// too); `Err` is the fault a touch reports back.
    pub fn handle_fault(&mut self, addr: u64, write: bool) -> Result<(), FaultReason> {
        if !is_canonical(addr) {
            return Err(FaultReason::Unusable);
        }
        let linear = addr & LINEAR_MASK;
        let slot = linear >> 39;
        if slot == u64::from(crate::layout::DIRECT_MAP_PML4_SLOT)
            || slot == u64::from(crate::layout::KERNEL_PML4_SLOT)
        {
            return Err(FaultReason::Unusable);
        }
        let Some((table, i)) = self.leaf_slot(linear) else {
            return Err(FaultReason::Unusable);
        };
        let raw = self.read_entry(table, i);
        let old = Pte::decode(raw, user(linear));
        match old {
            Pte::AllocOnWrite => {
                let frame = self.frames.alloc().ok_or(FaultReason::OutOfMemory)?;
                self.mem.frame_bytes(frame).fill(0);
                let new = Pte::PresentRam {
                    frame,
                    writable: true,
                };
                // Not present before: nothing to flush.
                if let Some(f) = self.set_leaf(table, i, linear & !0xfff, old, new) {
                    f.flush(&mut self.mem);
                }
                self.counters.faults_resolved += 1;
                Ok(())
            }
            Pte::PresentRam { writable, .. } | Pte::PresentMmap { writable, .. } => {
                if write && !writable {
                    Err(FaultReason::ReadOnly)
                } else {
                    // A stale TLB entry: the entry allows the access now.
                    crate::backend::Flush::new(crate::paging::page_of(linear)).flush(&mut self.mem);
                    Ok(())
                }
            }
            _ => Err(FaultReason::Unusable),
        }
    }

    /// Back to the boot state: every managed page unusable and every table
    /// of the managed space freed, every host frame freed, every `Valloc`
    /// run freed, `faults_resolved` zero.
    pub fn reset(&mut self) {
        self.make_unusable(USER_SPAN);
        self.make_unusable(KERNEL_SPAN);
        self.free_all_host_frames();
        self.clear_valloc();
        self.counters.faults_resolved = 0;
    }
}
