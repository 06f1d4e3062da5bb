//! The no-evictable mark of a PDPT entry (`protocol::formats`,
//! "Upper-level entries"): every page table under a marked PDPT entry
//! must hold no page the pressure path may send out, whatever the PD
//! entries between say (one under a marked PDPT entry may be unmarked).
//! The PD entry's mark, and the helpers, are `no_evictable`'s.

use protocol::{AreaType, Request};

use super::super::entry::{decode_leaf, marks_no_evictable, Leaf, NO_EVICTABLE, P};
use super::super::violation::MarkedEntry;
use super::super::Violation;
use super::assert_broken;
use super::no_evictable::{
    evictable_pages, map_kernel_read_only, mark, one_broken_mark, page_at, unevictable,
    unmarked_with, EVICTABLE, PT,
};
use super::shared::{full, incremental, recorded, texts, K, U as USER};
use crate::bench::Scenario;

/// The page table after `PT`'s, under the same page directory.
const PT2: u64 = PT + 0x20_0000;

/// Sets the no-evictable mark in the PDPT entry of `virt`'s page directory
/// (`PT`'s unless said); answers the entry.
fn mark_pdpt_at(s: &mut Scenario, virt: u64) -> u64 {
    let at = s.img.entry_addr(virt, 3);
    let e = s.img.read_u64(at);
    assert_eq!(e & P, P, "a page directory: {e:#x}");
    s.img.write_u64(at, e | NO_EVICTABLE);
    e | NO_EVICTABLE
}

fn mark_pdpt(s: &mut Scenario) -> u64 {
    mark_pdpt_at(s, PT)
}

/// The PD entry of `virt`'s page table.
fn pd_entry(s: &mut Scenario, virt: u64) -> u64 {
    let at = s.img.entry_addr(virt, 2);
    s.img.read_u64(at)
}

/// [`unevictable`]'s page table and a second one (`PT2`, under the same
/// page directory) of three allocate-on-write pages: none present, so the
/// reclaim clock never reads it and never marks its PD entry.
fn two_tables() -> Scenario {
    let mut s = unevictable();
    s.apply(Request::Convert {
        addr: PT2,
        pages: 3,
        to: AreaType::UsableRam,
        privilege: USER,
    });
    assert_eq!(decode_leaf(s.img.leaf(PT2), true), Leaf::AllocOnWrite);
    let pde = pd_entry(&mut s, PT2);
    assert_eq!((pde & P, pde >> 52), (P, 0), "a page table, none present");
    // Both under one PDPT entry, and no other table there.
    let tables = full(&s).walk.tables;
    let under: Vec<u64> = tables
        .iter()
        .filter(|t| t.level == 1 && t.path.virt >> 30 == PT >> 30)
        .map(|t| t.path.virt)
        .collect();
    assert_eq!(under, [PT, PT2]);
    s
}

#[test]
fn a_marked_pdpt_entry_over_page_tables_of_pages_the_clock_may_not_send_out_is_clean() {
    // The PDPT entry marked alone, and over `PT`'s marked PD entry: `PT2`'s
    // stays unmarked either way (its table has no present page).
    for pd_marked in [false, true] {
        let mut s = two_tables();
        if pd_marked {
            mark(&mut s);
        }
        assert!(marks_no_evictable(mark_pdpt(&mut s)));
        assert!(!marks_no_evictable(pd_entry(&mut s, PT2)));
        let r = full(&s);
        assert!(r.is_clean(), "PD entry marked: {pd_marked}: {r}");
        // Marked after the record was made: the incremental check, which
        // shares the record's copies of the unchanged PD and page tables,
        // agrees.
        let mut s = two_tables();
        let mut checker = recorded(&mut s);
        if pd_marked {
            mark(&mut s);
        }
        mark_pdpt(&mut s);
        let r = incremental(&mut s, &mut checker);
        assert!(r.is_clean(), "PD entry marked: {pd_marked}: {r}");
    }
    // And a kernel PDPT entry, marked, over a table of one read-only page.
    let mut s = unevictable();
    let kpage = crate::synth::KSPACE;
    map_kernel_read_only(&mut s, kpage);
    assert!(!marks_no_evictable(pd_entry(&mut s, kpage)));
    mark_pdpt_at(&mut s, kpage);
    let r = full(&s);
    assert!(r.is_clean(), "{r}");
}

