//! The no-evictable mark of a PD entry (`pte::marks_no_evictable`): a
//! sweep of the clock that read a whole page table and found no page it
//! may send out marks the table, later sweeps pass it unread, and a page
//! the pressure path may send out made in it takes the mark away again.
//!
//! In a fuzz campaign's operation mix run in-process, sweeps read the
//! tables of pinned, read-only and shared pages at every pass: a third of
//! the clock's entry reads were sweeps that found nothing, and most of the
//! rest passed such tables on the way to a victim.

use protocol::{AreaType, Reclaim, Request, Response};

use super::clock_laps::take_every_spare_frame;
use super::whole_table::pd_entry;
use super::{check, convert, map, req, stats, K};
use crate::pte;
use crate::sim::SimMachine;

/// Where the read-only RAM that fills memory lies.
const FILL: u64 = 0x1000_0000;
/// One page table's span.
const TABLE: u64 = 512 * 4096;

/// A machine of 4096 frames whose spare frames are all present read-only
/// RAM from [`FILL`] (the last of them writable), then taken by the host
/// but for none: every frame from now on is reclaimed. Answers how many
/// pages the fill has.
fn full_of_read_only_but_the_last() -> (SimMachine, u64) {
    let mut m = SimMachine::new(4096);
    let reserve = protocol::heap_reserve_frames(stats(&mut m).heap_max_bytes);
    let pages = stats(&mut m).free_frames - reserve - 16;
    assert_eq!(
        req(&mut m, map(FILL, pages - 1, false, false, K)),
        Response::Done
    );
    let last = FILL + (pages - 1) * 4096;
    assert_eq!(
        req(&mut m, Request::map_writable(last, 1, K)),
        Response::Done
    );
    take_every_spare_frame(&mut m);
    (m, pages)
}

/// Asks for one frame, which the clock must take from `victim`: the page
/// table reads it took.
fn one_frame_from(m: &mut SimMachine, victim: u64) -> u64 {
    let before = m.vmm.mem().table_reads;
    let alloc = Request::AllocFrames {
        count: 1,
        contiguous: false,
        privilege: K,
    };
    let (events, answer) = req(m, alloc).split_reclaimed();
    assert!(matches!(answer, Response::Frames(_)), "{answer:?}");
    let sent: Vec<u64> = events
        .iter()
        .filter_map(|e| match *e {
            Reclaim::Swapped { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(sent, [victim], "{events:?}");
    m.vmm.mem().table_reads - before
}

/// Makes the fill's page at `page` present writable RAM (unmapped, then
/// mapped again by `Map`'s fill).
fn remap_writable(m: &mut SimMachine, page: u64) {
    let unmap = Request::Unmap {
        addr: page,
        pages: 1,
        privilege: K,
    };
    assert_eq!(req(m, unmap), Response::Done);
    assert_eq!(req(m, Request::map_writable(page, 1, K)), Response::Done);
}

/// Whether the PD entry of the page table holding `addr` has the mark.
fn marked(m: &mut SimMachine, addr: u64) -> bool {
    pte::marks_no_evictable(pd_entry(m, addr))
}

#[test]
fn a_sweep_marks_the_tables_it_found_nothing_in_and_later_sweeps_pass_them() {
    let (mut m, pages) = full_of_read_only_but_the_last();
    let last = FILL + (pages - 1) * 4096;
    let tables = pages.div_ceil(512);
    assert!(tables >= 6, "{pages} pages");
    let first = one_frame_from(&mut m, last);
    // Every whole table of read-only pages is marked; the one the victim
    // was in is not (the sweep visited a page there).
    for t in 0..tables - 1 {
        assert!(marked(&mut m, FILL + t * TABLE), "table {t}");
    }
    assert!(!marked(&mut m, last));
    check(&mut m);

    // A page made writable in the last table is found without reading the
    // marked ones: the sweep wraps round the whole managed space to it.
    remap_writable(&mut m, last - 4096);
    let then = one_frame_from(&mut m, last - 4096);
    assert!(
        then + tables - 2 <= first,
        "{then} table reads after the marks, {first} before"
    );
    check(&mut m);
}

#[test]
fn a_page_the_clock_may_send_out_takes_its_tables_mark_away() {
    let (mut m, pages) = full_of_read_only_but_the_last();
    one_frame_from(&mut m, FILL + (pages - 1) * 4096);
    assert!(marked(&mut m, FILL) && marked(&mut m, FILL + TABLE));

    // `Map`'s fill makes the first table's page writable again.
    remap_writable(&mut m, FILL);
    assert!(!marked(&mut m, FILL), "Map's fill clears the mark");
    check(&mut m);
    one_frame_from(&mut m, FILL);

    // A write fault on allocate-on-write RAM (`set_leaf`) in the second
    // table, with the frame its read-only page gave back.
    let page = FILL + TABLE;
    let unmap = Request::Unmap {
        addr: page,
        pages: 1,
        privilege: K,
    };
    assert_eq!(req(&mut m, unmap), Response::Done);
    convert(&mut m, page, 1, AreaType::UsableRam);
    assert!(marked(&mut m, page), "no page it may send out yet");
    let write = Request::Write {
        addr: page,
        len: 8,
        seed: 3,
        privilege: K,
    };
    assert_eq!(req(&mut m, write), Response::Done);
    assert!(!marked(&mut m, page), "set_leaf clears the mark");
    check(&mut m);
    one_frame_from(&mut m, page);
}
