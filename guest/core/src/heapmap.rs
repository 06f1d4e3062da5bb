//! The kernel heap's allocator: where its three granule bitmaps lie in the
//! VMM's metadata, the counts kept beside them, and `kmalloc`/`kfree` over
//! them, the memory passed in (the heap's pages, scavenger and commits are
//! `kheap`, which explains the design).
//!
//! # Invariants
//! - A block is its start granule (set in *start*) and the used granules
//!   after it up to the next start or free granule; every granule of a
//!   host block is set in *host*, no kernel block's is.
//! - `live` is the bytes of live blocks, `host_blocks` the host's live
//!   blocks, all within granules `host_lo..host_hi` (when non-empty).
//! - Host blocks lie in the upper half, from [`KHeap::host_start`] on
//!   (unless the `inject-heap-starve` bug is built in).
//! - `freed` counts the bytes freed since the scavenger last completed a
//!   pass; `incomplete` is set while a pass stopped early.
//! - [`KHeap`]'s fields are private: the heap's pages (`kheap`) and the
//!   VMM's reset change them only through the methods here.

use crate::backend::PhysMemory;
use crate::bits::Bits;
use crate::errors::{KmallocError, NotABlock};
use crate::layout::HEAP_START;

/// Bytes of a granule (and the smallest alignment).
pub const GRANULE: u64 = 16;

/// Where the heap's bitmaps are and how it is doing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KHeap {
    /// Frame number of the used bitmap; start and host follow, `map_frames`
    /// frames each.
    base: u64,
    map_frames: u64,
    granules: u64,
    hint: u64,
    live: u64,
    freed: u64,
    incomplete: bool,
    /// Live host blocks.
    host_blocks: u64,
    /// Granules `host_lo..host_hi` hold every host block handed out since
    /// boot or the last `Reset` (empty when `host_lo >= host_hi`).
    host_lo: u64,
    host_hi: u64,
}

impl KHeap {
    /// The granule where the host's blocks start (and `Reset` puts the
    /// hint back): the upper half of a heap of `granules`
    /// (`protocol::host_heap_offset`).
    pub fn host_start(granules: u64) -> u64 {
        protocol::host_heap_offset(granules * GRANULE) / GRANULE
    }

    /// Frames of one bitmap for a heap of `max` bytes.
    pub fn map_frames(max: u64) -> u64 {
        (max / GRANULE).div_ceil(8 * 4096)
    }

    /// An empty heap of `max` bytes whose (zeroed) bitmaps start at frame
    /// number `base`, [`KHeap::map_frames`] frames each.
    pub fn new(base: u64, max: u64) -> Self {
        let granules = max / GRANULE;
        KHeap {
            base,
            map_frames: Self::map_frames(max),
            granules,
            hint: Self::host_start(granules),
            live: 0,
            freed: 0,
            incomplete: false,
            host_blocks: 0,
            host_lo: 0,
            host_hi: 0,
        }
    }

    /// Bytes of live blocks.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Bytes freed since the scavenger last completed a pass.
    pub fn freed(&self) -> u64 {
        self.freed
    }

    /// Pages of the heap.
    pub fn pages(&self) -> u64 {
        self.granules * GRANULE / 4096
    }

    /// Whether the scavenger has anything to look for: bytes freed since
    /// its last complete pass, or a pass that stopped early.
    pub fn wants_scan(&self) -> bool {
        self.freed > 0 || self.incomplete
    }

    /// The scavenger's pass ended, `complete` or stopped early.
    pub fn scan_ended(&mut self, complete: bool) {
        self.incomplete = !complete;
        if complete {
            self.freed = 0;
        }
    }

    /// The granules that hold every live host block (`None` when there is
    /// none).
    pub fn host_granules(&self) -> Option<(u64, u64)> {
        (self.host_blocks > 0).then_some((self.host_lo, self.host_hi))
    }

    /// `Reset` freed every host block: the span they held is forgotten.
    pub fn host_blocks_freed(&mut self) {
        (self.host_lo, self.host_hi) = (0, 0);
    }

    /// `Reset`: the hint for host blocks back where boot left it.
    pub fn rewind_hint(&mut self) {
        self.hint = Self::host_start(self.granules);
    }
}

