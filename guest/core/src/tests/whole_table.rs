//! The whole-table paths of `paging::whole` and `paging::pinned`: a page
//! table a convert or a reset covers whole is freed or filled at once. Each test builds a table
//! holding every kind of entry, covers it whole, and asks for exactly what
//! the entry-by-entry path gives: every frame, swap slot and table back,
//! the counters equal to a walk ([`check`]), no stale translation.

use protocol::{AreaType, PageState, Request, Response};

use oracle::checker::walk_levels;

use super::ram::{checked_hello, SimRam};
use super::{assert_reads_pattern, check, convert, req, reset_and_check, stats, K};
use crate::backend::FrameAccess;
use crate::pte;
use crate::sim::SimMachine;

/// A 2 MiB-aligned user address: the first page of one page table.
const TABLE: u64 = 0x4000_0000;

/// A machine whose page table at [`TABLE`] holds present RAM pages (4–7,
/// touched, so the TLB holds them), pages on swap (0–3), file pages not
/// present (8–9) and present (10), and allocate-on-write pages (the rest).
fn mixed_table() -> SimMachine {
    let mut m = SimMachine::with_files(1024, &[(4, 0xf11e)]);
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    let write = Request::Write {
        addr: TABLE,
        len: 8 * 4096,
        seed: 3,
        privilege: K,
    };
    assert_eq!(req(&mut m, write).split_reclaimed().1, Response::Done);
    let evict = Request::Evict {
        addr: TABLE,
        pages: 4,
        privilege: K,
    };
    assert!(matches!(
        req(&mut m, evict).split_reclaimed().1,
        Response::Evicted { .. }
    ));
    convert(&mut m, TABLE + 8 * 4096, 3, AreaType::Unusable);
    let map_file = Request::MapFile {
        addr: TABLE + 8 * 4096,
        pages: 3,
        file: 0,
        file_page: 0,
        privilege: K,
    };
    assert_eq!(req(&mut m, map_file).split_reclaimed().1, Response::Done);
    let read = Request::Read {
        addr: TABLE + 10 * 4096,
        len: 4096,
        privilege: K,
    };
    assert!(matches!(
        req(&mut m, read).split_reclaimed().1,
        Response::Checksum { .. }
    ));
    let s = stats(&mut m);
    assert_eq!(s.swap_slots_used, 4, "pages 0-3 on swap");
    assert_eq!(s.present_pages, 5, "pages 4-7 and 10 present");
    assert_eq!(s.alloc_on_write_pages, 512 - 11);
    check(&mut m);
    m
}

#[test]
fn a_convert_to_unusable_of_a_whole_table_frees_every_page_and_the_table() {
    let mut m = mixed_table();
    let tables = stats(&mut m).page_table_frames;
    convert(&mut m, TABLE, 512, AreaType::Unusable);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.swap_slots_used, 0, "every swap slot freed");
    assert_eq!(s.present_pages + s.alloc_on_write_pages, 0);
    assert_eq!(s.page_table_frames, tables - 3, "the PT, PD and PDPT freed");
    let read = Request::Read {
        addr: TABLE + 5 * 4096,
        len: 8,
        privilege: K,
    };
    assert!(matches!(req(&mut m, read), Response::Fault { .. }));
}

#[test]
fn a_reset_frees_whole_tables_of_every_kind_of_entry() {
    let mut m = mixed_table();
    reset_and_check(&mut m);
}

/// The raw PD entry over the page at `addr`, as the oracle's walk reads
/// it from the simulated RAM.
fn pd_entry(m: &mut SimMachine, addr: u64) -> u64 {
    let hello = checked_hello(m);
    let levels = walk_levels(&SimRam::of(m), &hello, addr);
    match levels.get(2).map(|l| l.raw.clone()) {
        Some(Ok(raw)) => raw,
        other => panic!("no PD entry over {addr:#x}: {other:?}"),
    }
}

