//! The one walk over the page tables that every walker of the VMM is built
//! on: which entries of a table a range covers, the part of the range under
//! each, and the descent into the tables that exist.
//!
//! A walker says only what it does at an entry, by implementing [`Visit`]:
//! at a page's entry (level 1), at a missing table (an upper-level entry
//! without P: skip it, stop, or create the table and go on into it), and
//! after coming back from a table. [`walk`] visits the entries of the
//! range in address order, depth first, and stops the whole walk as soon as
//! a hook answers `Break`.
//!
//! Upper-level entries are either zero or a table entry
//! ([`pte::table_entry`], P set): the walkers are their only writers, but
//! for the present count of a PD entry and the no-evictable mark of a PD or
//! PDPT entry ([`pte::present_count`], [`pte::marks_no_evictable`]), which
//! `paging` keeps as level-1 entries change and the reclaim clock sets
//! through [`Visit::none_kept`]. A PD entry may also be
//! a whole allocate-on-write entry ([`pte::whole_aow_entry`]: 512
//! allocate-on-write pages and a frame kept for their table, not yet
//! filled): the walk hands it to [`Visit::whole_aow`], never to
//! [`Visit::missing`], and a [`Visit::PRESENT_ONLY`] walk passes it (it
//! holds no present page).
//!
//! Nothing here panics: an empty range visits nothing, and a range past the
//! 512 entries of a table is cut at its end.

use core::ops::ControlFlow;

use x86_64::structures::paging::PhysFrame;

use crate::conv::usize_of;
use crate::pte;

/// The present bit of an entry.
const PRESENT: u64 = 1;

/// Shift of the address span of one entry of a table at `level` (12 for a
/// page table, 39 for the PML4).
pub(crate) fn shift(level: u8) -> u32 {
    12 + 9 * u32::from(level.saturating_sub(1))
}

/// One entry of a table that a range covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot {
    /// The entry's index in its table.
    pub index: usize,
    /// The first linear address under the entry.
    pub base: u64,
    /// Start of the part of the range under the entry.
    pub start: u64,
    /// End (exclusive) of the part of the range under the entry; never
    /// `<= start`.
    pub end: u64,
}

/// The part of a walk's range under one table: the table's `level` (1 for
/// a page table, 4 for the PML4), its first linear address `base`, and the
/// range `s..e`.
#[derive(Clone, Copy, Debug)]
struct Under {
    level: u8,
    base: u64,
    s: u64,
    e: u64,
}

impl Slot {
    /// Whether the range covers the whole entry, an entry of a table at
    /// `level` (for a PD entry, all 512 pages of its page table).
    pub fn is_whole(&self, level: u8) -> bool {
        self.start == self.base && self.end - self.base == 1 << shift(level)
    }
}

impl Under {
    /// The entries of the table that the range covers, in address order.
    /// An empty range, or one that begins below `base`, covers none; one
    /// past the table's end is cut there.
    fn slots(self) -> impl Iterator<Item = Slot> {
        let Under { level, base, s, e } = self;
        let sh = shift(level);
        let (first, last) = if s < e && base <= s {
            ((s - base) >> sh, ((e - 1 - base) >> sh).min(511))
        } else {
            (1, 0)
        };
        (first..=last).map(move |i| self.slot(i))
    }

    /// Entry `i` of the table, with the part of the range under it.
    fn slot(self, i: u64) -> Slot {
        let sh = shift(self.level);
        let lo = self.base + (i << sh);
        let hi = lo + (1u64 << sh);
        Slot {
            index: usize_of(i),
            base: lo,
            start: self.s.max(lo),
            end: self.e.min(hi),
        }
    }
}

/// An entry the walk is at: `table[slot.index]`, a table at `level`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// The table holding the entry.
    pub table: PhysFrame,
    /// The table's level (1 for a page table, 4 for the PML4).
    pub level: u8,
    /// Where the entry is and the part of the range under it.
    pub slot: Slot,
    /// The entry's raw bits, as read when the walk came to it.
    pub raw: u64,
}

