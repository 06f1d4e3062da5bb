//! The no-evictable mark (bit 62 of a PD entry naming a page table or of
//! a PDPT entry, `protocol::formats` "Upper-level entries"): taken only in
//! such entries; a marked page table, and every page table under a marked
//! PDPT entry, must hold no page the pressure path may send out; an
//! unmarked one may hold anything.

use protocol::{AreaType, Request};

use super::super::entry::{
    decode_leaf, decode_upper, evictable, marks_no_evictable, Leaf, PresentKind, Upper, A,
    NO_EVICTABLE, NX, P, U, W,
};
use super::super::violation::MarkedEntry;
use super::super::{CheckReport, Checker, Path, Violation};
use super::assert_broken;
use super::shared::{full, incremental, recorded, share, texts, K, U as USER};
use crate::bench::Scenario;

/// The first page of the 2 MiB region (one page table) the tests fill.
pub(super) const PT: u64 = 0x1000_0000;
/// The page of that table the tests make a page the clock may send out.
pub(super) const EVICTABLE: u64 = PT + 16 * 4096;

/// The present count, in bits 52–61 of a PD entry.
fn count(n: u64) -> u64 {
    n << 52
}

#[test]
fn decode_upper_takes_the_mark_in_a_pd_entry_naming_a_page_table_only() {
    let table = 0x7000;
    for lower in [true, false] {
        let user = if lower { U } else { 0 };
        let entry = table | P | W | user | A | count(3);
        assert!(!marks_no_evictable(entry));
        let marked = entry | NO_EVICTABLE;
        assert!(marks_no_evictable(marked));
        assert_eq!(decode_upper(marked, lower, 1), Ok(Upper::Table(table)));
        assert_eq!(
            decode_upper(table | P | W | user | NO_EVICTABLE, lower, 1),
            Ok(Upper::Table(table))
        );
        // In a PML4 entry it is a reserved bit.
        assert_eq!(
            decode_upper(table | P | W | user | NO_EVICTABLE, lower, 3),
            Err("upper-level entry with reserved bits set")
        );
    }
    // A whole allocate-on-write PD entry holds its frame and nothing else.
    let whole = table | 1 << 1;
    assert_eq!(decode_upper(whole, true, 1), Ok(Upper::WholeAow(table)));
    assert!(decode_upper(whole | NO_EVICTABLE, true, 1).is_err());
    assert!(decode_upper(whole | NO_EVICTABLE, false, 1).is_err());
    // Bit 63 stays reserved beside it.
    assert!(decode_upper(table | P | W | U | NO_EVICTABLE | NX, true, 1).is_err());
}

#[test]
fn decode_upper_takes_the_mark_but_no_present_count_in_a_pdpt_entry() {
    let pd = 0x9000;
    let reserved = Err("upper-level entry with reserved bits set");
    for lower in [true, false] {
        let user = if lower { U } else { 0 };
        let entry = pd | P | W | user;
        for e in [entry, entry | A] {
            assert_eq!(decode_upper(e, lower, 2), Ok(Upper::Table(pd)));
            let marked = e | NO_EVICTABLE;
            assert!(marks_no_evictable(marked));
            assert_eq!(decode_upper(marked, lower, 2), Ok(Upper::Table(pd)));
        }
        // The present count is a PD entry's only: any of bits 52–61 in a
        // PDPT entry is reserved, marked or not.
        for bit in 52..62 {
            for e in [entry | 1 << bit, entry | NO_EVICTABLE | 1 << bit] {
                assert_eq!(decode_upper(e, lower, 2), reserved, "bit {bit}: {e:#x}");
            }
        }
        assert_eq!(decode_upper(entry | count(3), lower, 2), reserved);
        assert_eq!(
            decode_upper(entry | count(3), lower, 1),
            Ok(Upper::Table(pd))
        );
        // Nor bit 63, nor the PML4 entry above.
        assert!(decode_upper(entry | NO_EVICTABLE | NX, lower, 2).is_err());
        assert_eq!(decode_upper(entry | NO_EVICTABLE, lower, 3), reserved);
    }
    // No whole allocate-on-write PDPT entry, marked or not.
    let whole = pd | 1 << 1;
    assert!(decode_upper(whole, true, 2).is_err());
    assert!(decode_upper(whole | NO_EVICTABLE, true, 2).is_err());
}