#[test]
fn a_convert_to_usable_of_new_whole_tables_writes_one_pd_entry_each() {
    let mut m = SimMachine::new(256);
    let free = stats(&mut m).free_frames;
    convert(&mut m, TABLE, 3 * 512, AreaType::UsableRam);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.alloc_on_write_pages, 3 * 512);
    assert_eq!(
        s.page_table_frames, 5,
        "a PDPT, a PD and three frames kept for page tables"
    );
    assert_eq!(s.free_frames, free - 5);
    for t in 0..3 {
        let raw = pd_entry(&mut m, TABLE + t * (1 << 21));
        assert!(pte::is_whole_aow(raw), "region {t}: {raw:#x}");
    }
    // Every page of the regions is usable: a touch of the last one makes
    // its region a page table (no frame taken for it) and the page present.
    let write = Request::Write {
        addr: TABLE + 3 * 512 * 4096 - 8,
        len: 8,
        seed: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!((s.page_table_frames, s.present_pages), (5, 1));
    assert_eq!(s.free_frames, free - 6, "one data frame more");
    let raw = pd_entry(&mut m, TABLE + 2 * (1 << 21));
    assert_eq!((raw & 1, pte::present_count(raw)), (1, 1), "{raw:#x}");
    assert!(pte::is_whole_aow(pd_entry(&mut m, TABLE)));
    // And back: whole regions go with their frames, unread.
    convert(&mut m, TABLE, 3 * 512, AreaType::Unusable);
    check(&mut m);
    assert_eq!(stats(&mut m).free_frames, free);
}

#[test]
fn a_whole_allocate_on_write_region_made_unusable_whole_frees_its_frame_unread() {
    let mut m = SimMachine::new(256);
    let free = stats(&mut m).free_frames;
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    let raw = pd_entry(&mut m, TABLE);
    assert!(pte::is_whole_aow(raw), "{raw:#x}");
    // The frame kept for the table holds garbage: nothing reads it.
    m.vmm.mem().frame_bytes(pte::frame_of(raw)).fill(0xa5);
    check(&mut m);
    convert(&mut m, TABLE, 512, AreaType::Unusable);
    check(&mut m);
    assert_eq!(stats(&mut m).free_frames, free);
    // And by a reset.
    convert(&mut m, TABLE, 1024, AreaType::UsableRam);
    let raw = pd_entry(&mut m, TABLE + (1 << 21));
    m.vmm.mem().frame_bytes(pte::frame_of(raw)).fill(0x5a);
    reset_and_check(&mut m);
    assert_eq!(stats(&mut m).free_frames, free);
}

#[test]
fn part_of_a_whole_allocate_on_write_region_changes_through_its_table_without_a_frame() {
    let mut m = SimMachine::new(256);
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    let free = stats(&mut m).free_frames;
    // Map and MapFile over it name the first page of the range.
    let map = Request::Map {
        addr: TABLE + 5 * 4096,
        pages: 2,
        writable: true,
        executable: false,
        contiguous: false,
        privilege: K,
    };
    assert_eq!(
        req(&mut m, map),
        Response::Error(protocol::Error::InvalidState {
            addr: TABLE + 5 * 4096
        })
    );
    // Part of it made unusable: its page table is filled from the frame
    // kept for it; no frame is taken or freed.
    convert(&mut m, TABLE + 10 * 4096, 20, AreaType::Unusable);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!((s.free_frames, s.alloc_on_write_pages), (free, 512 - 20));
    assert_eq!(pd_entry(&mut m, TABLE) & 1, 1, "a page table now");
    // Usable again whole: every page allocate on write, in the table now
    // filled (a touch would only fill it again), no frame taken or freed.
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    check(&mut m);
    assert_eq!(pd_entry(&mut m, TABLE) & 1, 1, "still a page table");
    let s = stats(&mut m);
    assert_eq!((s.free_frames, s.alloc_on_write_pages), (free, 512));
    // Unusable whole, then usable whole again: one entry again.
    convert(&mut m, TABLE, 512, AreaType::Unusable);
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    check(&mut m);
    assert!(pte::is_whole_aow(pd_entry(&mut m, TABLE)));
    assert_eq!(stats(&mut m).free_frames, free);
}