/// What [`Visit::missing`] answers: the table to go on into, if any.
pub(crate) type Descend<B> = ControlFlow<B, Option<PhysFrame>>;

/// Page tables as the walk reads them: the root and one entry at a time.
/// The VMM implements it over its memory (`paging`); the walk knows
/// nothing else of the VMM.
pub(crate) trait Tables {
    /// The PML4.
    fn root(&self) -> PhysFrame;
    /// The raw entry `i` (taken mod 512) of `table`.
    fn entry(&mut self, table: PhysFrame, i: usize) -> u64;

    /// The first present entry of `table` among `from..to` (indices below
    /// 512) whose raw bits `keep` passes: its index and raw bits. The walk
    /// of a [`Visit::PRESENT_ONLY`] visitor skips the rest of a page table
    /// with it; an implementation that can view the whole table at once
    /// scans it without reading the entries one by one.
    fn next_present(
        &mut self,
        table: PhysFrame,
        from: usize,
        to: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Option<(usize, u64)> {
        first_present(from, to, |i| self.entry(table, i), keep)
    }
}

/// The first index among `from..to` (cut at 512) whose entry, as `read`
/// gives it, is present and passes `keep`: the scan of
/// [`Tables::next_present`]. Eight aligned entries none of which is both
/// present and kept are passed at once, by one branch-free test of all
/// eight (`keep` must be a pure test of the raw bits, called on any entry):
/// in a sparse table, or one full of pages a sweep passes over (the RAM
/// pages of a sweep for clean file pages), that is one test per eight
/// entries, and under emulation one block (and one coverage counter)
/// instead of eight.
pub(crate) fn first_present(
    from: usize,
    to: usize,
    mut read: impl FnMut(usize) -> u64,
    keep: impl Fn(u64) -> bool,
) -> Option<(usize, u64)> {
    let to = to.min(512);
    let mut i = from.min(to);
    while i < to {
        if i % 8 == 0 && i + 8 <= to {
            let any = (i..i + 8).fold(false, |acc, j| {
                let raw = read(j);
                acc | ((raw & PRESENT != 0) & keep(raw))
            });
            if !any {
                i += 8;
                continue;
            }
        }
        let raw = read(i);
        if raw & PRESENT != 0 && keep(raw) {
            return Some((i, raw));
        }
        i += 1;
    }
    None
}

/// What a walk does at the entries it meets, with the tables `T` (which
/// the hooks may change); every hook may stop the walk with `Break`.
pub(crate) trait Visit<T> {
    /// What a stopped walk answers.
    type Stop;

    /// Whether the walk goes down to the pages' entries (level 1). Without,
    /// it ends at the entries of page directories (level 2), which name
    /// page tables, and never reads a page table.
    const PAGES: bool;

    /// Whether [`Visit::page`] is called only for present level-1 entries
    /// (and [`Visit::missing`] never): a walker that passes every other
    /// page sets it, and the walk skips them, and every table without a
    /// present entry, in scans of whole tables ([`Tables::next_present`]):
    /// a page table whose PD entry counts no present entry
    /// ([`pte::present_count`]) is not read at all, nor is a table whose
    /// PD or PDPT entry [`Visit::keep_table`] refuses. The reclaim clock
    /// and `Evict` cross thousands of allocate-on-write entries per
    /// present page.
    const PRESENT_ONLY: bool = false;

    /// Under [`Visit::PRESENT_ONLY`], a cheap test of a present entry's raw
    /// bits that every entry [`Visit::page`] acts on passes (a superset:
    /// `page` still decodes what it gets); the others are skipped in the
    /// scan. Passes all by default.
    fn keep(&self, _raw: u64) -> bool {
        true
    }