#[test]
fn evictable_is_a_present_mmap_page_or_present_writable_usable_ram() {
    let frame = 0x5000;
    let sw = |bits: u64| bits << 9;
    let cases: [(&str, u64, bool); 14] = [
        ("zero", 0, false),
        ("writable RAM", frame | P | W | U | sw(1) | NX, true),
        (
            "writable RAM, accessed and dirty",
            frame | P | W | sw(1) | NX | 3 << 5,
            true,
        ),
        ("read-only RAM", frame | P | U | sw(1) | NX, false),
        ("executable RAM", frame | P | U | sw(1), false),
        ("clean mmap", frame | P | U | sw(2) | NX, true),
        ("private mmap", frame | P | W | U | sw(3) | NX, true),
        ("writable pinned RAM", frame | P | W | U | sw(4) | NX, false),
        ("writable shared RAM", frame | P | W | U | sw(5) | NX, false),
        ("allocate on write", 1 << 1, false),
        ("pinned allocate on write", 4 << 1, false),
        ("on swap", 7 << 12 | 2 << 1, false),
        ("not-present mmap", 3 << 1 | 1 << 4 | 2 << 12, false),
        // File 0x20 puts 0b001 in bits 9–11 and the kind 3 sets bit 1 (W):
        // P clear all the same.
        (
            "not-present mmap of file 0x20",
            3 << 1 | 0x20 << 4 | 2 << 12,
            false,
        ),
    ];
    for (what, raw, want) in cases {
        assert_eq!(evictable(raw), want, "{what}: {raw:#x}");
        // And as the decoder reads it (each case is a valid entry).
        let decoded = match decode_leaf(raw, raw & U != 0 || raw & P == 0) {
            Leaf::Present {
                kind: PresentKind::MmapClean | PresentKind::MmapPrivate,
                ..
            } => true,
            Leaf::Present {
                kind: PresentKind::Ram,
                writable,
                ..
            } => writable,
            Leaf::Corrupt(why) => panic!("{what}: {raw:#x} is corrupt: {why}"),
            _ => false,
        };
        assert_eq!(decoded, want, "{what}: {raw:#x}");
    }
}

/// One page table (at `PT`) of pages the pressure path may not send out:
/// pinned RAM (present and allocate on write), read-only and executable
/// RAM, two present shared entries, a page on swap, an allocate-on-write
/// page, a not-present file page.
pub(super) fn unevictable() -> Scenario {
    let mut s = Scenario::empty(16, 4);
    let page = |k: u64| PT + k * 4096;
    let map = |k, writable, executable| Request::Map {
        addr: page(k),
        pages: 1,
        writable,
        executable,
        contiguous: false,
        privilege: USER,
    };
    let convert = |k, to| Request::Convert {
        addr: page(k),
        pages: 1,
        to,
        privilege: USER,
    };
    for req in [
        Request::map_writable(page(0), 1, USER),
        convert(0, AreaType::PinnedRam),
        convert(1, AreaType::PinnedRam),
        map(2, false, false),
        map(3, false, true),
        Request::map_writable(page(4), 1, USER),
        share(page(4), 1, 0, page(5)),
        Request::map_writable(page(6), 1, USER),
        Request::Write {
            addr: page(6) + 16,
            len: 64,
            seed: 3,
            privilege: USER,
        },
        Request::Evict {
            addr: page(6),
            pages: 1,
            privilege: USER,
        },
        convert(7, AreaType::UsableRam),
        Request::MapFile {
            addr: page(9),
            pages: 1,
            file: 0,
            file_page: 2,
            privilege: USER,
        },
    ] {
        s.apply(req);
    }
    let leaves: Vec<Leaf> = (0..10)
        .map(|k| decode_leaf(s.img.leaf(page(k)), true))
        .collect();
    let present = |kind, writable, executable| Leaf::Present {
        kind,
        writable,
        executable,
        frame: 0,
    };
    let unframed: Vec<Leaf> = leaves
        .iter()
        .map(|&l| match l {
            Leaf::Present {
                kind,
                writable,
                executable,
                ..
            } => present(kind, writable, executable),
            Leaf::OnSwap { .. } => Leaf::OnSwap { slot: 0 },
            l => l,
        })
        .collect();
    assert_eq!(
        unframed,
        [
            present(PresentKind::PinnedRam, true, false),
            Leaf::PinnedAllocOnWrite,
            present(PresentKind::Ram, false, false),
            present(PresentKind::Ram, false, true),
            present(PresentKind::Shared, true, false),
            present(PresentKind::Shared, true, false),
            Leaf::OnSwap { slot: 0 },
            Leaf::AllocOnWrite,
            Leaf::Unusable,
            Leaf::NotPresentMmap { file: 0, page: 2 },
        ],
        "the pages the tests meant"
    );
    s
}