#[test]
fn a_convert_to_usable_of_a_whole_table_keeps_what_it_already_holds() {
    let mut m = mixed_table();
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    check(&mut m);
    let s = stats(&mut m);
    // Pages 8-9 (file pages not present) became allocate-on-write, page 10
    // (present file page) private RAM; the rest kept their state.
    assert_eq!(s.swap_slots_used, 4);
    assert_eq!(s.present_pages, 5);
    assert_eq!(s.alloc_on_write_pages, 512 - 9);
}

/// A machine with `tables` page tables of present RAM from [`TABLE`], every
/// page written (touched: the TLB holds them all).
fn present_tables(tables: u64) -> SimMachine {
    let mut m = SimMachine::new(4096);
    let pages = tables * 512;
    convert(&mut m, TABLE, pages, AreaType::UsableRam);
    let write = Request::Write {
        addr: TABLE,
        len: pages * 4096,
        seed: 5,
        privilege: K,
    };
    assert_eq!(req(&mut m, write).split_reclaimed().1, Response::Done);
    assert_eq!(stats(&mut m).present_pages, pages);
    assert_eq!(m.vmm.mem().tlb.len() as u64, pages, "every page touched");
    m
}

#[test]
fn many_present_pages_made_unusable_end_in_one_full_flush() {
    let mut m = present_tables(3);
    let (flushed, full) = (m.vmm.mem().flushed.len(), m.vmm.mem().full_flushes);
    // Part of the first table (entry by entry) and two whole tables.
    let from = TABLE + 100 * 4096;
    convert(&mut m, from, 3 * 512 - 100, AreaType::Unusable);
    let mem = m.vmm.mem();
    assert_eq!(mem.full_flushes, full + 1, "one full flush");
    // The first pages one by one, then the unlink of each whole table
    // (its PD entry, flushed at once by `unlink_table`).
    assert_eq!(
        (mem.flushed.len() - flushed) as u64,
        crate::backend::Flushes::LIMIT + 2,
    );
    // Only the pages left present are still in the TLB.
    assert!(mem.tlb.is_empty());
    check(&mut m);
    assert_eq!(stats(&mut m).present_pages, 100);
    // A reset of the same state also ends in a full flush.
    let mut m = present_tables(2);
    let full = m.vmm.mem().full_flushes;
    reset_and_check(&mut m);
    assert_eq!(m.vmm.mem().full_flushes, full + 1);
}

#[test]
fn few_present_pages_are_flushed_one_by_one() {
    let mut m = present_tables(1);
    let (flushed, full) = (m.vmm.mem().flushed.len(), m.vmm.mem().full_flushes);
    convert(&mut m, TABLE, 100, AreaType::Unusable);
    let mem = m.vmm.mem();
    assert_eq!(mem.full_flushes, full, "no full flush");
    assert_eq!(mem.flushed.len() - flushed, 100);
    assert_eq!(mem.tlb.len(), 412, "the other pages stay cached");
    check(&mut m);
}

/// A page table made whole allocate on write goes from present to not
/// present: the CPU may hold the old entry in its paging-structure caches
/// and walk on to the frame, so the entry is invalidated before the frame
/// can be freed (found by review: the region's frame was freed with no
/// flush at all when a page of the next region kept the PD alive).
#[test]
fn a_page_table_made_whole_allocate_on_write_is_invalidated() {
    let mut m = SimMachine::new(256);
    // A page of the next region keeps the PD (and the PDPT) alive, so that
    // freeing them does not flush the region by chance.
    convert(&mut m, TABLE + (1 << 21), 1, AreaType::UsableRam);
    let flushed_in_region = |m: &mut SimMachine, from: usize| {
        let mem = m.vmm.mem();
        let region = TABLE..TABLE + (1 << 21);
        let one = mem.flushed[from..]
            .iter()
            .any(|p| region.contains(&p.start_address().as_u64()));
        (one, mem.full_flushes)
    };
    let (from, full) = (m.vmm.mem().flushed.len(), m.vmm.mem().full_flushes);
    convert(&mut m, TABLE, 512, AreaType::UsableRam);
    assert!(pte::is_whole_aow(pd_entry(&mut m, TABLE)));
    let (one, full_after) = flushed_in_region(&mut m, from);
    assert!(
        one || full_after > full,
        "the present PD entry over {TABLE:#x} went not present with no invalidation"
    );
    check(&mut m);
}

