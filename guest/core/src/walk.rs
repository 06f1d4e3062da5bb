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
//! for the present count of a PD entry ([`pte::present_count`]), which
//! `paging`'s one writer of level-1 entries keeps.
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

/// The entries of a table at `level` whose first address is `base` that
/// `s..e` covers, in address order. An empty range, or one that begins
/// below `base`, covers none; one past the table's end is cut there.
pub(crate) fn slots(level: u8, base: u64, s: u64, e: u64) -> impl Iterator<Item = Slot> {
    let sh = shift(level);
    let (first, last) = if s < e && base <= s {
        ((s - base) >> sh, ((e - 1 - base) >> sh).min(511))
    } else {
        (1, 0)
    };
    (first..=last).map(move |i| {
        let lo = base + (i << sh);
        let hi = lo + (1u64 << sh);
        Slot {
            index: usize_of(i),
            base: lo,
            start: s.max(lo),
            end: e.min(hi),
        }
    })
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
/// [`Tables::next_present`].
pub(crate) fn first_present(
    from: usize,
    to: usize,
    mut read: impl FnMut(usize) -> u64,
    keep: impl Fn(u64) -> bool,
) -> Option<(usize, u64)> {
    let to = to.min(512);
    (from.min(to)..to)
        .map(|i| (i, read(i)))
        .find(|&(_, raw)| raw & PRESENT != 0 && keep(raw))
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
    /// ([`pte::present_count`]) is not read at all. The reclaim clock and
    /// `Evict` cross thousands of allocate-on-write entries per present
    /// page.
    const PRESENT_ONLY: bool = false;

    /// Under [`Visit::PRESENT_ONLY`], a cheap test of a present entry's raw
    /// bits that every entry [`Visit::page`] acts on passes (a superset:
    /// `page` still decodes what it gets); the others are skipped in the
    /// scan. Passes all by default.
    fn keep(&self, _raw: u64) -> bool {
        true
    }

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

    /// Back from the walk of `child`, the table under the upper-level entry
    /// `at`, which did not stop.
    fn left(&mut self, _tables: &mut T, _at: Entry, _child: PhysFrame) {}
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
    walk_table(tables, root, 4, 0, s, e, v)
}

fn walk_table<T: Tables, V: Visit<T>>(
    tables: &mut T,
    table: PhysFrame,
    level: u8,
    base: u64,
    s: u64,
    e: u64,
    v: &mut V,
) -> ControlFlow<V::Stop> {
    if level == 0 {
        return ControlFlow::Continue(());
    }
    if V::PRESENT_ONLY {
        return walk_present(tables, table, level, base, s, e, v);
    }
    for slot in slots(level, base, s, e) {
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
        } else {
            v.missing(tables, at)?
        };
        visit(tables, at, child, v)?;
    }
    ControlFlow::Continue(())
}

/// The walk at `at`: a page's entry goes to the visitor; below a table's
/// entry, the table `child` (if any, and if the visitor goes that deep) is
/// walked, then `left` is called.
fn visit<T: Tables, V: Visit<T>>(
    tables: &mut T,
    at: Entry,
    child: Option<PhysFrame>,
    v: &mut V,
) -> ControlFlow<V::Stop> {
    if at.level == 1 {
        return v.page(tables, at);
    }
    if let Some(child) = child.filter(|_| at.level > 2 || V::PAGES) {
        let slot = at.slot;
        walk_table(
            tables,
            child,
            at.level - 1,
            slot.base,
            slot.start,
            slot.end,
            v,
        )?;
        v.left(tables, at, child);
    }
    ControlFlow::Continue(())
}

