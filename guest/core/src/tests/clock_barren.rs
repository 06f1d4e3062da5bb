//! A space with no page the clock could send out fails a request for a
//! frame at once, without a sweep, and only while that still holds
//! (`clock::Barren`).
//!
//! In a fuzz campaign's operation mix run in-process, nine tenths of the
//! clock's entry reads were sweeps that found nothing: with RAM full of
//! pinned, shared and read-only pages, every request for a frame swept
//! every table with a present page, twice, before answering
//! `OutOfMemory`.

use protocol::{Reclaim, Request, Response};

use super::clock_laps::take_every_spare_frame;
use super::spaces::{create, switch};
use super::{check, map, req, stats, K};
use crate::sim::SimMachine;

/// The answer of a request for a frame when none can be had.
const OOM: Response = Response::Error(protocol::Error::OutOfMemory);

/// Where the read-only RAM that fills memory lies.
const FILL: u64 = 0x1000_0000;
/// Where space 1's writable page lies.
const ONE: u64 = 0x2000_0000;

/// A machine whose spare frames (beyond the heap's reserve) are all
/// present read-only RAM, which the clock never sends out (`extra` runs
/// first, with frames still free), and the address of the fill's last
/// page.
fn full_of_read_only(extra: impl FnOnce(&mut SimMachine)) -> (SimMachine, u64) {
    full_of(false, extra)
}

/// [`full_of_read_only`], or with writable RAM, on a machine with a file.
fn full_of(writable: bool, extra: impl FnOnce(&mut SimMachine)) -> (SimMachine, u64) {
    let mut m = SimMachine::with_files(1024, &[(1, 0xf11e)]);
    extra(&mut m);
    let reserve = protocol::heap_reserve_frames(stats(&mut m).heap_max_bytes);
    // The tables the map makes take frames too: the host takes what is
    // left (frames the clock never sends out either).
    let pages = stats(&mut m).free_frames - reserve - 8;
    let fill = map(FILL, pages, writable, false, K);
    assert_eq!(req(&mut m, fill), Response::Done);
    take_every_spare_frame(&mut m);
    assert_eq!(
        stats(&mut m).free_frames,
        reserve,
        "every spare frame taken"
    );
    (m, FILL + (pages - 1) * 4096)
}

/// Asks for one frame: the answer and the page-table reads it took.
fn one_frame(m: &mut SimMachine) -> (Response, u64) {
    let before = m.vmm.mem().table_reads;
    let answer = req(
        m,
        Request::AllocFrames {
            count: 1,
            contiguous: false,
            privilege: K,
        },
    );
    (answer, m.vmm.mem().table_reads - before)
}

/// Asks for one frame, which must fail (`OOM`) without a sweep: with a
/// tenth of the table reads of the sweep that took `swept`.
fn fails_without_a_sweep(m: &mut SimMachine, swept: u64) {
    let (answer, reads) = one_frame(m);
    assert_eq!(answer, OOM);
    assert!(
        reads * 10 < swept,
        "{reads} table reads after a sweep that took {swept}"
    );
}

/// Makes the fill's page at `page` present writable RAM, an evictable
/// page, with the frame it had.
pub(super) fn one_evictable_page(m: &mut SimMachine, page: u64) {
    let unmap = Request::Unmap {
        addr: page,
        pages: 1,
        privilege: K,
    };
    assert_eq!(req(m, unmap), Response::Done);
    assert_eq!(req(m, Request::map_writable(page, 1, K)), Response::Done);
}

/// Space 1, with one evictable page at `ONE`; space 0 current again.
fn space_1_with_one_page(m: &mut SimMachine) {
    assert_eq!(create(m).0, 1);
    switch(m, 1);
    assert_eq!(req(m, Request::map_writable(ONE, 1, K)), Response::Done);
    switch(m, 0);
}

/// The pages `answer` reports swapped out.
fn swapped(answer: &Response) -> Vec<u64> {
    let (events, _) = answer.clone().split_reclaimed();
    swapped_in(&events)
}

/// The pages `events` report swapped out.
pub(super) fn swapped_in(events: &[Reclaim]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|e| match *e {
            Reclaim::Swapped { addr, .. } => Some(addr),
            _ => None,
        })
        .collect()
}

