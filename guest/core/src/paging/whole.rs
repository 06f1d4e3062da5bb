//! The two walkers that change every page of a range to one area type,
//! `make_unusable` and `make_usable`, and `Reset`'s drop of the whole
//! managed space ([`PageTables::drop_managed`]); the walkers have a path for the
//! page tables the range covers whole: there a table's work is done at
//! once instead of entry by entry through [`PageTables::set_leaf`].
//!
//! - **Unusable:** a whole table is unlinked from its PD entry first, so
//!   the CPU can no longer walk to its pages; then every page's frame or
//!   swap slot is released and counted out, each present page flushed from
//!   the TLB once, and the table's frame freed. Past [`Flushes::LIMIT`]
//!   present pages, the walk ends with one full flush instead. Its entries are never
//!   rewritten: the frame goes back to the allocator (the frames of pages
//!   written through their entries first forgotten as zero,
//!   `crate::zeroes`). Allocate-on-write entries, which hold nothing, are
//!   counted out together.
//! - **Usable:** a whole table that holds only zero entries (one the
//!   convert just made) becomes a whole allocate-on-write PD entry
//!   (`protocol::formats`) over the same frame, its pages counted in one
//!   step: one entry written instead of 512, and one `invlpg` for the
//!   entry (none of the pages is present). One already all allocate on
//!   write is left as it is, filled (a touch under it would only fill it
//!   again).
//! - A **whole allocate-on-write** PD entry is left as it is by the convert
//!   to usable RAM; made unusable whole, its frame is freed without a read;
//!   made unusable in part, it is made a page table first (its frame
//!   filled, no frame taken) and walked as any other.
//!
//! Partly covered tables, and whole tables holding anything else, go entry
//! by entry with the same changes as before. The counters and the PD's
//! present count stay exact either way (`counters`, `pte::present_count`).
//!
//! What a page holds outside the tables (a frame's file-page record, a
//! swap slot) is let go through the [`Holders`] passed in: the walkers
//! change nothing else outside the page tables.

use core::convert::Infallible;
use core::ops::ControlFlow;

use x86_64::structures::paging::PhysFrame;

