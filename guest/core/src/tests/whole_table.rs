//! The whole-table paths of `paging::whole`: a page table a convert or a
//! reset covers whole is freed or filled at once. Each test builds a table
//! holding every kind of entry, covers it whole, and asks for exactly what
//! the entry-by-entry path gives: every frame, swap slot and table back,
//! the counters equal to a walk ([`check`]), no stale translation.

use protocol::{AreaType, Request, Response};

use super::{check, req, reset_and_check, stats, K};
use crate::sim::SimMachine;

/// A 2 MiB-aligned user address: the first page of one page table.
const TABLE: u64 = 0x4000_0000;

/// Converts `pages` pages at `addr` to `to`; the answer must be `Done`.
fn convert(m: &mut SimMachine, addr: u64, pages: u64, to: AreaType) {
    let r = Request::Convert {
        addr,
        pages,
        to,
        privilege: K,
    };
    // `Done`, not `Stale`: every present page made unusable was flushed.
    assert_eq!(
        req(m, r),
        Response::Done,
        "convert {pages} at {addr:#x} to {to:?}"
    );
}

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

#[test]
fn a_convert_to_usable_of_a_new_whole_table_fills_it() {
    let mut m = SimMachine::new(256);
    convert(&mut m, TABLE, 3 * 512, AreaType::UsableRam);
    check(&mut m);
    let s = stats(&mut m);
    assert_eq!(s.alloc_on_write_pages, 3 * 512);
    assert_eq!(s.page_table_frames, 5, "a PDPT, a PD and three PTs");
    // Every page of the tables filled at once is usable: the last one too.
    let write = Request::Write {
        addr: TABLE + 3 * 512 * 4096 - 8,
        len: 8,
        seed: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    check(&mut m);
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
