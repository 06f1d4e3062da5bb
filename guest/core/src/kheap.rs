//! The kernel heap: `kmalloc`/`kfree` over the heap region (PML4 slot 384),
//! `heap_max_bytes` of allocate-on-write pages, with a scavenger that gives
//! the frames of wholly free pages back.
//!
//! The allocator's metadata is the metadata `kmalloc` needs anyway, kept in
//! the VMM's reserved frames rather than in the heap itself, so neither an
//! allocation nor the scavenger ever touches heap memory (no heap fault can
//! happen under the VMM's lock): three bitmaps of 16-byte granules, *used*,
//! *start* (the first granule of a block) and *host* (a block the host got
//! from `Kmalloc`). A block is its start granule and the used granules after
//! it up to the next start or free granule. The kernel's blocks are first
//! fit from the start of the heap; the host's are first fit from a rotating
//! hint in the upper half and never leave it (`protocol::host_heap_offset`):
//! the lower half is the kernel's, so no host request can take the room
//! the kernel needs to answer the next one (`semantics`, **The kernel's
//! reserve**). Where a host block lands depends on the host's requests
//! alone, not on the kernel's own blocks (which come and go with how
//! requests are batched, and stay in the lower half while it has room): a
//! trace replays with the same addresses however it is sent. A heap page
//! whose 256 used bits are all zero is free, and the scavenger turns it
//! back to allocate-on-write.
//!
//! Costs: the maps are searched a 64-bit word at a time (`bits`); `Reset`
//! frees host blocks by scanning only the granules host blocks have held
//! since the last reset, and the scavenger reads the heap's page tables
//! directly, one table at a time.

use protocol::Reclaim;

use crate::backend::{FrameAccess, PhysMemory};
use crate::errors::{CommitError, Invalid, KmallocError, NotABlock};
use crate::frame_alloc::FrameAllocator;
use crate::layout::HEAP_START;
use crate::linear::user;
use crate::pte::Pte;
use crate::validate::LINEAR_MASK;
use crate::vmm::Vmm;