use super::PageTables;
use crate::backend::{flush_all, Flush, Flushes, FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::frame_alloc::FrameAllocator;
use crate::holders::Holders;
use crate::linear::{page_of, user, KERNEL_SPAN, USER_SPAN};
use crate::pte::{self, Pte};
use crate::validate::Span;
use crate::walk::{walk, Descend, Entry, Visit};

/// The seed's `VMM_convertPageAreaTypeToUsableRAM` for one page: the new
/// state, or `None` to leave it.
fn to_usable(old: Pte) -> Option<Pte> {
    match old {
        Pte::Unusable | Pte::NotPresentMmap { .. } => Some(Pte::AllocOnWrite),
        Pte::PresentMmap { frame, .. } => Some(Pte::data(frame)),
        Pte::PinnedRam { frame, writable } => Some(Pte::PresentRam {
            frame,
            writable,
            executable: false,
        }),
        Pte::PinnedAllocOnWrite => Some(Pte::AllocOnWrite),
        // Shared RAM is usable RAM already: left as it is.
        Pte::PresentRam { .. }
        | Pte::AllocOnWrite
        | Pte::OnSwap { .. }
        | Pte::Shared { .. }
        | Pte::Corrupt(_) => None,
    }
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// Every page of `span` unusable: frees frames, swap slots and tables.
    pub fn clear(&mut self, span: Span, holders: Holders<'_>) {
        let mut clear = Clear {
            holders,
            flushes: Flushes::default(),
        };
        let _ = walk(self, span.start, span.end, &mut clear);
        clear.flushes.finish(&mut self.mem);
    }

    /// Every page of the managed space (`USER_SPAN`, `KERNEL_SPAN`: whole
    /// PML4 slots) unusable at once, for `Reset`: every space but 0 is
    /// forgotten (the caller made space 0 current first), then each of
    /// space 0's managed PML4 entries is zeroed and one full flush drops
    /// what the CPU cached of them (TLB and paging-structure caches).
    /// Nothing below is changed, in any space, and only the page tables
    /// that hold a present page are read (for their dirty bits, `written`):
    /// the caller gives every frame taken since the boot point back at once
    /// (`FrameAllocator::back_to_boot_point`), the other spaces' PML4s,
    /// the tables' and the pages' with them (a user PML4 slot used in
    /// another space only included), and lets go in bulk of what pages
    /// hold outside the tables (frame-info records, swap slots, whichever
    /// space their pages were in). The managed counts go to zero.
    pub fn drop_managed(&mut self) {
        self.forget_written_pages();
        self.forget_spaces();
        let pml4 = self.mem.table(self.root);
        for span in [USER_SPAN, KERNEL_SPAN] {
            let slots = usize_of(span.start >> 39)..usize_of(span.end >> 39);
            let managed = pml4.iter_mut().skip(slots.start).take(slots.len());
            for e in managed.filter(|e| pte::raw(e) != 0) {
                pte::set_raw(e, 0);
            }
        }
        self.counters.managed_dropped();
        self.last_pd = None;
        flush_all(&mut self.mem);
    }

    /// Every page of `span` usable RAM, as the convert to usable RAM does
    /// it ([`to_usable`]); the caller made every table the span needs.
    pub fn make_usable(&mut self, span: Span, holders: Holders<'_>) {
        let _ = walk(self, span.start, span.end, &mut Usable(holders));
    }

    /// Makes the whole allocate-on-write PD entry `at` (`protocol::formats`)
    /// a page table: fills the frame it keeps with 512 allocate-on-write
    /// entries and makes the entry name it (present count 0). No state and
    /// no count changes, no frame is taken, and nothing needs a flush (the
    /// entry was not present, so the CPU cached nothing of it). Answers the
    /// table.
    pub(super) fn split(&mut self, at: Entry) -> PhysFrame {
        let table = pte::frame_of(at.raw);
        let lower = user(at.slot.base);
        self.fill_table(table, Pte::AllocOnWrite.encode(lower));
        self.write_entry(at.table, at.slot.index, pte::table_entry(table, lower));
        table
    }

    /// Writes `raw` to every entry of the page table `table` (no count
    /// changes: the caller's).
    pub(super) fn fill_table(&mut self, table: PhysFrame, raw: u64) {
        for e in self.mem.table(table).iter_mut() {
            pte::set_raw(e, raw);
        }
    }

    /// Makes the PD entry `at`, which names the page table `table`,
    /// whole allocate-on-write over that frame (its bytes no longer read),
    /// counting the table's `unusable` zero entries as now allocate on
    /// write; every other entry of the table must already have been
    /// allocate on write. None of its pages is present, but the entry was:
    /// the CPU may hold it in its paging-structure caches, and would go on
    /// walking to the frame after it is freed and reused, so it is
    /// invalidated (one `invlpg` in the region drops every cached
    /// upper-level entry).
    fn make_whole_aow(&mut self, at: Entry, table: PhysFrame, unusable: u64) {
        self.counters
            .pages_changed(at.slot.base, Pte::Unusable, Pte::AllocOnWrite, unusable);
        self.write_entry(at.table, at.slot.index, pte::whole_aow_entry(table));
        Flush::new(page_of(at.slot.base)).flush(&mut self.mem);
        self.last_pd = None;
    }

    /// One view of the page table `table`: how many of its entries are
    /// zero, how many are `aow` (the allocate-on-write entry of its half),
    /// and whether any is none of those nor `also` (another entry the
    /// caller handles at once; 0 for none).
    pub(super) fn census(&mut self, table: PhysFrame, aow: u64, also: u64) -> Census {
        self.mem
            .table(table)
            .iter()
            .fold(Census::default(), |c, e| {
                let raw = pte::raw(e);
                Census {
                    zero: c.zero + u64::from(raw == 0),
                    aow: c.aow + u64::from(raw == aow),
                    other: c.other || (raw != 0 && raw != aow && raw != also),
                }
            })
    }

    /// Changes the page at `lo` (entry `i` of `table`, state `old`, as its
    /// walker decoded it) to `new` if `new` differs, flushing a present
    /// entry.
    #[inline]
    pub(super) fn change(
        &mut self,
        table: PhysFrame,
        i: usize,
        lo: u64,
        old: Pte,
        new: Option<Pte>,
    ) {
        if let Some(new) = new.filter(|&n| n != old) {
            self.set_leaf_flushed(table, i, lo, old, new);
        }
    }
}

/// What [`PageTables::census`] finds in a page table.
#[derive(Clone, Copy, Default)]
pub(super) struct Census {
    /// Zero entries (unusable pages).
    pub zero: u64,
    /// Allocate-on-write entries.
    pub aow: u64,
    /// Whether any entry is neither (nor the caller's other entry).
    pub other: bool,
}

/// [`PageTables::clear`]: it only releases (it takes no frame and touches
/// no page), so its flushes may wait for its end ([`Flushes`]).
struct Clear<'a> {
    holders: Holders<'a>,
    flushes: Flushes,
}