/// `s` with `reqs` applied, clean while nothing is marked, and a checker
/// holding its record (for the incremental check after a mark).
pub(super) fn unmarked_with(
    mut s: Scenario,
    reqs: Vec<Request>,
    what: &str,
) -> (Scenario, Checker) {
    for req in reqs {
        s.apply(req);
    }
    assert!(full(&s).is_clean(), "{what}, unmarked");
    let checker = recorded(&mut s);
    (s, checker)
}

/// The page directory and page table of the page at `virt`, and its
/// level-1 entry.
pub(super) fn page_at(s: &mut Scenario, virt: u64) -> (u64, u64, u64) {
    let pd = s.img.entry_addr(virt, 2) & !0xfff;
    let leaf_at = s.img.leaf_addr(virt).expect("a page table");
    (pd, leaf_at & !0xfff, s.img.read_u64(leaf_at))
}

/// The ways to put a page the pressure path may send out at `at`.
pub(super) fn evictable_pages(at: u64) -> [(&'static str, Vec<Request>); 3] {
    let file = |write: bool| {
        let touch = if write {
            Request::Write {
                addr: at + 8,
                len: 8,
                seed: 5,
                privilege: USER,
            }
        } else {
            Request::Read {
                addr: at,
                len: 8,
                privilege: USER,
            }
        };
        let map = Request::MapFile {
            addr: at,
            pages: 1,
            file: 0,
            file_page: 1,
            privilege: USER,
        };
        vec![map, touch]
    };
    [
        ("writable RAM", vec![Request::map_writable(at, 1, USER)]),
        ("a clean file page", file(false)),
        ("a private file page", file(true)),
    ]
}

/// Sets the no-evictable mark in the PD entry of `virt`'s page table
/// (`PT`'s unless said); answers the entry.
pub(super) fn mark_at(s: &mut Scenario, virt: u64) -> u64 {
    let at = s.img.entry_addr(virt, 2);
    let e = s.img.read_u64(at);
    assert_eq!(e & P, P, "a page table: {e:#x}");
    s.img.write_u64(at, e | NO_EVICTABLE);
    e | NO_EVICTABLE
}

pub(super) fn mark(s: &mut Scenario) -> u64 {
    mark_at(s, PT)
}

/// One read-only kernel page mapped at `kpage` in `s`.
pub(super) fn map_kernel_read_only(s: &mut Scenario, kpage: u64) {
    s.apply(Request::Map {
        addr: kpage,
        pages: 1,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: K,
    });
}

#[test]
fn a_marked_page_table_of_pages_the_clock_may_not_send_out_is_clean() {
    let mut s = unevictable();
    assert!(marks_no_evictable(mark(&mut s)));
    let r = full(&s);
    assert!(r.is_clean(), "{r}");
    // Marked after the record was made: the incremental check, which
    // shares the record's copy of the unchanged table, agrees.
    let mut s = unevictable();
    let mut checker = recorded(&mut s);
    mark(&mut s);
    let r = incremental(&mut s, &mut checker);
    assert!(r.is_clean(), "{r}");
    // And a kernel page table, marked, of one read-only page.
    let mut s = unevictable();
    let kpage = crate::synth::KSPACE;
    map_kernel_read_only(&mut s, kpage);
    mark_at(&mut s, kpage);
    let r = full(&s);
    assert!(r.is_clean(), "{r}");
}

/// The one violation of `r`: a mark in `marked` (the entry, and the table
/// it names) broken by [`EVICTABLE`], entry 16 of `table`, `raw`, the
/// table's one such page; answers its path.
pub(super) fn one_broken_mark<'r>(
    r: &'r CheckReport,
    marked: (MarkedEntry, u64),
    (table, raw): (u64, u64),
    what: &str,
) -> &'r Path {
    assert_eq!(r.violations.len(), 1, "{what}: {r}");
    let Violation::NoEvictableMark {
        path,
        marked: entry,
        names,
        table: t,
        index,
        raw: at_raw,
        evictable: n,
    } = &r.violations[0]
    else {
        panic!("{what}: {r}");
    };
    assert_eq!((*entry, *names), marked, "{what}");
    assert_eq!((*t, *index, *at_raw, *n), (table, 16, raw, 1), "{what}");
    assert_eq!(path.virt, EVICTABLE, "{what}");
    path
}

