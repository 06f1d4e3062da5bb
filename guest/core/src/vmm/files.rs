//! Memory-mapped files: the images the host supplied at boot, `MapFile`,
//! loading a page on a fault, and the frame-info table that remembers which
//! file page a present mmap frame holds (format: `protocol::formats`).
//!
//! # Invariants
//! - A frame's frame-info record (`frameinfo`) is set exactly while a
//!   present mmap page holds the frame (set when a file page is loaded into
//!   it, cleared when the page leaves it: unmapped, dropped, swapped,
//!   converted to RAM).
//! - File images are read only: a file page is copied into a frame of the
//!   VMM's own, never mapped.

use protocol::Privilege;
use x86_64::structures::paging::PhysFrame;

use super::Vmm;
use crate::backend::{FrameAccess, PhysMemory};
use crate::errors::MapFileError;
use crate::frame_alloc::FrameAllocator;
use crate::frames::{frame_at, frame_number};
use crate::pte::Pte;
use crate::validate;

/// A file page that is not in the images (an entry naming a file or page
/// the kernel was not given).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct NoFilePage;

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// The `(file, page)` recorded for `frame`, if any.
    pub(super) fn frame_info(&mut self, frame: PhysFrame) -> Option<(u8, u64)> {
        self.finfo?.get(self.pt.mem(), frame)
    }

    /// Records (or clears, with `None`) the file page `frame` holds.
    pub(super) fn set_frame_info(&mut self, frame: PhysFrame, info: Option<(u8, u64)>) {
        if let Some(t) = self.finfo {
            if info.is_some() {
                let n = frame_number(frame);
                self.file_frames.add(n, n + 1);
            }
            t.set(self.pt.mem(), frame, info);
        }
    }

    /// Copies page `page` of file `file` into `frame`.
    pub(super) fn load_file_page(
        &mut self,
        file: u8,
        page: u64,
        frame: PhysFrame,
    ) -> Result<(), NoFilePage> {
        let img = self.files().get(usize::from(file)).ok_or(NoFilePage)?;
        if page >= img.pages {
            return Err(NoFilePage);
        }
        let src = frame_at(img.start / 4096 + page);
        let mem = self.pt.mem();
        let data = *mem.frame(src);
        mem.frame_bytes(frame).copy_from_slice(&data);
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
            .files()
            .get(usize::from(file))
            .copied()
            .ok_or(MapFileError::NoSuchFile)?;
        if file_page
            .checked_add(pages)
            .is_none_or(|end| end > img.pages)
        {
            return Err(MapFileError::BeyondFile);
        }
        self.claim_unusable(span)?;
        let need = self.pt.count_missing_tables(span, u64::MAX);
        if self.reserve(need).is_err() || self.pt.ensure_tables(span).is_err() {
            self.pt.update(span, &mut |_, _, _| None);
            return Err(MapFileError::OutOfMemory);
        }
        let start = span.start;
        self.pt.update(span, &mut |_, a, _| {
            Some(Pte::NotPresentMmap {
                file,
                page: file_page + ((a & crate::validate::LINEAR_MASK) - start) / 4096,
            })
        });
        Ok(())
    }
}