impl<M: PhysMemory, A: FrameAllocator> Visit<PageTables<M, A>> for Clear<'_> {
    type Stop = Infallible;
    const PAGES: bool = true;

    fn page(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> ControlFlow<Infallible> {
        let lo = at.slot.base;
        let old = Pte::decode(at.raw, user(lo));
        pt.forget_written(at.raw);
        if let Some(new) = self.holders.release(pt, old).filter(|&n| n != old) {
            if let Some(flush) = pt.set_leaf(at.table, at.slot.index, lo, old, new) {
                self.flushes.add(flush, &mut pt.mem);
            }
        }
        ControlFlow::Continue(())
    }

    fn whole_table(
        &mut self,
        pt: &mut PageTables<M, A>,
        at: Entry,
        child: PhysFrame,
    ) -> ControlFlow<Infallible, bool> {
        let base = at.slot.base;
        // One view of the table first: its allocate-on-write entries (most
        // of a converted range) hold nothing to release and are counted
        // out together; whether any entry needs more than that.
        let aow = Pte::AllocOnWrite.encode(user(base));
        let census = pt.census(child, aow, 0);
        pt.counters
            .pages_changed(base, Pte::AllocOnWrite, Pte::Unusable, census.aow);
        // Unlinked first, so that no walk of the CPU reaches the pages any
        // more: each present one is then flushed once (or by the walk's
        // full flush at its end), and its entry needs
        // no rewrite (nor its PD entry's present count: the PD entry is
        // gone).
        pt.unlink_table(at);
        for i in (0..512).filter(|_| census.other) {
            let raw = pt.read_entry(child, i);
            if raw == 0 || raw == aow {
                continue;
            }
            let lo = base + ((i as u64) << 12);
            let old = Pte::decode(raw, user(lo));
            pt.forget_written(raw);
            let _ = self.holders.release(pt, old);
            pt.counters.page_changed(lo, old, Pte::Unusable);
            if old.is_present() {
                self.flushes.add(Flush::new(page_of(lo)), &mut pt.mem);
            }
        }
        // A table of zero entries: `Map`'s undo frees the tables it made
        // for pages it never filled this way.
        pt.drop_table(child, census.zero == 512);
        ControlFlow::Continue(true)
    }

    fn whole_aow(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> Descend<Infallible> {
        let slot = at.slot;
        if !slot.is_whole(2) {
            return ControlFlow::Continue(Some(pt.split(at)));
        }
        // Nothing to release and nothing present: the entry goes, with
        // the frame kept for its table, unread. It was not present since
        // it last named a table (that change was invalidated), so the CPU
        // caches nothing of it.
        pt.counters
            .pages_changed(slot.base, Pte::AllocOnWrite, Pte::Unusable, 512);
        pt.write_entry(at.table, slot.index, 0);
        pt.last_pd = None;
        // The frame kept for the table was never filled: its bytes are
        // not known.
        pt.drop_table(pte::frame_of(at.raw), false);
        ControlFlow::Continue(None)
    }

    fn left(&mut self, pt: &mut PageTables<M, A>, at: Entry, child: PhysFrame) {
        pt.free_if_empty(at, child);
    }
}

/// [`PageTables::make_usable`].
struct Usable<'a>(Holders<'a>);

impl<M: PhysMemory, A: FrameAllocator> Visit<PageTables<M, A>> for Usable<'_> {
    type Stop = Infallible;
    const PAGES: bool = true;

    fn page(&mut self, pt: &mut PageTables<M, A>, at: Entry) -> ControlFlow<Infallible> {
        let old = Pte::decode(at.raw, user(at.slot.base));
        if let Pte::PresentMmap { frame, .. } = old {
            self.0.forget_file_page(pt, frame);
        }
        let lo = at.slot.base;
        pt.change(at.table, at.slot.index, lo, old, to_usable(old));
        ControlFlow::Continue(())
    }

    fn whole_table(
        &mut self,
        pt: &mut PageTables<M, A>,
        at: Entry,
        child: PhysFrame,
    ) -> ControlFlow<Infallible, bool> {
        // Zero entries become allocate on write, which stay. A table of
        // zero entries only (one the convert just made) becomes one whole
        // allocate-on-write entry; one already all allocate on write is
        // left as it is (no change, and a touch under it would need it
        // filled again); any other is walked entry by entry.
        let aow = Pte::AllocOnWrite.encode(user(at.slot.base));
        let census = pt.census(child, aow, 0);
        match (census.zero, census.other) {
            (512, _) => pt.make_whole_aow(at, child, 512),
            (0, false) => {}
            _ => return ControlFlow::Continue(false),
        }
        ControlFlow::Continue(true)
    }

    fn left(&mut self, pt: &mut PageTables<M, A>, at: Entry, child: PhysFrame) {
        pt.free_if_empty(at, child);
    }
}
