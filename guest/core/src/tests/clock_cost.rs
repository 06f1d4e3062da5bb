//! What the pressure path costs, in page-table frames looked at (a count
//! that repeats where time does not): a request whose clean file pages all
//! lie in its own range sweeps the managed space for one at most once.
//! (A deep fuzz sequence found it: a read of 408 file pages with most of
//! RAM present swept the whole space for each frame it needed, 55 s under
//! TCG, and the runner saved it as a hang.)

use protocol::{Request, Response};

use super::{req, K};
use crate::sim::SimMachine;

const RAM: u64 = 0x100_0000;
const FILE: u64 = 0x800_0000;
const FILE_PAGES: u64 = 200;

/// A machine whose free frames are nearly all taken by present writable
/// RAM (evictable), with a file of [`FILE_PAGES`] pages mapped at
/// [`FILE`] and not loaded: reading it must reclaim for most pages.
fn nearly_full() -> SimMachine {
    let mut m = SimMachine::with_files(1024, &[(FILE_PAGES, 0xf11e)]);
    let free = match req(&mut m, Request::Stats) {
        Response::Stats(s) => s.free_frames,
        r => panic!("{r:?}"),
    };
    let map = Request::map_writable(RAM, free - 200, K);
    assert_eq!(req(&mut m, map), Response::Done);
    let file = Request::MapFile {
        addr: FILE,
        pages: FILE_PAGES,
        file: 0,
        file_page: 0,
        privilege: K,
    };
    assert_eq!(req(&mut m, file), Response::Done);
    m
}

#[test]
fn a_read_whose_clean_file_pages_are_all_its_own_sweeps_for_them_once() {
    let mut m = nearly_full();
    let before = m.vmm.mem().table_reads;
    let read = Request::Read {
        addr: FILE,
        len: FILE_PAGES * 4096,
        privilege: K,
    };
    let (events, answer) = req(&mut m, read).split_reclaimed();
    assert!(matches!(answer, Response::Checksum { .. }), "{answer:?}");
    assert!(
        events.len() > 100,
        "the read reclaimed {} times",
        events.len()
    );
    let reads = m.vmm.mem().table_reads - before;
    // One sweep of ~600 present pages is a few thousand table reads; one
    // per reclaim (the bug) is over a million.
    assert!(
        reads < 60_000,
        "{reads} table reads for {} reclaims",
        events.len()
    );
}
