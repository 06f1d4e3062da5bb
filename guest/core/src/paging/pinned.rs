//! The convert to pinned (never-swap) RAM, [`PageTables::make_pinned`]:
//! every page of a range becomes pinned RAM (`protocol::semantics`,
//! "Pinned RAM"), entry by entry, but for the page tables the range covers
//! whole that hold no page yet: those change at once.
//!
//! - A page table whose entries are all unusable, allocate on write or
//!   pinned allocate on write (none present, none holding a slot or a
//!   file page) is filled with pinned allocate-on-write entries in one
//!   pass, its pages counted in two steps.
//! - A whole allocate-on-write PD entry (`protocol::formats`) covered
//!   whole becomes a page table of pinned allocate-on-write entries over
//!   the frame it keeps (pinned pages have no whole-table form); covered
//!   in part, it is made a page table first ([`PageTables::split`]) and
//!   walked entry by entry.
//!
//! Nothing present changes on either path, so nothing needs a flush (nor
//! does it entry by entry: an entry that was not present needs none). No
//! table is left empty either: every page the convert covers ends pinned.

use core::convert::Infallible;
use core::ops::ControlFlow;

use x86_64::structures::paging::PhysFrame;

use super::PageTables;
use crate::backend::PhysMemory;
use crate::frame_alloc::FrameAllocator;
use crate::holders::Holders;
use crate::linear::user;
use crate::pte::{self, Pte};
use crate::validate::Span;
use crate::walk::{walk, Descend, Entry, Visit};

/// The convert to pinned RAM for one page that holds nothing outside its
/// entry worth moving: the new state, or `None` to leave it. (A swapped
/// page needs its data back first, and a present file page its record
/// cleared: [`PageTables::make_pinned`] does those.)
fn to_pinned(old: Pte) -> Option<Pte> {
    match old {
        Pte::Unusable | Pte::AllocOnWrite | Pte::NotPresentMmap { .. } => {
            Some(Pte::PinnedAllocOnWrite)
        }
        // Code is left: it is read-only, so never evicted already, and
        // pinned RAM is data (NX set).
        Pte::PresentRam {
            executable: true, ..
        } => None,
        Pte::PresentRam {
            frame, writable, ..
        } => Some(Pte::PinnedRam { frame, writable }),
        Pte::PresentMmap { frame, .. } => Some(Pte::PinnedRam {
            frame,
            writable: true,
        }),
        // Shared RAM is never sent out already: left as it is.
        Pte::OnSwap { .. }
        | Pte::PinnedRam { .. }
        | Pte::PinnedAllocOnWrite
        | Pte::Shared { .. }
        | Pte::Corrupt(_) => None,
    }
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// Every page of `span` pinned RAM. The caller made every table the
    /// span needs and made sure a frame is free for each page on swap: its
    /// data comes back now ([`Holders::swap_in`]), in address order. A slot
    /// the store refuses (a corrupt store) leaves its page on swap.
    pub fn make_pinned(&mut self, span: Span, holders: Holders<'_>) {
        let _ = walk(self, span.start, span.end, &mut Pinned(holders));
    }

    /// Fills the page table `table` (of the pages from `base` on) with
    /// pinned allocate-on-write entries, where it held `zero` unusable and
    /// `aow` allocate-on-write pages and nothing but pinned allocate-on-write
    /// ones besides.
    fn fill_pinned(&mut self, table: PhysFrame, base: u64, zero: u64, aow: u64) {
        self.fill_table(table, Pte::PinnedAllocOnWrite.encode(user(base)));
        self.counters
            .pages_changed(base, Pte::Unusable, Pte::PinnedAllocOnWrite, zero);
        self.counters
            .pages_changed(base, Pte::AllocOnWrite, Pte::PinnedAllocOnWrite, aow);
    }
}

/// [`PageTables::make_pinned`]'s walk (see the module docs).
struct Pinned<'a>(Holders<'a>);

impl<M: PhysMemory, A: FrameAllocator> Visit<PageTables<M, A>> for Pinned<'_> {
    type Stop = Infallible;
    const PAGES: bool = true;

    fn page(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> ControlFlow<Infallible> {
        let lo = at.slot.base;
        let old = Pte::decode(at.raw, user(lo));
        let new = match old {
            Pte::OnSwap { slot } => self.0.swap_in(pt, slot).map(|frame| Pte::PinnedRam {
                frame,
                writable: true,
            }),
            Pte::PresentMmap { frame, .. } => {
                self.0.forget_file_page(pt, frame);
                to_pinned(old)
            }
            _ => to_pinned(old),
        };
        pt.change(at.table, at.slot.index, lo, old, new);
        ControlFlow::Continue(())
    }

    fn whole_table(
        &mut self,
        pt: &mut PageTables<M, A>,
        at: Entry,
        child: PhysFrame,
    ) -> ControlFlow<Infallible, bool> {
        let base = at.slot.base;
        let lower = user(base);
        let (aow, pinned) = (
            Pte::AllocOnWrite.encode(lower),
            Pte::PinnedAllocOnWrite.encode(lower),
        );
        let census = pt.census(child, aow, pinned);
        if census.other {
            return ControlFlow::Continue(false);
        }
        if census.zero + census.aow > 0 {
            pt.fill_pinned(child, base, census.zero, census.aow);
        }
        ControlFlow::Continue(true)
    }

    fn whole_aow(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> Descend<Infallible> {
        let slot = at.slot;
        if !slot.is_whole(2) {
            return ControlFlow::Continue(Some(pt.split(at)));
        }
        // As `split`, but its 512 allocate-on-write pages written pinned
        // at once: no frame is taken, and the entry was not present, so
        // the CPU cached nothing of it.
        let table = pte::frame_of(at.raw);
        pt.fill_pinned(table, slot.base, 0, 512);
        let entry = pte::table_entry(table, user(slot.base));
        pt.write_entry(at.table, slot.index, entry);
        ControlFlow::Continue(None)
    }
}
