//! The whole-table paths of `paging::whole`: a page table a convert or a
//! reset covers whole is freed or filled at once. Each test builds a table
//! holding every kind of entry, covers it whole, and asks for exactly what
//! the entry-by-entry path gives: every frame, swap slot and table back,
//! the counters equal to a walk ([`check`]), no stale translation.

use protocol::{AreaType, Request, Response};

use oracle::checker::walk_levels;

use super::ram::{checked_hello, SimRam};
use super::{check, convert, req, reset_and_check, stats, K};
use crate::backend::FrameAccess;
use crate::pte;
use crate::sim::SimMachine;

/// A 2 MiB-aligned user address: the first page of one page table.
pub(super) const TABLE: u64 = 0x4000_0000;

/// A machine whose page table at [`TABLE`] holds present RAM pages (4–7,
/// touched, so the TLB holds them), pages on swap (0–3), file pages not
/// present (8–9) and present (10), and allocate-on-write pages (the rest).
pub(super) fn mixed_table() -> SimMachine {
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

/// The raw entry at `level` (4 the PML4's, 1 the page's) on the way to
/// the page at `addr`, as the oracle's walk reads it from the simulated
/// RAM.
pub(super) fn level_entry(m: &mut SimMachine, addr: u64, level: usize) -> u64 {
    let hello = checked_hello(m);
    let levels = walk_levels(&SimRam::of(m), &hello, addr);
    match levels.get(4 - level).map(|l| l.raw.clone()) {
        Some(Ok(raw)) => raw,
        other => panic!("no level-{level} entry over {addr:#x}: {other:?}"),
    }
}

/// The raw PD entry over the page at `addr`.
pub(super) fn pd_entry(m: &mut SimMachine, addr: u64) -> u64 {
    level_entry(m, addr, 2)
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
