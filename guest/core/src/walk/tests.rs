//! The walk's slots, and a present-only walk against the full one.

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
    Under { level, base, s, e }
        .slots()
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

proptest::proptest! {
    /// The scan that passes eight absent entries at once finds what a scan
    /// of one entry at a time finds.
    #[test]
    fn first_present_finds_the_first_present_kept_entry(
        present in proptest::collection::vec(proptest::bool::weighted(0.05), 512),
        from in 0usize..520,
        to in 0usize..520,
        odd in proptest::bool::ANY,
    ) {
        // Absent entries carry other bits (an allocate-on-write state), so
        // only the present bit may decide.
        let table: Vec<u64> = present
            .iter()
            .enumerate()
            .map(|(i, &p)| (i as u64) << 12 | 0x200 | u64::from(p))
            .collect();
        let keep = |raw: u64| !odd || (raw >> 12) % 2 == 1;
        let one_by_one = (from..to.min(512))
            .map(|i| (i, table[i]))
            .find(|&(_, raw)| raw & PRESENT != 0 && keep(raw));
        proptest::prop_assert_eq!(first_present(from, to, |i| table[i], keep), one_by_one);
    }
}

/// Visits the present writable pages (bit 1) under PD and PDPT entries
/// without bit 62, and records the entries (level, index) of whole tables
/// it kept none of.
#[derive(Default)]
struct Writable {
    pages: Vec<u64>,
    none_kept: Vec<(u8, usize)>,
}

impl Visit<Mem> for Writable {
    type Stop = ();
    const PAGES: bool = true;
    const PRESENT_ONLY: bool = true;
    fn keep(&self, raw: u64) -> bool {
        raw & 0b10 != 0
    }
    fn keep_table(&self, raw: u64) -> bool {
        raw & 1 << 62 == 0
    }
    fn none_kept(&mut self, _: &mut Mem, at: Entry) {
        self.none_kept.push((at.level, at.slot.index));
    }
    fn page(&mut self, _: &mut Mem, at: Entry) -> ControlFlow<()> {
        self.pages.push(at.slot.base);
        ControlFlow::Continue(())
    }
}

#[test]
fn a_present_only_walk_trusts_a_table_mark_and_reports_whole_tables_with_nothing_kept() {
    // PD 0x3000 names four page tables, each with present pages:
    // 0x4000 (one writable page), 0x5000 (read-only pages only), 0x6000
    // (a writable page, but its PD entry has bit 62), 0x7000 (read-only
    // pages only, but the range covers only part of it).
    let t = |f: u64, count: u64| f | 0b111 | count << 52;
    let ro = |f: u64| f | 0x201;
    let rw = |f: u64| f | 0x203;
    let mut pd = [0; 512];
    pd[0] = t(0x4000, 2);
    pd[1] = t(0x5000, 2);
    pd[2] = t(0x6000, 1) | 1 << 62;
    pd[3] = t(0x7000, 1);
    let mut pt0 = [0; 512];
    pt0[5] = rw(0x10_0000);
    pt0[6] = ro(0x11_0000);
    let mut pt1 = [0; 512];
    pt1[0] = ro(0x12_0000);
    pt1[511] = ro(0x13_0000);
    let mut pt2 = [0; 512];
    pt2[9] = rw(0x14_0000);
    let mut pt3 = [0; 512];
    pt3[1] = ro(0x15_0000);
    let mut tables = BTreeMap::new();
    let mut pml4 = [0; 512];
    pml4[0] = t(0x2000, 0);
    let mut pdpt = [0; 512];
    pdpt[0] = t(0x3000, 0);
    for (f, e) in [
        (0x1000, pml4),
        (0x2000, pdpt),
        (0x3000, pd),
        (0x4000, pt0),
        (0x5000, pt1),
        (0x6000, pt2),
        (0x7000, pt3),
    ] {
        tables.insert(f, e);
    }
    let mut mem = Mem {
        root: frame(0x1000),
        tables,
    };
    let mut v = Writable::default();
    let _ = walk(&mut mem, 0, 0x60_0000 + 0x10_0000, &mut v);
    assert_eq!(v.pages, [0x5000], "the marked table's page is not visited");
    assert_eq!(
        v.none_kept,
        [(2, 1)],
        "only the whole table with nothing kept"
    );

    // From inside the first table, it is not whole: only the second one.
    let mut v = Writable::default();
    let _ = walk(&mut mem, 0x6000, 0x80_0000, &mut v);
    assert!(v.pages.is_empty());
    assert_eq!(v.none_kept, [(2, 1), (2, 3)]);

    // Over the whole gigabyte of the PDPT entry, with the writable page
    // made read-only: every table and the directory kept nothing.
    mem.tables.get_mut(&0x4000).expect("PT")[5] = ro(0x10_0000);
    let mut v = Writable::default();
    let _ = walk(&mut mem, 0, 1 << 30, &mut v);
    assert!(v.pages.is_empty());
    assert_eq!(v.none_kept, [(2, 0), (2, 1), (2, 3), (3, 0)]);

    // A marked PDPT entry: its directory is not read at all, though a
    // table below holds a writable page and none of its entries is marked.
    mem.tables.get_mut(&0x4000).expect("PT")[5] = rw(0x10_0000);
    mem.tables.get_mut(&0x3000).expect("PD")[2] = t(0x6000, 1);
    let mut v = Writable::default();
    let _ = walk(&mut mem, 0, 1 << 30, &mut v);
    assert_eq!(v.pages, [0x5000, 0x40_9000]);
    mem.tables.get_mut(&0x2000).expect("PDPT")[0] = t(0x3000, 0) | 1 << 62;
    let mut v = Writable::default();
    let _ = walk(&mut mem, 0, 1 << 30, &mut v);
    assert!(
        v.pages.is_empty() && v.none_kept.is_empty(),
        "{:?}",
        v.pages
    );
}
