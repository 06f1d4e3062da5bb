//! The walks of [`PageTables`] that look: a page's entry and state, the
//! first page of a range in a given state, the tables a range has or
//! lacks. None of them writes an entry, except that
//! [`PageTables::leaf_slot`] makes a whole allocate-on-write PD entry a
//! page table (which changes no state) to hand out a level-1 entry.
//! Pages under a whole allocate-on-write entry are allocate on write to
//! all of them; its frame is a table that exists.

use core::convert::Infallible;
use core::ops::ControlFlow;

use x86_64::structures::paging::PhysFrame;

use super::PageTables;
use crate::backend::PhysMemory;
use crate::conv::usize_of;
use crate::frame_alloc::FrameAllocator;
use crate::linear::user;
use crate::pte::{self, Pte};
use crate::validate::{Span, LINEAR_MASK};
use crate::walk::{shift, walk, Descend, Entry, Slot, Visit};

/// Tables of levels `level - 1` down to 1 needed to cover `s..e` below a
/// missing entry of a table at `level`.
fn tables_below(level: u8, s: u64, e: u64) -> u64 {
    (1..level).fold(0u64, |acc, j| {
        let sh = shift(j) + 9;
        acc.saturating_add(((e - 1) >> sh) - (s >> sh) + 1)
    })
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// The level-1 entry of the page holding `linear`, if its tables exist,
    /// or the whole allocate-on-write PD entry above it (`level == 2`).
    ///
    /// What [`walk`] finds over the page's range with a visitor that stops
    /// at its first level-1 or whole allocate-on-write entry, the same
    /// [`Entry`] (the tests hold the two alike), read as a descent of at
    /// most four entries: one page needs none of the walk's slots and
    /// hooks, and the stale-translation probe looks up to 1,024 pages up
    /// this way per answer.
    pub(crate) fn leaf(&mut self, linear: u64) -> Option<Entry> {
        let page = linear & LINEAR_MASK & !0xfff;
        let mut table = self.root;
        for level in (1..=4u8).rev() {
            let sh = shift(level);
            let index = usize_of((page >> sh) & 511);
            let raw = self.read_entry(table, index);
            let slot = Slot {
                index,
                base: (page >> sh) << sh,
                start: page,
                end: page + 4096,
            };
            let at = Entry {
                table,
                level,
                slot,
                raw,
            };
            if level == 1 {
                return Some(at);
            }
            if raw & 1 == 0 {
                return (level == 2 && pte::is_whole_aow(raw)).then_some(at);
            }
            table = pte::frame_of(raw);
        }
        None
    }

    /// [`PageTables::leaf`] by the walk, for the tests that hold the two
    /// alike.
    #[cfg(test)]
    pub(crate) fn leaf_by_walk(&mut self, linear: u64) -> Option<Entry> {
        let page = linear & LINEAR_MASK & !0xfff;
        walk(self, page, page + 4096, &mut Leaf).break_value()
    }

    /// The page table and index holding the level-1 entry of `linear`, if
    /// its tables exist; a whole allocate-on-write entry above it is made
    /// a page table first.
    pub fn leaf_slot(&mut self, linear: u64) -> Option<(PhysFrame, usize)> {
        let at = self.leaf(linear)?;
        if at.level == 1 {
            return Some((at.table, at.slot.index));
        }
        let table = self.split(at);
        Some((table, usize_of((linear >> 12) & 511)))
    }

    /// The PD entry naming the page table of `linear`, if the tables down
    /// to that page table exist.
    pub(crate) fn pd_entry(&mut self, linear: u64) -> Option<Entry> {
        let page = linear & LINEAR_MASK & !0xfff;
        let mut found = PdEntry(None);
        let _ = walk(self, page, page + 4096, &mut found);
        found.0
    }

    /// The page table of `linear` and how many of its entries are present
    /// (the count its PD entry keeps), if the tables down to it exist and
    /// the PD entry names it (not a whole allocate-on-write entry).
    pub(crate) fn table_in_use(&mut self, linear: u64) -> Option<(PhysFrame, u64)> {
        let at = self.pd_entry(linear)?;
        (at.raw & 1 != 0).then(|| (pte::frame_of(at.raw), pte::present_count(at.raw)))
    }

    /// The state of the page at `linear` (unusable when its tables are
    /// absent).
    pub fn lookup(&mut self, linear: u64) -> Pte {
        match self.leaf(linear) {
            Some(at) if at.level == 2 => Pte::AllocOnWrite,
            Some(at) => Pte::decode(at.raw, user(linear)),
            None => Pte::Unusable,
        }
    }

    /// Calls `out` with every table under the PML4 that covers part of
    /// `span`, each after the tables below it.
    pub fn each_table(&mut self, span: Span, out: impl FnMut(PhysFrame)) {
        let _ = walk(self, span.start, span.end, &mut EachTable(out));
    }

    /// The lowest page of `span` whose state satisfies `pred` (absent
    /// tables hold unusable pages).
    pub fn find_first(&mut self, span: Span, pred: &impl Fn(Pte) -> bool) -> Option<u64> {
        let absent = pred(Pte::Unusable);
        let mut find = Find { pred, absent };
        walk(self, span.start, span.end, &mut find).break_value()
    }

    /// Pages of `span` on swap; the count stops growing once it exceeds
    /// `limit`.
    pub fn count_swapped(&mut self, span: Span, limit: u64) -> u64 {
        let mut count = Swapped { limit, acc: 0 };
        let _ = walk(self, span.start, span.end, &mut count);
        count.acc
    }

    /// Tables (PDPT, PD, PT) missing to give every page of `span` a
    /// level-1 entry; the count stops growing soon after it exceeds
    /// `limit`.
    pub fn count_missing_tables(&mut self, span: Span, limit: u64) -> u64 {
        let mut count = Count { limit, acc: 0 };
        let _ = walk(self, span.start, span.end, &mut count);
        count.acc
    }
}