#[test]
fn a_space_without_evictable_pages_fails_later_requests_without_a_sweep() {
    let (mut m, _) = full_of_read_only(|_| {});
    let (first, swept) = one_frame(&mut m);
    assert_eq!(first, OOM);
    for _ in 0..10 {
        // The sweep read every table with a present page, the PML4 down;
        // the request now reads none of them.
        fails_without_a_sweep(&mut m, swept);
    }
    check(&mut m);
}

#[test]
fn a_page_made_evictable_since_is_sent_out() {
    let (mut m, last) = full_of_read_only(|_| {});
    assert_eq!(one_frame(&mut m).0, OOM);
    one_evictable_page(&mut m, last);
    let (answer, _) = one_frame(&mut m);
    assert_eq!(swapped(&answer), [last], "{answer:?}");
    check(&mut m);
}

#[test]
fn once_the_clock_sent_that_page_out_the_space_fails_at_once_again() {
    let (mut m, last) = full_of_read_only(|_| {});
    let (_, swept) = one_frame(&mut m);
    one_evictable_page(&mut m, last);
    assert_eq!(swapped(&one_frame(&mut m).0), [last]);
    fails_without_a_sweep(&mut m, swept);
    check(&mut m);
}

/// Space 0's record says nothing of space 1, whose page was made before
/// it.
#[test]
fn another_space_is_swept() {
    let (mut m, _) = full_of_read_only(space_1_with_one_page);
    assert_eq!(one_frame(&mut m).0, OOM);
    switch(&mut m, 1);
    let (answer, _) = one_frame(&mut m);
    assert_eq!(swapped(&answer), [ONE], "{answer:?}");
    check(&mut m);
}

/// The record is of one space: a page the clock sends out of another
/// space does not stand for a page made evictable in this one.
#[test]
fn a_page_sent_out_of_another_space_does_not_keep_the_record() {
    let (mut m, last) = full_of_read_only(space_1_with_one_page);
    // Space 0 has no evictable page: recorded.
    assert_eq!(one_frame(&mut m).0, OOM);
    // One is made in space 0; space 1's goes out.
    one_evictable_page(&mut m, last);
    switch(&mut m, 1);
    assert_eq!(swapped(&one_frame(&mut m).0), [ONE]);
    // Back in space 0, its page is there to send out.
    switch(&mut m, 0);
    let (answer, _) = one_frame(&mut m);
    assert_eq!(swapped(&answer), [last], "{answer:?}");
    check(&mut m);
}

/// A sweep that passed the request's own pages visited them: the only
/// evictable page being in the range of the request that needed a frame
/// leaves no record, and the next request sends it out.
#[test]
fn a_page_in_the_requests_own_range_still_counts_as_visited() {
    let (mut m, last) = full_of_read_only(|_| {});
    one_evictable_page(&mut m, last);
    // The page after it is usable, not present: a write to both needs a
    // frame for it, and the only page to send out is in the write's range.
    let usable = Request::Convert {
        addr: last + 4096,
        pages: 1,
        to: protocol::AreaType::UsableRam,
        privilege: K,
    };
    assert_eq!(req(&mut m, usable), Response::Done);
    let write = Request::Write {
        addr: last,
        len: 2 * 4096,
        seed: 5,
        privilege: K,
    };
    let answer = req(&mut m, write);
    assert!(swapped(&answer).is_empty(), "{answer:?}");
    assert_ne!(answer, Response::Done, "no frame for the second page");
    let (answer, _) = one_frame(&mut m);
    assert_eq!(swapped(&answer), [last], "{answer:?}");
    check(&mut m);
}

/// A sweep for a clean file page that finds none leaves no record: the
/// file page is in another space, and this one's RAM goes out.
#[test]
fn a_fruitless_sweep_for_a_clean_file_page_leaves_no_record() {
    let (mut m, _) = full_of(true, |m| {
        space_1_with_one_page(m);
        switch(m, 1);
        let file = Request::MapFile {
            addr: ONE + 4096,
            pages: 1,
            file: 0,
            file_page: 0,
            privilege: K,
        };
        assert_eq!(req(m, file), Response::Done);
        let read = Request::Read {
            addr: ONE + 4096,
            len: 8,
            privilege: K,
        };
        assert!(matches!(req(m, read), Response::Checksum { .. }));
        switch(m, 0);
    });
    let (answer, _) = one_frame(&mut m);
    assert!(
        matches!(&answer, Response::Reclaimed { response, .. } if matches!(**response, Response::Frames(_))),
        "{answer:?}"
    );
    assert_eq!(swapped(&answer), [FILL], "{answer:?}");
    check(&mut m);
}
