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
//!
//! # Invariants
//! - Every page of the heap region has its tables from boot on (never
//!   freed: a 2 MiB region never used has its page table's frame under a
//!   whole allocate-on-write PD entry, filled at its first use) and is
//!   allocate-on-write or present RAM; a present page holds a frame taken
//!   from the top of memory.
//! - The scavenger returns only pages none of whose granules is used, so a
//!   live block never loses its frame; the kernel's own blocks are
//!   committed (present) before they are handed out, so using them never
//!   faults under the VMM's lock.
//! - The block bookkeeping is `heapmap::KHeap`'s (its own
//!   invariants there); this module adds the pages under it.

use protocol::Reclaim;
use x86_64::structures::paging::PhysFrame;

use super::Vmm;
use crate::backend::{FrameAccess, PhysMemory};
use crate::errors::{CommitError, Invalid, KmallocError, NotABlock};
use crate::frame_alloc::FrameAllocator;
use crate::heapmap::{GRANULE, HOST, START, USED};
use crate::layout::HEAP_START;
use crate::linear::user;
use crate::pte::Pte;
use crate::validate::LINEAR_MASK;

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
        let h = self.heap.as_mut().ok_or(KmallocError::OutOfMemory)?;
        h.alloc(self.pt.mem(), size, align, host)
    }

    /// Frees the block at `addr`: the host's (`host`) or the kernel's.
    /// Answers its size.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn heap_free(&mut self, addr: u64, host: bool) -> Result<u64, NotABlock> {
        let h = self.heap.as_mut().ok_or(NotABlock { addr })?;
        h.free(self.pt.mem(), addr, host)
    }

    /// Whether `addr..addr + len` (`len > 0`) lies in one live host block.
    pub fn heap_host_range(&mut self, addr: u64, len: u64) -> bool {
        self.heap
            .is_some_and(|h| h.host_range(self.pt.mem(), addr, len))
    }

    /// Frees every host block (`Reset`): only the granules host blocks have
    /// held since the last reset are looked at.
    pub(super) fn heap_free_host_blocks(&mut self) {
        let Some(h) = self.heap else { return };
        if let Some((lo, hi)) = h.host_granules() {
            let (start, hosts) = (h.map(START), h.map(HOST));
            let mut g = lo;
            while let Some(s) = start.find(self.pt.mem(), g, hi, true) {
                if hosts.get(self.pt.mem(), s) {
                    let _ = self.heap_free(HEAP_START + s * GRANULE, true);
                }
                g = s + 1;
            }
        }
        if let Some(hp) = self.heap.as_mut() {
            hp.host_blocks_freed();
        }
    }

    /// Whether the pressure path should scan the heap.
    pub(super) fn heap_wants_scan(&self) -> bool {
        self.heap.is_some_and(|h| h.wants_scan())
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
    pub(super) fn heap_scavenge_keeping(&mut self, mut keep: u64) -> u64 {
        let Some(h) = self.heap else { return 0 };
        let mut freed = 0;
        let pages = h.pages();
        let used = h.map(USED);
        let mut complete = true;
        // One page table (512 pages) with a present page at a time, its
        // entries read in place, until every present page was seen.
        let mut left = self.pt.counters().heap_pages();
        let mut from = 0;
        'tables: while let Some((first, table)) = self.heap_table_in_use(from, left) {
            from = first + 512;
            for p in first..pages.min(first + 512) {
                if left == 0 {
                    break 'tables;
                }
                let i = (p % 512) as usize;
                let raw = self.pt.read_entry(table, i);
                if raw & 1 == 0 {
                    continue;
                }
                left -= 1;
                // The page's 256 granules are 4 words of the used map.
                if (p * 4..p * 4 + 4).any(|w| used.word(self.pt.mem(), w) != 0) {
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
                if self.events.full() {
                    complete = false;
                    break 'tables;
                }
                self.pt
                    .set_leaf_flushed(table, i, linear, old, Pte::AllocOnWrite);
                let ok = self.pt.frames_mut().free(frame);
                debug_assert!(ok.is_ok(), "heap frame {frame:?} was not in use");
                self.events.record(Reclaim::Scavenged {
                    addr: HEAP_START + p * 4096,
                });
                freed += 1;
            }
        }
        if let Some(hp) = self.heap.as_mut() {
            hp.scan_ended(complete);
        }
        freed
    }

    /// Claims back from the frame allocator, just returned to its boot
    /// point by `Reset`, the frame of every present heap page (the heap
    /// keeps the pages of the kernel's live blocks). Stops once it has found
    /// `heap_pages` of them: the kernel's blocks lie first fit from the
    /// start, so after the scavenger that is a few tables at most.
    pub(super) fn heap_claim_frames(&mut self) {
        let Some(h) = self.heap else { return };
        let mut left = self.pt.counters().heap_pages();
        let mut from = 0;
        while let Some((first, table)) = self.heap_table_in_use(from, left) {
            from = first + 512;
            for p in first..h.pages().min(first + 512) {
                if left == 0 {
                    return;
                }
                let raw = self.pt.read_entry(table, (p % 512) as usize);
                if raw & 1 == 0 {
                    continue;
                }
                if let Pte::PresentRam { frame, .. } = Pte::decode(raw, false) {
                    let claimed = self.pt.frames_mut().claim(frame);
                    debug_assert!(claimed.is_ok(), "heap frame {frame:?} was in use");
                    left = left.saturating_sub(1);
                }
            }
        }
    }

    /// The first heap page table at or after page `from` (a multiple of
    /// 512) with a present page, as its first page and frame; none when
    /// `left` (the present pages not yet seen) is 0. Tables without a
    /// present page are passed over at their PD entry's count.
    fn heap_table_in_use(&mut self, from: u64, left: u64) -> Option<(u64, PhysFrame)> {
        let pages = self.heap?.pages();
        if left == 0 {
            return None;
        }
        (from..pages).step_by(512).find_map(|first| {
            let linear = (HEAP_START + first * 4096) & LINEAR_MASK;
            match self.pt.table_in_use(linear) {
                Some((table, n)) if n > 0 => Some((first, table)),
                _ => None,
            }
        })
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
            let Some((table, i)) = self.pt.leaf_slot(linear) else {
                return Err(CommitError::NotHeap);
            };
            if Pte::decode(self.pt.read_entry(table, i), false) == Pte::AllocOnWrite {
                let frame = self
                    .alloc_heap_frame(true)
                    .ok_or(CommitError::OutOfFrames)?;
                self.pt.mem().frame_bytes(frame).fill(0);
                let new = Pte::data(frame);
                self.pt
                    .set_leaf_flushed(table, i, linear, Pte::AllocOnWrite, new);
            }
            page += 4096;
        }
        Ok(())
    }
}
