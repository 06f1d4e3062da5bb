//! Memory-mapped files: the images the host supplied at boot, `MapFile`,
//! loading a page on a fault, and the frame-info table that remembers which
//! file page a present mmap frame holds (format: `protocol::formats`).
//!
//! # Invariants
//! - A frame's frame-info record is set exactly while a present mmap page
//!   holds the frame (set when a file page is loaded into it, cleared when
//!   the page leaves it: unmapped, dropped, swapped, converted to RAM).
//! - File images are read only: a file page is copied into a frame of the
//!   VMM's own, never mapped.
//! - `FrameInfo` holds only where the table lies and how many frames it
//!   covers; its operations get the memory passed in.

use protocol::Privilege;
use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::errors::MapFileError;
use crate::frame_alloc::FrameAllocator;
use crate::frames::{frame_at, frame_number};
use crate::pte::{Pte, MAX_INDEX};
use crate::validate::{self, canonical};
use crate::vmm::Vmm;

pub use crate::config::FileImage;

/// A file page that is not in the images (an entry naming a file or page
/// the kernel was not given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoFilePage;

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
    fn get<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame) -> Option<(u8, u64)> {
        let (f, at) = self.slot(frame_number(frame));
        let mut w = [0u8; 8];
        w.copy_from_slice(&mem.frame_bytes(f)[at..at + 8]);
        let v = u64::from_le_bytes(w);
        (v & RECORD != 0).then_some((((v >> 40) & 0xff) as u8, v & MAX_INDEX))
    }

    /// Records (or clears, with `None`) the file page `frame` holds; a
    /// frame past the managed ones has no record.
    fn set<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame, info: Option<(u8, u64)>) {
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
}

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// The `(file, page)` recorded for `frame`, if any.
    pub(crate) fn frame_info(&mut self, frame: PhysFrame) -> Option<(u8, u64)> {
        self.finfo?.get(&mut self.mem, frame)
    }

    /// Records (or clears, with `None`) the file page `frame` holds.
    pub(crate) fn set_frame_info(&mut self, frame: PhysFrame, info: Option<(u8, u64)>) {
        if let Some(t) = self.finfo {
            t.set(&mut self.mem, frame, info);
        }
    }

    /// Copies page `page` of file `file` into `frame`.
    pub(crate) fn load_file_page(
        &mut self,
        file: u8,
        page: u64,
        frame: PhysFrame,
    ) -> Result<(), NoFilePage> {
        let img = self.files.get(usize::from(file)).ok_or(NoFilePage)?;
        if page >= img.pages {
            return Err(NoFilePage);
        }
        let src = frame_at(img.start / 4096 + page);
        let data = *self.mem.frame(src);
        self.mem.frame_bytes(frame).copy_from_slice(&data);
        Ok(())
    }

    /// Makes `pages` unusable pages at `addr` not-present mmap pages of
    /// `file` from `file_page` (needs only tables).
    pub fn map_file(
        &mut self,
        addr: u64,
        pages: u64,
        file: u8,
        file_page: u64,
        privilege: Privilege,
    ) -> Result<(), MapFileError> {
        let span = validate::check_pages(addr, pages, None, privilege)?;
        let img = self
            .files
            .get(usize::from(file))
            .copied()
            .ok_or(MapFileError::NoSuchFile)?;
        if file_page
            .checked_add(pages)
            .is_none_or(|end| end > img.pages)
        {
            return Err(MapFileError::BeyondFile);
        }
        if let Some(bad) = self.find_first(span, &|p| p != Pte::Unusable) {
            return Err(MapFileError::NotUnusable {
                addr: canonical(bad),
            });
        }
        self.pin = Some(span);
        let need = self.count_missing_tables(span, u64::MAX);
        if self.reserve(need).is_err() || self.ensure_tables(span).is_err() {
            self.update(span, &mut |_: &mut Self, _, _| None);
            return Err(MapFileError::OutOfMemory);
        }
        let start = span.start;
        self.update(span, &mut |_: &mut Self, a, _| {
            Some(Pte::NotPresentMmap {
                file,
                page: file_page + ((a & crate::validate::LINEAR_MASK) - start) / 4096,
            })
        });
        Ok(())
    }
}