/// [`walk_table`] for a [`Visit::PRESENT_ONLY`] visitor: the same slots in
/// the same order, but only of present entries, found with
/// [`Tables::next_present`]: at level 1 those [`Visit::keep`] passes, at
/// level 2 those whose page table counts a present entry
/// ([`pte::present_count`]), above every present one. `missing` is never
/// called (no entry without P is visited); `left` is, as in `walk_table`.
fn walk_present<T: Tables, V: Visit<T>>(
    tables: &mut T,
    table: PhysFrame,
    level: u8,
    base: u64,
    s: u64,
    e: u64,
    v: &mut V,
) -> ControlFlow<V::Stop> {
    let mut all = slots(level, base, s, e);
    let Some(first) = all.next() else {
        return ControlFlow::Continue(());
    };
    let last = all.last().map_or(first.index, |slot| slot.index);
    let sh = shift(level);
    let mut from = first.index;
    while let Some((i, raw)) = tables.next_present(table, from, last + 1, |raw| match level {
        1 => v.keep(raw),
        2 => pte::present_count(raw) > 0,
        _ => true,
    }) {
        from = i + 1;
        let lo = base + ((i as u64) << sh);
        let slot = Slot {
            index: i,
            base: lo,
            start: s.max(lo),
            end: e.min(lo + (1u64 << sh)),
        };
        let at = Entry {
            table,
            level,
            slot,
            raw,
        };
        visit(tables, at, Some(pte::frame_of(raw)), v)?;
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use x86_64::PhysAddr;

    /// Tables in a map from frame address to entries.
    struct Mem {
        root: PhysFrame,
        tables: BTreeMap<u64, [u64; 512]>,
    }

    fn frame(addr: u64) -> PhysFrame {
        PhysFrame::containing_address(PhysAddr::new(addr))
    }

    impl Tables for Mem {
        fn root(&self) -> PhysFrame {
            self.root
        }
        fn entry(&mut self, table: PhysFrame, i: usize) -> u64 {
            self.tables[&table.start_address().as_u64()][i & 511]
        }
    }

    /// Records the pages it is given (present ones only, if `ONLY`).
    struct Pages<const ONLY: bool>(Vec<(u64, u64)>);

    impl<const ONLY: bool> Visit<Mem> for Pages<ONLY> {
        type Stop = ();
        const PAGES: bool = true;
        const PRESENT_ONLY: bool = ONLY;
        fn page(&mut self, _: &mut Mem, at: Entry) -> ControlFlow<()> {
            if at.raw & PRESENT != 0 {
                self.0.push((at.slot.base, at.raw));
            }
            ControlFlow::Continue(())
        }
    }

    #[test]
    fn a_present_only_walk_visits_the_present_pages_and_skips_counted_empty_tables() {
        // PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PTs 0x4000 (two
        // present pages, count 2), 0x5000 (allocate-on-write entries only,
        // count 0) and 0x6000 (one present page, count 1).
        let t = |f: u64, count: u64| f | 0b111 | count << 52;
        let mut tables = BTreeMap::new();
        let mut pml4 = [0; 512];
        pml4[0] = t(0x2000, 0);
        let mut pdpt = [0; 512];
        pdpt[0] = t(0x3000, 0);
        let mut pd = [0; 512];
        pd[0] = t(0x4000, 2);
        pd[1] = t(0x5000, 0);
        pd[2] = t(0x6000, 1);
        let mut pt0 = [0b10; 512];
        pt0[3] = 0x10_0000 | 0x203;
        pt0[511] = 0x11_0000 | 0x203;
        let mut pt2 = [0b10; 512];
        pt2[7] = 0x12_0000 | 0x207;
        for (f, e) in [(0x1000, pml4), (0x2000, pdpt), (0x3000, pd), (0x4000, pt0)] {
            tables.insert(f, e);
        }
        tables.insert(0x5000, [0b10; 512]);
        tables.insert(0x6000, pt2);
        let mut mem = Mem {
            root: frame(0x1000),
            tables,
        };
        let (s, e) = (0x2000, 0x60_0000);
        let mut all = Pages::<false>(vec![]);
        let _ = walk(&mut mem, s, e, &mut all);
        let mut present = Pages::<true>(vec![]);
        let _ = walk(&mut mem, s, e, &mut present);
        assert_eq!(
            present.0,
            [
                (0x3000, 0x10_0203),
                (0x1f_f000, 0x11_0203),
                (0x40_7000, 0x12_0207)
            ]
        );
        assert_eq!(present.0, all.0);

        // A count of 0 is trusted: the walk does not read that table.
        mem.tables.get_mut(&0x3000).expect("PD")[2] = t(0x6000, 0);
        let mut present = Pages::<true>(vec![]);
        let _ = walk(&mut mem, s, e, &mut present);
        assert_eq!(present.0.len(), 2);
    }

    fn parts(level: u8, base: u64, s: u64, e: u64) -> Vec<(usize, u64, u64, u64)> {
        slots(level, base, s, e)
            .map(|x| (x.index, x.base, x.start, x.end))
            .collect()
    }

    #[test]
    fn a_range_is_cut_at_each_entry() {
        let got = parts(2, 0, 0x1f_f000, 0x40_1000);
        let want = vec![
            (0, 0, 0x1f_f000, 0x20_0000),
            (1, 0x20_0000, 0x20_0000, 0x40_0000),
            (2, 0x40_0000, 0x40_0000, 0x40_1000),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn odd_ranges_cover_nothing_or_stop_at_the_table_end() {
        assert!(parts(4, 0, 5, 5).is_empty());
        assert!(parts(4, 0, 7, 3).is_empty());
        assert!(parts(1, 0x1000_0000, 0, u64::MAX).is_empty());
        assert!(parts(4, 0, u64::MAX - 1, u64::MAX).is_empty());
        let all = parts(4, 0, 0, u64::MAX);
        assert_eq!(all.len(), 512);
        assert_eq!(all[511], (511, 511 << 39, 511 << 39, 1 << 48));
    }
}