#[test]
fn a_marked_page_table_holding_a_page_the_clock_may_send_out_breaks_invariant_4() {
    for (what, reqs) in evictable_pages(EVICTABLE) {
        let (mut s, mut checker) = unmarked_with(unevictable(), reqs, what);
        let pde = mark(&mut s);
        let (_, table, raw) = page_at(&mut s, EVICTABLE);
        let r = full(&s);
        assert_broken(
            &r,
            &[4],
            &format!(
                "the PD entry marks the page table at {table:#x} as holding no page the \
                 reclaim clock may send out (bit 62), but entry 16 ({raw:#x} "
            ),
        );
        let path = one_broken_mark(&r, (MarkedEntry::Pd, table), (table, raw), what);
        assert_eq!(path.steps.len(), 4, "{what}");
        assert_eq!(path.steps[2].raw, pde, "{what}");
        assert_eq!(path.steps[3].raw, raw, "{what}");
        // The incremental check shares the record's copy of the table
        // (its bytes did not change) and must still look into it.
        let inc = incremental(&mut s, &mut checker);
        assert_eq!(texts(&inc), texts(&r), "{what}, incremental");
    }
    // Every such page is counted, the first named.
    let mut s = unevictable();
    s.apply(Request::map_writable(EVICTABLE, 3, USER));
    mark(&mut s);
    let r = full(&s);
    assert_broken(&r, &[4], "entry 16 (");
    assert_broken(&r, &[4], "(such entries in the table: 3)");
}

#[test]
fn an_unmarked_page_table_may_hold_pages_the_clock_may_send_out() {
    let mut s = unevictable();
    // Each kind on a page of its own: pages 16, 17 and 18.
    for k in 0..3 {
        let mut kinds = evictable_pages(EVICTABLE + k * 4096).into_iter();
        let (_, reqs) = kinds.nth(k as usize).expect("three kinds");
        for req in reqs {
            s.apply(req);
        }
    }
    let kinds: Vec<bool> = (16..19)
        .map(|k| evictable(s.img.leaf(PT + k * 4096)))
        .collect();
    assert_eq!(kinds, [true; 3]);
    let r = full(&s);
    assert!(r.is_clean(), "{r}");
    let mut checker = recorded(&mut s);
    let r = incremental(&mut s, &mut checker);
    assert!(r.is_clean(), "{r}");
}
