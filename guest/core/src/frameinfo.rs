//! The frame-info table: which file page a present mmap frame holds, one
//! 8-byte record per managed frame in the VMM's metadata (format:
//! `protocol::formats`; the host reads it).
//!
//! # Invariants
//! - `FrameInfo` holds only where the table lies and how many frames it
//!   covers; its operations get the memory passed in, and a frame past the
//!   managed ones has no record (never written).
//! - When each record is set is `files`'s invariant.

use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::frames::{frame_at, frame_number};
use crate::pte::MAX_INDEX;

const RECORD: u64 = 1 << 63;

/// The frame-info table: one 8-byte record per managed frame, in the VMM's
/// metadata from `base` on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameInfo {
    /// The table's first frame.
    pub base: PhysFrame,
    /// Frames the table covers (the managed frames).
    pub frames: u64,
}

impl FrameInfo {
    /// The frame and byte offset of frame number `n`'s record.
    fn slot(&self, n: u64) -> (PhysFrame, usize) {
        let f = frame_at(frame_number(self.base) + n / 512);
        (f, usize_of(n % 512) * 8)
    }

    /// The `(file, page)` recorded for `frame`, if any.
    pub(crate) fn get<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame) -> Option<(u8, u64)> {
        let (f, at) = self.slot(frame_number(frame));
        let mut w = [0u8; 8];
        w.copy_from_slice(&mem.frame_bytes(f)[at..at + 8]);
        let v = u64::from_le_bytes(w);
        (v & RECORD != 0).then_some((((v >> 40) & 0xff) as u8, v & MAX_INDEX))
    }

    /// Records (or clears, with `None`) the file page `frame` holds; a
    /// frame past the managed ones has no record.
    pub(crate) fn set<M: PhysMemory>(
        &self,
        mem: &mut M,
        frame: PhysFrame,
        info: Option<(u8, u64)>,
    ) {
        let n = frame_number(frame);
        if n >= self.frames {
            return;
        }
        let v = info.map_or(0, |(file, page)| {
            RECORD | (u64::from(file) << 40) | (page & MAX_INDEX)
        });
        let (f, at) = self.slot(n);
        mem.frame_bytes(f)[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// Clears the records of frames `frames` (numbers; cut to the managed
    /// ones), a table frame at a time.
    pub(crate) fn clear<M: PhysMemory>(&self, mem: &mut M, frames: core::ops::Range<u64>) {
        let (mut n, end) = (frames.start, frames.end.min(self.frames));
        while n < end {
            let upto = end.min((n / 512 + 1) * 512);
            let (f, at) = self.slot(n);
            mem.frame_bytes(f)[at..at + usize_of(upto - n) * 8].fill(0);
            n = upto;
        }
    }
}