pub use crate::heapmap::GRANULE;
use crate::heapmap::{KHeap, HOST, START, USED};

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// A block of `size` bytes aligned to `align` (a power of two, at most
    /// 4096); `host` marks it as the host's.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn heap_alloc(&mut self, size: u64, align: u64, host: bool) -> Result<u64, KmallocError> {
        if size == 0 {
            return Err(Invalid::ZeroCount.into());
        }
        if !align.is_power_of_two() {
            return Err(Invalid::Misaligned.into());
        }
        if align > protocol::MAX_KMALLOC_ALIGN {
            return Err(Invalid::TooLarge.into());
        }
        let h = self.heap.ok_or(KmallocError::OutOfMemory)?;
        let n = size.div_ceil(GRANULE);
        let step = align.max(GRANULE) / GRANULE;
        if n > h.granules {
            return Err(KmallocError::OutOfMemory);
        }
        // The kernel's blocks first fit from the start, so that they reuse
        // pages that already have frames (an allocation must not need a
        // new frame while freed room is left in committed pages). The
        // host's from a rotating hint over the upper half, to spread over
        // fresh pages away from the kernel's, and never below it.
        let host_start = KHeap::host_start(h.granules);
        let used = h.map(USED);
        let mem = &mut self.mem;
        let found = if host {
            used.find_clear_run(mem, n, step, h.hint.max(host_start))
                .or_else(|| used.find_clear_run(mem, n, step, host_start))
                .or_else(|| {
                    // A deliberate bug, only for host-runner's test that
                    // the reproducer catches it (tests/inject_bugs.rs): a
                    // host block may take the kernel's half too.
                    cfg!(feature = "inject-heap-starve")
                        .then(|| used.find_clear_run(mem, n, step, 0))
                        .flatten()
                })
        } else {
            used.find_clear_run(mem, n, step, 0)
        };
        let g = found.ok_or(KmallocError::OutOfMemory)?;
        used.set_range(mem, g, g + n, true);
        if host {
            h.map(HOST).set_range(mem, g, g + n, true);
        }
        h.map(START).set(mem, g, true);
        if let Some(hp) = self.heap.as_mut() {
            if host {
                hp.hint = g + n;
                if hp.host_lo >= hp.host_hi {
                    (hp.host_lo, hp.host_hi) = (g, g + n);
                } else {
                    hp.host_lo = hp.host_lo.min(g);
                    hp.host_hi = hp.host_hi.max(g + n);
                }
                hp.host_blocks += 1;
            }
            hp.live += n * GRANULE;
        }
        Ok(HEAP_START + g * GRANULE)
    }

    /// The granule of a heap address, if inside the heap.
    fn granule(&self, addr: u64) -> Option<(KHeap, u64)> {
        let h = self.heap?;
        let off = addr.checked_sub(HEAP_START)?;
        (off % GRANULE == 0 && off / GRANULE < h.granules).then_some((h, off / GRANULE))
    }

    /// Frees the block at `addr`: the host's (`host`) or the kernel's.
    /// Answers its size.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn heap_free(&mut self, addr: u64, host: bool) -> Result<u64, NotABlock> {
        let bad = NotABlock { addr };
        let (h, g) = self.granule(addr).ok_or(bad)?;
        let (used, start, hosts) = (h.map(USED), h.map(START), h.map(HOST));
        let mem = &mut self.mem;
        if !start.get(mem, g) || hosts.get(mem, g) != host {
            return Err(bad);
        }
        // The block: its start granule, and the used granules after it up
        // to the next start or free granule.
        let end_free = used
            .find(mem, g + 1, h.granules, false)
            .unwrap_or(h.granules);
        let end = start.find(mem, g + 1, end_free, true).unwrap_or(end_free);
        start.set(mem, g, false);
        used.set_range(mem, g, end, false);
        hosts.set_range(mem, g, end, false);
        let size = (end - g) * GRANULE;
        if let Some(hp) = self.heap.as_mut() {
            hp.live -= size;
            hp.freed += size;
            if host {
                hp.host_blocks -= 1;
            }
        }
        Ok(size)
    }

    /// Whether `addr..addr + len` (`len > 0`) lies in one live host block.
    pub fn heap_host_range(&mut self, addr: u64, len: u64) -> bool {
        let Some(h) = self.heap else { return false };
        let Some(off) = addr.checked_sub(HEAP_START) else {
            return false;
        };
        let (first, last) = (off / GRANULE, (off + len - 1) / GRANULE);
        if last >= h.granules {
            return false;
        }
        let (used, start, hosts) = (h.map(USED), h.map(START), h.map(HOST));
        let mem = &mut self.mem;
        // Back from `first` to its block's start, through host granules.
        let mut g = first;
        loop {
            if !used.get(mem, g) || !hosts.get(mem, g) {
                return false;
            }
            if start.get(mem, g) {
                break;
            }
            match g.checked_sub(1) {
                Some(p) => g = p,
                None => return false,
            }
        }
        used.find(mem, first + 1, last + 1, false).is_none()
            && hosts.find(mem, first + 1, last + 1, false).is_none()
            && start.find(mem, first + 1, last + 1, true).is_none()
    }

    /// Frees every host block (`Reset`): only the granules host blocks have
    /// held since the last reset are looked at.
    pub(crate) fn heap_free_host_blocks(&mut self) {
        let Some(h) = self.heap else { return };
        if h.host_blocks > 0 {
            let (start, hosts) = (h.map(START), h.map(HOST));
            let mut g = h.host_lo;
            while let Some(s) = start.find(&mut self.mem, g, h.host_hi, true) {
                if hosts.get(&mut self.mem, s) {
                    let _ = self.heap_free(HEAP_START + s * GRANULE, true);
                }
                g = s + 1;
            }
        }
        if let Some(hp) = self.heap.as_mut() {
            (hp.host_lo, hp.host_hi) = (0, 0);
        }
    }

    /// Whether the pressure path should scan the heap.
    pub(crate) fn heap_wants_scan(&self) -> bool {
        self.heap.is_some_and(|h| h.freed > 0 || h.incomplete)
    }

    /// Returns the frames of wholly free present heap pages (one event
    /// each, while the ring has room); answers how many.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn heap_scavenge(&mut self) -> u64 {
        self.heap_scavenge_keeping(0)
    }

    /// As [`Vmm::heap_scavenge`], but keeps the lowest `keep` wholly free
    /// present pages: the pressure path leaves them so that the kernel can
    /// still build its answers (its blocks fit first from the start) when
    /// every other frame is taken.
    pub(crate) fn heap_scavenge_keeping(&mut self, mut keep: u64) -> u64 {
        let Some(h) = self.heap else { return 0 };
        let mut freed = 0;
        let pages = h.granules * GRANULE / 4096;
        let used = h.map(USED);
        let mut complete = true;
        // One page table (512 pages) at a time, its entries read in place.
        'tables: for first in (0..pages).step_by(512) {
            let linear = (HEAP_START + first * 4096) & LINEAR_MASK;
            let Some((table, _)) = self.leaf_slot(linear) else {
                continue;
            };
            for p in first..pages.min(first + 512) {
                let i = (p % 512) as usize;
                let raw = self.read_entry(table, i);
                if raw & 1 == 0 {
                    continue;
                }
                // The page's 256 granules are 4 words of the used map.
                if (p * 4..p * 4 + 4).any(|w| used.word(&mut self.mem, w) != 0) {
                    continue;
                }
                let linear = (HEAP_START + p * 4096) & LINEAR_MASK;
                let old = Pte::decode(raw, user(linear));
                let Pte::PresentRam { frame, .. } = old else {
                    continue;
                };
                if keep > 0 {
                    keep -= 1;
                    continue;
                }
                if self.ring.full() {
                    complete = false;
                    break 'tables;
                }
                if let Some(f) = self.set_leaf(table, i, linear, old, Pte::AllocOnWrite) {
                    f.flush(&mut self.mem);
                }
                let ok = self.frames.free(frame);
                debug_assert!(ok.is_ok(), "heap frame {frame:?} was not in use");
                self.record(Reclaim::Scavenged {
                    addr: HEAP_START + p * 4096,
                });
                freed += 1;
            }
        }
        if let Some(hp) = self.heap.as_mut() {
            hp.incomplete = !complete;
            if complete {
                hp.freed = 0;
            }
        }
        freed
    }

    /// A block of the kernel's own (its `#[global_allocator]`), committed:
    /// its pages have frames (taken from the heap's reserve first), so using
    /// it never faults. `None` if the heap or the frames ran out (nothing
    /// is left allocated then).
    pub fn kernel_alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        let addr = self.heap_alloc(size, align, false).ok()?;
        match self.heap_commit(addr, size) {
            Ok(()) => Some(addr),
            Err(_) => {
                let _ = self.heap_free(addr, false);
                None
            }
        }
    }

    /// Frees a block of the kernel's own.
    pub fn kernel_free(&mut self, addr: u64) -> Result<(), NotABlock> {
        self.heap_free(addr, false).map(|_| ())
    }

    /// Gives every allocate-on-write page of `addr..addr + size` a zeroed
    /// frame now (the kernel's own blocks, so that using them never faults);
    /// `Err` if frames ran out (the pages committed so far keep theirs).
    pub fn heap_commit(&mut self, addr: u64, size: u64) -> Result<(), CommitError> {
        let mut page = addr & !0xfff;
        while page < addr + size {
            let linear = page & LINEAR_MASK;
            let Some((table, i)) = self.leaf_slot(linear) else {
                return Err(CommitError::NotHeap);
            };
            if Pte::decode(self.read_entry(table, i), false) == Pte::AllocOnWrite {
                let frame = self
                    .alloc_heap_frame(true)
                    .ok_or(CommitError::OutOfFrames)?;
                self.mem.frame_bytes(frame).fill(0);
                let new = Pte::PresentRam {
                    frame,
                    writable: true,
                };
                if let Some(f) = self.set_leaf(table, i, linear, Pte::AllocOnWrite, new) {
                    f.flush(&mut self.mem);
                }
            }
            page += 4096;
        }
        Ok(())
    }
}