#[test]
fn the_heaps_untouched_tables_are_whole_allocate_on_write_entries() {
    // 64 MiB: a 16 MiB heap, eight page tables' worth.
    let mut m = SimMachine::new(16384);
    let hello = checked_hello(&mut m);
    let boot = stats(&mut m);
    let regions: Vec<u64> = (0..boot.heap_max_bytes >> 21)
        .map(|t| hello.heap.start + (t << 21))
        .collect();
    assert_eq!(regions.len(), 8);
    let whole = |m: &mut SimMachine| {
        regions
            .iter()
            .filter(|&&r| pte::is_whole_aow(pd_entry(m, r)))
            .count()
    };
    // Every region but those the kernel's own blocks use (at the start).
    let untouched = whole(&mut m);
    assert!(untouched >= 7, "{untouched} of 8 regions whole");
    // A host block (upper half of the heap) written: its region alone
    // becomes a page table, over the frame kept for it.
    let kmalloc = Request::Kmalloc {
        size: 4096,
        align: 4096,
        privilege: K,
    };
    let Response::Kmalloc { addr } = req(&mut m, kmalloc).split_reclaimed().1 else {
        panic!("kmalloc refused")
    };
    assert!(pte::is_whole_aow(pd_entry(&mut m, addr)));
    let write = Request::Write {
        addr,
        len: 4096,
        seed: 5,
        privilege: K,
    };
    assert_eq!(req(&mut m, write).split_reclaimed().1, Response::Done);
    assert!(!pte::is_whole_aow(pd_entry(&mut m, addr)));
    assert_eq!(whole(&mut m), untouched - 1);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(
        s.heap_table_frames, boot.heap_table_frames,
        "no frame taken"
    );
    assert_eq!(s.heap_pages, boot.heap_pages + 1);
    reset_and_check(&mut m);
}

fn states(m: &mut SimMachine, addr: u64, pages: u64) -> Vec<PageState> {
    let query = Request::Query {
        addr,
        pages,
        privilege: K,
    };
    match req(m, query) {
        Response::Pages(p) => p,
        r => panic!("{r:?}"),
    }
}

/// Regions of [`TABLE`] on: 0 whole allocate on write, 1 a page table of
/// allocate-on-write and unusable pages, 2 whole allocate on write again.
fn three_unused_regions() -> SimMachine {
    let mut m = SimMachine::new(256);
    convert(&mut m, TABLE, 3 * 512, AreaType::UsableRam);
    let region_1 = TABLE + (1 << 21);
    let write = Request::Write {
        addr: region_1,
        len: 8,
        seed: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    convert(&mut m, region_1, 2, AreaType::Unusable);
    assert!(pte::is_whole_aow(pd_entry(&mut m, TABLE)));
    assert!(!pte::is_whole_aow(pd_entry(&mut m, region_1)));
    check(&mut m);
    m
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
    let write = Request::Write {
        addr: TABLE + 4096,
        len: 8,
        seed: 2,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
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

/// A table some of whose pages are pinned already is filled whole too,
/// counted right; a region pinned whole again changes nothing.
#[test]
fn a_convert_to_pinned_over_pinned_pages_fills_the_rest_and_changes_nothing_twice() {
    let mut m = three_unused_regions();
    let region_2 = TABLE + (2 << 21);
    convert(&mut m, region_2 + 4096, 3, AreaType::PinnedRam);
    for _ in 0..2 {
        let before = stats(&mut m);
        convert(&mut m, region_2, 512, AreaType::PinnedRam);
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
    let mut m = SimMachine::new(256);
    convert(&mut m, KERNEL, 2 * 512, AreaType::UsableRam);
    let write = Request::Write {
        addr: KERNEL + (1 << 21),
        len: 8,
        seed: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    convert(&mut m, KERNEL + (1 << 21), 1, AreaType::Unusable);
    assert!(pte::is_whole_aow(pd_entry(&mut m, KERNEL)));
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
