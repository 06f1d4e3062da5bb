//! The frame-info table: which file page a present mmap frame holds, or
//! how many shared pages map a shared frame, one 8-byte record per managed
//! frame in the VMM's metadata (format: `protocol::formats`; the host reads
//! it): `0` none, `1 << 63 | file << 40 | page` a file page,
//! `1 << 62 | count` a shared frame's mapping count (bits 0–39).
//!
//! # Invariants
//! - `FrameInfo` holds only where the table lies and how many frames it
//!   covers; its operations get the memory passed in, and a frame past the
//!   managed ones has no record (never written).
//! - A record is of one kind at a time: [`FrameInfo::get`] reads only file
//!   records, [`FrameInfo::shared_count`] only shared ones.
//! - When each file record is set is `files`'s invariant; a shared record
//!   is set exactly while present shared entries name the frame, to their
//!   number (`vmm::share`, `holders`).

use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::frames::{frame_at, frame_number};
use crate::pte::MAX_INDEX;

const RECORD: u64 = 1 << 63;
/// The mark of a shared frame's record (`1 << 62 | count`).
const SHARED: u64 = 1 << 62;
/// The largest mapping count a shared record holds (bits 0–39).
pub(crate) const MAX_SHARED_COUNT: u64 = MAX_INDEX;

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

    /// The raw record of `frame` (0 for a frame past the managed ones).
    fn raw<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame) -> u64 {
        let n = frame_number(frame);
        if n >= self.frames {
            return 0;
        }
        let (f, at) = self.slot(n);
        let mut w = [0u8; 8];
        w.copy_from_slice(&mem.frame_bytes(f)[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// Writes the raw record of `frame` (nothing for a frame past the
    /// managed ones).
    fn write<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame, v: u64) {
        let n = frame_number(frame);
        if n >= self.frames {
            return;
        }
        let (f, at) = self.slot(n);
        mem.frame_bytes(f)[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    /// The `(file, page)` recorded for `frame`, if any.
    pub(crate) fn get<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame) -> Option<(u8, u64)> {
        let v = self.raw(mem, frame);
        (v & RECORD != 0).then_some((((v >> 40) & 0xff) as u8, v & MAX_INDEX))
    }

    /// The mapping count recorded for the shared frame `frame`: 0 when its
    /// record is not a shared one.
    pub(crate) fn shared_count<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame) -> u64 {
        let v = self.raw(mem, frame);
        if v & (RECORD | SHARED) == SHARED {
            v & MAX_SHARED_COUNT
        } else {
            0
        }
    }

    /// Records `count` (at most [`MAX_SHARED_COUNT`]) as the mapping count
    /// of the shared frame `frame`, or clears its record with 0.
    pub(crate) fn set_shared<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame, count: u64) {
        let v = if count == 0 {
            0
        } else {
            SHARED | count.min(MAX_SHARED_COUNT)
        };
        self.write(mem, frame, v);
    }

    /// Records (or clears, with `None`) the file page `frame` holds; a
    /// frame past the managed ones has no record.
    pub(crate) fn set<M: PhysMemory>(
        &self,
        mem: &mut M,
        frame: PhysFrame,
        info: Option<(u8, u64)>,
    ) {
        let v = info.map_or(0, |(file, page)| {
            RECORD | (u64::from(file) << 40) | (page & MAX_INDEX)
        });
        self.write(mem, frame, v);
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