/// The PDPT violation's text up to the entry's flags.
fn pdpt_says(pd: u64, table: u64, index: u64, raw: u64) -> String {
    format!(
        "the PDPT entry marks the page directory at {pd:#x} as holding no page the reclaim \
         clock may send out (bit 62), but the page table at {table:#x} holds one: entry \
         {index} ({raw:#x} "
    )
}

#[test]
fn a_marked_pdpt_entry_over_a_page_the_clock_may_send_out_breaks_invariant_4() {
    for (what, reqs) in evictable_pages(EVICTABLE) {
        let (mut s, mut checker) = unmarked_with(two_tables(), reqs, what);
        // The PDPT entry marked; `PT`'s PD entry, over the page, not.
        let pdpte = mark_pdpt(&mut s);
        let pde = pd_entry(&mut s, PT);
        assert!(!marks_no_evictable(pde), "{what}");
        let (pd, table, raw) = page_at(&mut s, EVICTABLE);
        let r = full(&s);
        assert_broken(&r, &[4], &pdpt_says(pd, table, 16, raw));
        assert_broken(&r, &[4], "(such entries in the table: 1)");
        let path = one_broken_mark(&r, (MarkedEntry::Pdpt, pd), (table, raw), what);
        let raws: Vec<u64> = path.steps.iter().map(|st| st.raw).collect();
        assert_eq!(raws[1..], [pdpte, pde, raw], "{what}");
        // The incremental check shares the record's copies of the PD and
        // the page table (their bytes did not change) and must still look
        // into the table.
        let inc = incremental(&mut s, &mut checker);
        assert_eq!(texts(&inc), texts(&r), "{what}, incremental");
    }
}

#[test]
fn a_pdpt_mark_covers_every_page_table_under_it_whatever_their_pd_entries() {
    // The page in `PT2`, whose PD entry is unmarked, and `PT`'s marked:
    // only `PT2`'s table is named, for the PDPT entry's mark.
    let mut s = two_tables();
    s.apply(Request::map_writable(PT2 + 5 * 4096, 2, USER));
    let mut checker = recorded(&mut s);
    mark(&mut s);
    mark_pdpt(&mut s);
    let (pd, table, raw) = page_at(&mut s, PT2 + 5 * 4096);
    let r = full(&s);
    assert_broken(&r, &[4], &pdpt_says(pd, table, 5, raw));
    assert_broken(&r, &[4], "(such entries in the table: 2)");
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));

    // A page written under a PDPT entry marked before the record, the mark
    // left set: the page table changed, the PDPT did not.
    let mut s = two_tables();
    mark_pdpt(&mut s);
    let mut checker = recorded(&mut s);
    s.apply(Request::map_writable(EVICTABLE, 1, USER));
    let (pd, table, raw) = page_at(&mut s, EVICTABLE);
    let r = full(&s);
    assert_broken(&r, &[4], &pdpt_says(pd, table, 16, raw));
    assert_eq!(r.violations.len(), 1, "{r}");
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));

    // Both the PD entry and the PDPT entry above marked over the page: one
    // violation for each mark.
    let mut s = two_tables();
    s.apply(Request::map_writable(EVICTABLE, 1, USER));
    let mut checker = recorded(&mut s);
    mark(&mut s);
    mark_pdpt(&mut s);
    let (pd, table, raw) = page_at(&mut s, EVICTABLE);
    let r = full(&s);
    assert_broken(&r, &[4], &pdpt_says(pd, table, 16, raw));
    assert_broken(
        &r,
        &[4],
        &format!("the PD entry marks the page table at {table:#x} as holding no page"),
    );
    let marks: Vec<MarkedEntry> = r
        .violations
        .iter()
        .map(|v| match v {
            Violation::NoEvictableMark { marked, .. } => *marked,
            v => panic!("{v}"),
        })
        .collect();
    assert_eq!(marks, [MarkedEntry::Pdpt, MarkedEntry::Pd], "{r}");
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));

    // A kernel PDPT entry marked over a writable kernel page.
    let mut s = unevictable();
    let kpage = crate::synth::KSPACE;
    s.apply(Request::map_writable(kpage, 1, K));
    let mut checker = recorded(&mut s);
    mark_pdpt_at(&mut s, kpage);
    let (pd, table, raw) = page_at(&mut s, kpage);
    let r = full(&s);
    assert_broken(&r, &[4], &pdpt_says(pd, table, 0, raw));
    assert_eq!(texts(&incremental(&mut s, &mut checker)), texts(&r));
}