    /// Under [`Visit::PRESENT_ONLY`], a cheap test of the raw bits of a
    /// present PD entry (one naming a page table with a present entry) or
    /// PDPT entry: `false` when the entry itself says [`Visit::keep`]
    /// passes no page under it (its no-evictable mark, for a keep that
    /// passes only pages the pressure path may send out), and the walk
    /// passes the table it names unread. Passes all by default.
    fn keep_table(&self, _raw: u64) -> bool {
        true
    }

    /// Under [`Visit::PRESENT_ONLY`] and [`Visit::PAGES`], the walk went
    /// through the whole table that the PD or PDPT entry `at` names (the
    /// entries [`Visit::keep_table`] is asked about), and [`Visit::keep`]
    /// passed no page under it (so [`Visit::page`] was called for none): a
    /// visitor may record that in `at` (the clock's no-evictable mark).
    fn none_kept(&mut self, _tables: &mut T, _at: Entry) {}

    /// A level-1 entry (with any bits, present or not; only present ones
    /// under [`Visit::PRESENT_ONLY`]).
    fn page(&mut self, _tables: &mut T, _at: Entry) -> ControlFlow<Self::Stop> {
        ControlFlow::Continue(())
    }

    /// An upper-level entry without a table: answer the table to go on
    /// into (one just made), or `None` to pass it.
    fn missing(&mut self, _tables: &mut T, _at: Entry) -> Descend<Self::Stop> {
        ControlFlow::Continue(None)
    }

    /// A whole allocate-on-write PD entry (`at.level == 2`): 512
    /// allocate-on-write pages with no page table yet, the frame kept for
    /// it in `at.raw`. Answer the table to go on into (after filling it,
    /// [`crate::paging`]'s split), or `None` not to go in: to pass the
    /// entry, or after doing its pages' work at once. Passing is the
    /// default: right for a walker that looks only at tables, present
    /// pages or missing tables; one that acts on pages must answer.
    fn whole_aow(&mut self, _tables: &mut T, _at: Entry) -> Descend<Self::Stop> {
        ControlFlow::Continue(None)
    }

    /// Back from the walk of `child`, the table under the upper-level entry
    /// `at`, which did not stop.
    fn left(&mut self, _tables: &mut T, _at: Entry, _child: PhysFrame) {}

