//! The kernel heap's bookkeeping: where its three granule bitmaps lie in the
//! VMM's metadata and the counts kept beside them (the heap's operations
//! are `kheap`).
//!
//! # Invariants
//! - `live` is the bytes of live blocks, `host_blocks` the host's live
//!   blocks, all within granules `host_lo..host_hi` (when non-empty).
//! - Host blocks lie in the upper half, from [`KHeap::host_start`] on.

use crate::bits::Bits;

/// Bytes of a granule (and the smallest alignment).
pub const GRANULE: u64 = 16;

/// Where the heap's bitmaps are and how it is doing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KHeap {
    /// Frame number of the used bitmap; start and host follow, `map_frames`
    /// frames each.
    pub base: u64,
    pub map_frames: u64,
    pub granules: u64,
    pub hint: u64,
    pub live: u64,
    pub freed: u64,
    pub incomplete: bool,
    /// Live host blocks.
    pub host_blocks: u64,
    /// Granules `host_lo..host_hi` hold every host block handed out since
    /// boot or the last `Reset` (empty when `host_lo >= host_hi`).
    pub host_lo: u64,
    pub host_hi: u64,
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