/// [`PageTables::find_first`]: stops at the first page satisfying `pred`,
/// or at the start of a missing table's part when `absent` (unusable
/// satisfies).
struct Find<'a, P> {
    pred: &'a P,
    absent: bool,
}

impl<T, P: Fn(Pte) -> bool> Visit<T> for Find<'_, P> {
    type Stop = u64;
    const PAGES: bool = true;

    fn page(&mut self, _: &mut T, at: Entry) -> ControlFlow<u64> {
        if (self.pred)(Pte::decode(at.raw, user(at.slot.base))) {
            return ControlFlow::Break(at.slot.base);
        }
        ControlFlow::Continue(())
    }

    fn missing(&mut self, _: &mut T, at: Entry) -> Descend<u64> {
        if self.absent {
            return ControlFlow::Break(at.slot.start);
        }
        ControlFlow::Continue(None)
    }

    fn whole_aow(&mut self, _: &mut T, at: Entry) -> Descend<u64> {
        if (self.pred)(Pte::AllocOnWrite) {
            return ControlFlow::Break(at.slot.start);
        }
        ControlFlow::Continue(None)
    }
}

/// [`PageTables::leaf_by_walk`]: stops at the first level-1 entry of the
/// range, or at a whole allocate-on-write entry above it.
#[cfg(test)]
struct Leaf;

#[cfg(test)]
impl<T> Visit<T> for Leaf {
    type Stop = Entry;
    const PAGES: bool = true;

    fn page(&mut self, _: &mut T, at: Entry) -> ControlFlow<Entry> {
        ControlFlow::Break(at)
    }

    fn whole_aow(&mut self, _: &mut T, at: Entry) -> Descend<Entry> {
        ControlFlow::Break(at)
    }
}

/// [`PageTables::pd_entry`]: the PD entry the walk of one page comes back
/// through.
struct PdEntry(Option<Entry>);

impl<T> Visit<T> for PdEntry {
    type Stop = Infallible;
    const PAGES: bool = true;

    fn left(&mut self, _: &mut T, at: Entry, _: PhysFrame) {
        if at.level == 2 {
            self.0 = Some(at);
        }
    }
}

/// [`PageTables::each_table`]: calls its function with each table the
/// walk comes back from.
struct EachTable<F>(F);

impl<T, F: FnMut(PhysFrame)> Visit<T> for EachTable<F> {
    type Stop = Infallible;
    const PAGES: bool = true;

    fn left(&mut self, _: &mut T, _: Entry, child: PhysFrame) {
        (self.0)(child);
    }

    fn whole_aow(&mut self, _: &mut T, at: Entry) -> Descend<Infallible> {
        (self.0)(crate::pte::frame_of(at.raw));
        ControlFlow::Continue(None)
    }
}

/// [`PageTables::count_swapped`]: counts the on-swap entries (none under
/// a missing table or a whole allocate-on-write entry), stopping once past
/// `limit`.
struct Swapped {
    limit: u64,
    acc: u64,
}

impl<T> Visit<T> for Swapped {
    type Stop = ();
    const PAGES: bool = true;

    fn page(&mut self, _: &mut T, at: Entry) -> ControlFlow<()> {
        if matches!(Pte::decode(at.raw, user(at.slot.base)), Pte::OnSwap { .. }) {
            self.acc += 1;
            if self.acc > self.limit {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// [`PageTables::count_missing_tables`]: adds up the tables below each
/// missing entry, stopping once past `limit`.
struct Count {
    limit: u64,
    acc: u64,
}

impl<T> Visit<T> for Count {
    type Stop = ();
    const PAGES: bool = false;

    fn missing(&mut self, _: &mut T, at: Entry) -> Descend<()> {
        let below = tables_below(at.level, at.slot.start, at.slot.end);
        self.acc = self.acc.saturating_add(below);
        if self.acc > self.limit {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(None)
    }
}
