//! The convert to pinned RAM's whole-table paths (`paging::pinned`): a
//! page table of unused pages the convert covers whole is filled at once,
//! and a whole allocate-on-write region becomes a table of pinned entries
//! directly; anything else goes entry by entry. Each test asks for what
//! the entry-by-entry path gives: the same states, counts and frames
//! ([`check`]).

use protocol::{AreaType, PageState};

use super::shared::states;
use super::spaces::write;
use super::whole_table::{mixed_table, pd_entry, TABLE};
use super::{assert_reads_pattern, check, convert, reset_and_check, stats, K};
use crate::pte;
use crate::sim::SimMachine;

/// `regions` 2 MiB regions from `base` on (2 or more): 0 whole allocate
/// on write, 1 a page table of allocate-on-write and unusable pages, the
/// rest whole allocate on write again.
fn unused_regions(base: u64, regions: u64) -> SimMachine {
    let mut m = SimMachine::new(256);
    convert(&mut m, base, regions * 512, AreaType::UsableRam);
    let region_1 = base + (1 << 21);
    write(&mut m, region_1, 8, 1, K);
    convert(&mut m, region_1, 2, AreaType::Unusable);
    assert!(pte::is_whole_aow(pd_entry(&mut m, base)));
    assert!(!pte::is_whole_aow(pd_entry(&mut m, region_1)));
    check(&mut m);
    m
}

/// [`unused_regions`] of [`TABLE`], three of them.
fn three_unused_regions() -> SimMachine {
    unused_regions(TABLE, 3)
}

#[test]
fn a_convert_to_pinned_of_whole_tables_of_unused_pages_fills_each_at_once() {
    let mut m = three_unused_regions();
    let before = stats(&mut m);
    let reads = m.vmm.mem().table_reads;
    convert(&mut m, TABLE, 2 * 512, AreaType::PinnedRam);
    // Entry by entry, each page's change read its table twice: 2,589
    // reads. What is left (about 540) is the convert's count of what the
    // range needs, which reads region 1's entries one by one.
    let reads = m.vmm.mem().table_reads - reads;
    assert!(reads < 1024, "{reads} table reads for 1024 pages");
    check(&mut m);
    let after = stats(&mut m);
    assert_eq!(after.alloc_on_write_pages, before.alloc_on_write_pages + 2);
    assert_eq!(after.page_table_frames, before.page_table_frames);
    assert_eq!(after.free_frames, before.free_frames, "no frame taken");
    assert!(states(&mut m, TABLE, 2 * 512)
        .iter()
        .all(|s| *s == PageState::PinnedAllocOnWrite));
    assert!(states(&mut m, TABLE + (2 << 21), 512)
        .iter()
        .all(|s| *s == PageState::AllocOnWrite));
    // Region 0 is a page table now, every entry of it pinned.
    let raw = pd_entry(&mut m, TABLE);
    assert!(!pte::is_whole_aow(raw) && raw & 1 == 1, "{raw:#x}");
    write(&mut m, TABLE + 4096, 8, 2, K);
    assert!(matches!(
        states(&mut m, TABLE + 4096, 1)[..],
        [PageState::PinnedRam { .. }]
    ));
    check(&mut m);
    reset_and_check(&mut m);
}

#[test]
fn a_convert_to_pinned_of_part_of_a_region_goes_entry_by_entry() {
    let mut m = three_unused_regions();
    let region_2 = TABLE + (2 << 21);
    convert(&mut m, region_2 + 4096, 3, AreaType::PinnedRam);
    check(&mut m);
    let got = states(&mut m, region_2, 5);
    use PageState::{AllocOnWrite as Aow, PinnedAllocOnWrite as Pinned};
    assert_eq!(got, [Aow, Pinned, Pinned, Pinned, Aow]);
    reset_and_check(&mut m);
}

#[test]
fn a_convert_to_pinned_of_a_whole_table_with_pages_in_use_goes_entry_by_entry() {
    let mut m = mixed_table();
    convert(&mut m, TABLE, 512, AreaType::PinnedRam);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.swap_slots_used, 0, "pages 0-3 came back");
    let got = states(&mut m, TABLE, 512);
    assert!(got[..8]
        .iter()
        .chain(&got[10..11])
        .all(|p| matches!(p, PageState::PinnedRam { writable: true, .. })));
    assert!(got[8..10]
        .iter()
        .chain(&got[11..])
        .all(|p| *p == PageState::PinnedAllocOnWrite));
    assert_reads_pattern(&mut m, 3, TABLE, 8 * 4096);
    reset_and_check(&mut m);
}

/// A table some of whose pages are pinned already is filled whole too
/// (not entry by entry); a region pinned whole again changes nothing.
#[test]
fn a_convert_to_pinned_over_pinned_pages_fills_the_rest_and_changes_nothing_twice() {
    let mut m = three_unused_regions();
    let region_2 = TABLE + (2 << 21);
    convert(&mut m, region_2 + 4096, 3, AreaType::PinnedRam);
    for _ in 0..2 {
        let before = stats(&mut m);
        let reads = m.vmm.mem().table_reads;
        convert(&mut m, region_2, 512, AreaType::PinnedRam);
        // The convert's count of what the range needs reads the table
        // once per entry; entry by entry, the change would read it twice
        // more per page.
        let reads = m.vmm.mem().table_reads - reads;
        assert!(reads < 1024, "{reads} table reads for 512 pages");
        check(&mut m);
        let after = stats(&mut m);
        assert_eq!(after.alloc_on_write_pages, before.alloc_on_write_pages);
        assert_eq!(after.free_frames, before.free_frames);
        assert!(states(&mut m, region_2, 512)
            .iter()
            .all(|s| *s == PageState::PinnedAllocOnWrite));
    }
    reset_and_check(&mut m);
}

/// The same fast paths in the kernel's span, whose tables are kernel
/// tables (no U bit).
#[test]
fn a_convert_to_pinned_of_whole_kernel_tables_fills_each_at_once() {
    const KERNEL: u64 = 0xffff_c080_4000_0000;
    let mut m = unused_regions(KERNEL, 2);
    let reads = m.vmm.mem().table_reads;
    convert(&mut m, KERNEL, 2 * 512, AreaType::PinnedRam);
    let reads = m.vmm.mem().table_reads - reads;
    assert!(reads < 1024, "{reads} table reads for 1024 pages");
    check(&mut m);
    assert!(states(&mut m, KERNEL, 2 * 512)
        .iter()
        .all(|s| *s == PageState::PinnedAllocOnWrite));
    reset_and_check(&mut m);
}