/// The three maps: used granules, block starts, host blocks.
pub(crate) const USED: u64 = 0;
pub(crate) const START: u64 = 1;
pub(crate) const HOST: u64 = 2;

impl KHeap {
    /// One of the three maps.
    pub(crate) fn map(&self, which: u64) -> Bits {
        Bits {
            base: self.base + which * self.map_frames,
            len: self.granules,
        }
    }
}

impl KHeap {
    /// A block of `size` (`> 0`) bytes aligned to `align` (a power of two,
    /// at most `MAX_KMALLOC_ALIGN`, checked by the caller); `host` marks it
    /// as the host's. Answers its address.
    pub(crate) fn alloc<M: PhysMemory>(
        &mut self,
        mem: &mut M,
        size: u64,
        align: u64,
        host: bool,
    ) -> Result<u64, KmallocError> {
        let n = size.div_ceil(GRANULE);
        let step = align.max(GRANULE) / GRANULE;
        if n > self.granules {
            return Err(KmallocError::OutOfMemory);
        }
        // The kernel's blocks first fit from the start, so that they reuse
        // pages that already have frames (an allocation must not need a
        // new frame while freed room is left in committed pages). The
        // host's from a rotating hint over the upper half, to spread over
        // fresh pages away from the kernel's, and never below it.
        let host_start = KHeap::host_start(self.granules);
        let used = self.map(USED);
        let found = if host {
            used.find_clear_run(mem, n, step, self.hint.max(host_start))
                .or_else(|| used.find_clear_run(mem, n, step, host_start))
                .or_else(|| {
                    // A deliberate bug, only for host-runner's test that
                    // the reproducer catches it (host-runner/tests/it/inject_bugs.rs): a
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
            self.map(HOST).set_range(mem, g, g + n, true);
        }
        self.map(START).set(mem, g, true);
        if host {
            self.hint = g + n;
            if self.host_lo >= self.host_hi {
                (self.host_lo, self.host_hi) = (g, g + n);
            } else {
                self.host_lo = self.host_lo.min(g);
                self.host_hi = self.host_hi.max(g + n);
            }
            self.host_blocks += 1;
        }
        self.live += n * GRANULE;
        Ok(HEAP_START + g * GRANULE)
    }

    /// The granule of a heap address, if inside the heap.
    fn granule(&self, addr: u64) -> Option<u64> {
        let off = addr.checked_sub(HEAP_START)?;
        (off % GRANULE == 0 && off / GRANULE < self.granules).then_some(off / GRANULE)
    }

    /// Frees the block at `addr`: the host's (`host`) or the kernel's.
    /// Answers its size.
    pub(crate) fn free<M: PhysMemory>(
        &mut self,
        mem: &mut M,
        addr: u64,
        host: bool,
    ) -> Result<u64, NotABlock> {
        let bad = NotABlock { addr };
        let g = self.granule(addr).ok_or(bad)?;
        let (used, start, hosts) = (self.map(USED), self.map(START), self.map(HOST));
        if !start.get(mem, g) || hosts.get(mem, g) != host {
            return Err(bad);
        }
        // The block: its start granule, and the used granules after it up
        // to the next start or free granule.
        let end_free = used
            .find(mem, g + 1, self.granules, false)
            .unwrap_or(self.granules);
        let end = start.find(mem, g + 1, end_free, true).unwrap_or(end_free);
        start.set(mem, g, false);
        used.set_range(mem, g, end, false);
        hosts.set_range(mem, g, end, false);
        let size = (end - g) * GRANULE;
        self.live -= size;
        self.freed += size;
        if host {
            self.host_blocks -= 1;
        }
        Ok(size)
    }

    /// Whether `addr..addr + len` (`len > 0`) lies in one live host block.
    pub(crate) fn host_range<M: PhysMemory>(&self, mem: &mut M, addr: u64, len: u64) -> bool {
        let Some(off) = addr.checked_sub(HEAP_START) else {
            return false;
        };
        let (first, last) = (off / GRANULE, (off + len - 1) / GRANULE);
        if last >= self.granules {
            return false;
        }
        let (used, start, hosts) = (self.map(USED), self.map(START), self.map(HOST));
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
}