    /// A page table `child` that the range covers whole, under the PD
    /// entry `at`, before the walk goes into it: `Continue(true)` when the
    /// visitor did the whole table's work itself (the walk then neither
    /// visits its entries nor calls `left` for it), `Continue(false)` to
    /// walk it as any other. A visitor whose change of a whole table is
    /// cheaper at once than entry by entry (freeing it, filling it)
    /// answers here. Never called under [`Visit::PRESENT_ONLY`].
    fn whole_table(
        &mut self,
        _tables: &mut T,
        _at: Entry,
        _child: PhysFrame,
    ) -> ControlFlow<Self::Stop, bool> {
        ControlFlow::Continue(false)
    }
}

/// Walks the entries of `tables` that cover the linear range `s..e`, from
/// the PML4 down, calling `v`'s hooks; answers the `Break` of the hook that
/// stopped it.
pub(crate) fn walk<T: Tables, V: Visit<T>>(
    tables: &mut T,
    s: u64,
    e: u64,
    v: &mut V,
) -> ControlFlow<V::Stop> {
    let root = tables.root();
    let under = Under {
        level: 4,
        base: 0,
        s,
        e,
    };
    walk_table(tables, root, under, v)
}

/// The walk of `table`, over the part `under` of the range.
fn walk_table<T: Tables, V: Visit<T>>(
    tables: &mut T,
    table: PhysFrame,
    under: Under,
    v: &mut V,
) -> ControlFlow<V::Stop> {
    let level = under.level;
    if level == 0 {
        return ControlFlow::Continue(());
    }
    if V::PRESENT_ONLY {
        walk_present(tables, table, under, v)?;
        return ControlFlow::Continue(());
    }
    for slot in under.slots() {
        let raw = tables.entry(table, slot.index);
        let at = Entry {
            table,
            level,
            slot,
            raw,
        };
        let child = if level == 1 {
            None
        } else if raw & PRESENT != 0 {
            Some(pte::frame_of(raw))
        } else if level == 2 && pte::is_whole_aow(raw) {
            v.whole_aow(tables, at)?
        } else {
            v.missing(tables, at)?
        };
        visit(tables, at, child, v)?;
    }
    ControlFlow::Continue(())
}

/// The walk at `at`: a page's entry goes to the visitor; below a table's
/// entry, the table `child` (if any, and if the visitor goes that deep) is
/// walked, then `left` is called. Answers whether [`Visit::page`] was
/// called at or under `at`; only a [`Visit::PRESENT_ONLY`] walk tracks it
/// below a table's entry (the others answer `false` there: nothing asks).
fn visit<T: Tables, V: Visit<T>>(
    tables: &mut T,
    at: Entry,
    child: Option<PhysFrame>,
    v: &mut V,
) -> ControlFlow<V::Stop, bool> {
    if at.level == 1 {
        v.page(tables, at)?;
        return ControlFlow::Continue(true);
    }
    let mut paged = false;
    if let Some(child) = child.filter(|_| at.level > 2 || V::PAGES) {
        let slot = at.slot;
        let whole = slot.is_whole(at.level);
        if at.level == 2 && whole && !V::PRESENT_ONLY && v.whole_table(tables, at, child)? {
            return ControlFlow::Continue(false);
        }
        let under = Under {
            level: at.level - 1,
            base: slot.base,
            s: slot.start,
            e: slot.end,
        };
        if V::PRESENT_ONLY {
            paged = walk_present(tables, child, under, v)?;
            if !paged && whole && V::PAGES && at.level <= 3 {
                v.none_kept(tables, at);
            }
        } else {
            walk_table(tables, child, under, v)?;
        }
        v.left(tables, at, child);
    }
    ControlFlow::Continue(paged)
}

/// [`walk_table`] for a [`Visit::PRESENT_ONLY`] visitor: the same slots in
/// the same order, but only of present entries, found with
/// [`Tables::next_present`]: at level 1 those [`Visit::keep`] passes, at
/// level 2 those whose page table counts a present entry
/// ([`pte::present_count`]) and [`Visit::keep_table`] passes, at level 3
/// those [`Visit::keep_table`] passes, in the PML4 every present one.
/// `missing` is never called (no entry without P is visited); `left` is,
/// as in `walk_table`. Answers whether [`Visit::page`] was called for any
/// page under `table`.
fn walk_present<T: Tables, V: Visit<T>>(
    tables: &mut T,
    table: PhysFrame,
    under: Under,
    v: &mut V,
) -> ControlFlow<V::Stop, bool> {
    let level = under.level;
    let mut all = under.slots();
    let Some(first) = all.next() else {
        return ControlFlow::Continue(false);
    };
    let last = all.last().map_or(first.index, |slot| slot.index);
    let mut from = first.index;
    let next = |tables: &mut T, from: usize, v: &V| match level {
        1 => tables.next_present(table, from, last + 1, |raw| v.keep(raw)),
        2 => tables.next_present(table, from, last + 1, |raw| {
            (pte::present_count(raw) > 0) & v.keep_table(raw)
        }),
        3 => tables.next_present(table, from, last + 1, |raw| v.keep_table(raw)),
        _ => tables.next_present(table, from, last + 1, |_| true),
    };
    let mut paged = false;
    while let Some((i, raw)) = next(tables, from, v) {
        from = i + 1;
        let at = Entry {
            table,
            level,
            slot: under.slot(i as u64),
            raw,
        };
        paged |= visit(tables, at, Some(pte::frame_of(raw)), v)?;
    }
    ControlFlow::Continue(paged)
}

#[cfg(test)]
mod tests;
