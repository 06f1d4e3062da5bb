//! `Map`'s change of its pages: unusable pages made present usable RAM,
//! the run of entries a range covers in one page table at a time.
//!
//! When `Map` comes here it has checked that every page of its span is
//! unusable (a zero entry) and made every table the span needs. What is
//! left is a new frame and an entry for each page. [`PageTables::update`]
//! does that entry by entry through [`PageTables::set_leaf`]: the walk's
//! slot, the old entry decoded, the dirty bit looked at, the new entry
//! written, the page counted, and the PD entry's present count read and
//! written again, for every page. Under emulation that per-entry work cost
//! as much as the frame's zeroing.
//!
//! [`PageTables::fill_unusable`] does each page table's run at once:
//! - one walk finds the page table (not one step of the walk per entry);
//! - the run's entries are checked to be all zero in one scan;
//! - the frames are taken in address order, the order `update` took them
//!   in, so each page gets the frame it got before;
//! - the entries are written in one pass over the table, a chunk of up to
//!   [`CHUNK`] frames at a time;
//! - the counters, the count of evictable entries made and the PD entry's
//!   present count move once per chunk, and the no-evictable marks of the
//!   PD and PDPT entries above are cleared once per chunk of writable pages
//!   (`upper`).
//!
//! A run with an entry that is not zero (which `Map`'s checks rule out)
//! goes through `update` as before, so that every count stays exact
//! whatever the tables hold. No entry changes from present to anything,
//! so there is nothing to flush.

use x86_64::structures::paging::PhysFrame;

use super::PageTables;
use crate::backend::{FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::frame_alloc::{FrameAllocator, NoFrame};
use crate::linear::user;
use crate::pte::{self, Pte};
use crate::validate::Span;

/// Frames taken before their entries are written: a chunk of a run, kept
/// on the stack.
const CHUNK: usize = 64;

/// Linear span of one page table's entries (2 MiB).
const TABLE_SPAN: u64 = 1 << 21;

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// Makes every page of `span` present usable RAM, `writable` and
    /// `executable` as asked, each page with the frame `next` answers, in
    /// address order. Every page of `span` must be unusable; pages whose
    /// tables are missing are passed, as [`PageTables::update`] passes
    /// them. `Err` when `next` answers `None`: the pages before stay
    /// mapped, the rest stay unusable (the caller undoes the span).
    pub fn fill_unusable(
        &mut self,
        span: Span,
        writable: bool,
        executable: bool,
        next: &mut impl FnMut(&mut Self) -> Option<PhysFrame>,
    ) -> Result<(), NoFrame> {
        let mut at = span.start;
        while at < span.end {
            let end = (at - at % TABLE_SPAN)
                .saturating_add(TABLE_SPAN)
                .min(span.end);
            let run = Span { start: at, end };
            at = end;
            let Some((table, first)) = self.leaf_slot(run.start) else {
                continue;
            };
            let count = usize_of((run.end - run.start) >> 12);
            let zero = self
                .mem
                .table(table)
                .iter()
                .skip(first)
                .take(count)
                .all(|e| pte::raw(e) == 0);
            if zero {
                self.fill_run(table, first, run, (writable, executable), next)?;
            } else {
                self.update_run(run, (writable, executable), next)?;
            }
        }
        Ok(())
    }

    /// [`PageTables::fill_unusable`] for the run `run` of zero entries,
    /// from entry `first` of the page table `table`.
    fn fill_run(
        &mut self,
        table: PhysFrame,
        first: usize,
        run: Span,
        (writable, executable): (bool, bool),
        next: &mut impl FnMut(&mut Self) -> Option<PhysFrame>,
    ) -> Result<(), NoFrame> {
        let in_user = user(run.start);
        let page = |frame| Pte::PresentRam {
            frame,
            writable,
            executable,
        };
        let count = usize_of((run.end - run.start) >> 12);
        let mut done = 0;
        let mut frames = [None; CHUNK];
        while done < count {
            let n = CHUNK.min(count - done);
            let mut got = 0;
            for slot in &mut frames[..n] {
                *slot = next(self);
                if slot.is_none() {
                    break;
                }
                got += 1;
            }
            let entries = self.mem.table(table).iter_mut().skip(first + done);
            for (entry, frame) in entries.zip(frames[..got].iter().flatten()) {
                pte::set_raw(entry, page(*frame).encode(in_user));
            }
            if let Some(&Some(sample)) = frames[..got].first() {
                let linear = run.start + ((done as u64) << 12);
                self.counted(table, linear, page(sample), got as u64);
            }
            if got < n {
                return Err(NoFrame);
            }
            done += got;
        }
        Ok(())
    }

    /// `n` zero entries of `table`, the first at `linear`, were made the
    /// present page `new` (with their own frames): the counts that
    /// [`PageTables::set_leaf`] keeps, moved at once.
    fn counted(&mut self, table: PhysFrame, linear: u64, new: Pte, n: u64) {
        if n == 0 {
            return;
        }
        let evictable = pte::is_evictable(new.encode(user(linear)));
        self.evictable_made = self
            .evictable_made
            .wrapping_add(if evictable { n } else { 0 });
        self.counters.pages_changed(linear, Pte::Unusable, new, n);
        self.leaf_changed(table, linear, super::upper::Moved::More(n), evictable);
    }

    /// [`PageTables::fill_unusable`] for a run whose entries are not all
    /// zero, entry by entry through [`PageTables::update`]: also the
    /// reference the tests hold the run path to.
    pub(crate) fn update_run(
        &mut self,
        run: Span,
        (writable, executable): (bool, bool),
        next: &mut impl FnMut(&mut Self) -> Option<PhysFrame>,
    ) -> Result<(), NoFrame> {
        let mut out = Ok(());
        self.update(run, &mut |pt, _, _| {
            if out.is_err() {
                return None;
            }
            let Some(frame) = next(pt) else {
                out = Err(NoFrame);
                return None;
            };
            Some(Pte::PresentRam {
                frame,
                writable,
                executable,
            })
        });
        out
    }
}
