//! Pinned (never-swap) RAM (`protocol::semantics`, "Pinned RAM"): `Evict`
//! and the pressure path leave it, touches and converts treat it as usable
//! RAM, and a convert to it brings swapped pages back.

use protocol::pattern::{checksum, fill};
use protocol::{AreaType, Error, PageState, Reclaim};

use super::v2_table::ok;
use super::*;

const PIN: u64 = 0x4000_0000;
const ANON: u64 = 0x5000_0000;

fn to(addr: u64, pages: u64, to: AreaType) -> Request {
    Request::Convert {
        addr,
        pages,
        to,
        privilege: U,
    }
}

fn write(addr: u64, len: u64, seed: u64) -> Request {
    Request::Write {
        addr,
        len,
        seed,
        privilege: U,
    }
}

fn query(m: &mut SimMachine, addr: u64, pages: u64) -> Vec<PageState> {
    match ok(
        m,
        Request::Query {
            addr,
            pages,
            privilege: U,
        },
    ) {
        Response::Pages(p) => p,
        r => panic!("{r:?}"),
    }
}

fn evicted_addr(e: &Reclaim) -> u64 {
    match *e {
        Reclaim::Swapped { addr, .. } | Reclaim::Dropped { addr } | Reclaim::Scavenged { addr } => {
            addr
        }
    }
}

/// A machine with too few frames for what is written: the pressure path
/// evicts unpinned pages again and again, never a pinned one, and the
/// pinned pages keep their data and frames.
#[test]
fn pinned_pages_survive_memory_pressure_while_unpinned_ones_are_evicted() {
    let total = (116u64..)
        .find(|&t| t >= 116 + protocol::heap_reserve_frames(t / 4 * 4096))
        .unwrap_or(116);
    let mut m = SimMachine::new(total);
    ok(&mut m, to(PIN, 16, AreaType::PinnedRam));
    ok(&mut m, write(PIN, 16 * 4096, 7));
    let frames: Vec<PageState> = query(&mut m, PIN, 16);
    assert!(frames
        .iter()
        .all(|p| matches!(p, PageState::PinnedRam { writable: true, .. })));
    ok(&mut m, to(ANON, 128, AreaType::UsableRam));
    let mut events = Vec::new();
    // A little data a page: what goes to swap compresses well.
    for round in 0..3u64 {
        for p in 0..128 {
            let (ev, r) =
                req(&mut m, write(ANON + p * 4096, 64, round * 1000 + p)).split_reclaimed();
            assert_eq!(r, Response::Done);
            events.extend(ev);
        }
    }
    let swapped = events
        .iter()
        .filter(|e| matches!(e, Reclaim::Swapped { .. }))
        .count();
    assert!(swapped > 128, "the pressure path evicted {swapped} pages");
    assert!(
        events
            .iter()
            .all(|e| !(PIN..PIN + 16 * 4096).contains(&evicted_addr(e))),
        "a pinned page was reclaimed: {events:?}"
    );
    assert_eq!(query(&mut m, PIN, 16), frames, "same states, same frames");
    let mut want = vec![0u8; 16 * 4096];
    fill(7, PIN, &mut want);
    let sum = Response::Checksum {
        checksum: checksum(&want),
    };
    let read = Request::Read {
        addr: PIN,
        len: 16 * 4096,
        privilege: U,
    };
    let (ev, r) = req(&mut m, read).split_reclaimed();
    assert_eq!((ev, r), (vec![], sum), "no fault, no reclaim to read them");
    check(&mut m);
    reset_and_check(&mut m);
}

/// `Evict` sends the unpinned pages of its range out and leaves the
/// pinned ones, present or not.
#[test]
fn evict_leaves_pinned_pages() {
    let mut m = SimMachine::new(256);
    ok(&mut m, Request::map_writable(PIN, 4, U));
    ok(&mut m, to(PIN + 4096, 2, AreaType::PinnedRam));
    ok(&mut m, to(PIN + 4 * 4096, 1, AreaType::PinnedRam));
    let (events, r) = req(
        &mut m,
        Request::Evict {
            addr: PIN,
            pages: 5,
            privilege: U,
        },
    )
    .split_reclaimed();
    assert_eq!(
        r,
        Response::Evicted {
            swapped: 2,
            dropped: 0
        }
    );
    let sent: Vec<u64> = events.iter().map(evicted_addr).collect();
    assert_eq!(sent, vec![PIN, PIN + 3 * 4096]);
    let states = query(&mut m, PIN, 5);
    assert!(matches!(states[1], PageState::PinnedRam { .. }));
    assert!(matches!(states[2], PageState::PinnedRam { .. }));
    assert_eq!(states[4], PageState::PinnedAllocOnWrite);
    check(&mut m);
}

/// A touch of pinned allocate-on-write takes a zeroed frame (a resolved
/// fault) and stays pinned; `Map` and `MapFile` refuse pinned pages; a
/// convert to usable RAM unpins in place and back again.
#[test]
fn pinned_pages_touch_refuse_mapping_and_unpin_in_place() {
    let mut m = SimMachine::with_files(256, &[(4, 1)]);
    ok(&mut m, to(PIN, 2, AreaType::PinnedRam));
    assert_eq!(
        query(&mut m, PIN, 2),
        vec![PageState::PinnedAllocOnWrite; 2]
    );
    let faults = stats(&mut m).faults_resolved;
    ok(&mut m, write(PIN + 4096, 10, 3));
    assert_eq!(stats(&mut m).faults_resolved, faults + 1);
    let st = query(&mut m, PIN + 4096, 1)[0];
    let PageState::PinnedRam {
        writable: true,
        frame,
    } = st
    else {
        panic!("{st:?}")
    };
    let bad = Response::Error(Error::InvalidState { addr: PIN });
    assert_eq!(req(&mut m, Request::map_writable(PIN, 1, U)), bad);
    let map_file = Request::MapFile {
        addr: PIN,
        pages: 1,
        file: 0,
        file_page: 0,
        privilege: U,
    };
    assert_eq!(req(&mut m, map_file), bad);
    ok(&mut m, to(PIN, 2, AreaType::UsableRam));
    assert_eq!(
        query(&mut m, PIN, 2),
        vec![
            PageState::AllocOnWrite,
            PageState::PresentRam {
                writable: true,
                executable: false,
                frame
            }
        ]
    );
    ok(&mut m, to(PIN, 2, AreaType::PinnedRam));
    assert_eq!(query(&mut m, PIN + 4096, 1), vec![st]);
    assert_reads_pattern(&mut m, 3, PIN + 4096, 10);
    check(&mut m);
    convert(&mut m, PIN, 2, AreaType::Unusable);
    check(&mut m);
    reset_and_check(&mut m);
}

/// A convert to pinned RAM brings swapped pages back now, one frame each,
/// and frees their slots; with too few frames it answers `OutOfMemory`
/// and changes nothing.
#[test]
fn a_convert_to_pinned_brings_swapped_pages_back() {
    let mut m = SimMachine::new(256);
    ok(&mut m, Request::map_writable(ANON, 3, U));
    ok(&mut m, write(ANON, 3 * 4096, 9));
    ok(
        &mut m,
        Request::Evict {
            addr: ANON,
            pages: 3,
            privilege: U,
        },
    );
    assert_eq!(stats(&mut m).swap_slots_used, 3);
    let free = stats(&mut m).free_frames;
    let (events, r) = req(&mut m, to(ANON, 3, AreaType::PinnedRam)).split_reclaimed();
    assert_eq!((events, r), (vec![], Response::Done));
    let s = stats(&mut m);
    assert_eq!((s.swap_slots_used, s.free_frames), (0, free - 3));
    assert_eq!(s.faults_resolved, 0, "no fault: the convert loaded them");
    assert!(query(&mut m, ANON, 3)
        .iter()
        .all(|p| matches!(p, PageState::PinnedRam { writable: true, .. })));
    assert_reads_pattern(&mut m, 9, ANON, 3 * 4096);
    check(&mut m);
    // No frame to spare and nothing else to reclaim: refused, unchanged.
    ok(&mut m, to(ANON, 3, AreaType::UsableRam));
    ok(
        &mut m,
        Request::Evict {
            addr: ANON,
            pages: 3,
            privilege: U,
        },
    );
    let grab = Request::AllocFrames {
        count: 1,
        contiguous: false,
        privilege: K,
    };
    while req(&mut m, grab.clone()) != Response::Error(Error::OutOfMemory) {}
    let before = query(&mut m, ANON, 3);
    assert_eq!(
        req(&mut m, to(ANON, 3, AreaType::PinnedRam))
            .split_reclaimed()
            .1,
        Response::Error(Error::OutOfMemory)
    );
    assert_eq!(query(&mut m, ANON, 3), before);
    check(&mut m);
}

/// Pinned pages have no whole-table form: pinning pages under a whole
/// allocate-on-write PD entry makes it a page table first, taking no frame
/// (the entry's frame is the table's), and every step leaves the tables as
/// the oracle's checker reads them valid.
#[test]
fn pinning_under_a_whole_allocate_on_write_entry_takes_no_frame() {
    let mut m = SimMachine::new(256);
    let boot = stats(&mut m).boot_free_frames;
    let base = 0x4000_0000; // 2 MiB aligned: one whole PD entry
    convert(&mut m, base, 512, AreaType::UsableRam);
    let before = stats(&mut m);
    assert_eq!(
        req(&mut m, to(base + 0x1000, 1, AreaType::PinnedRam)),
        Response::Done
    );
    let after = stats(&mut m);
    let counts = |s: Stats| (s.page_table_frames, s.free_frames, s.alloc_on_write_pages);
    assert_eq!(counts(after), counts(before));
    check(&mut m);
    for t in [AreaType::PinnedRam, AreaType::UsableRam, AreaType::Unusable] {
        assert_eq!(req(&mut m, to(base, 512, t)), Response::Done, "{t:?}");
        check(&mut m);
    }
    assert_eq!(stats(&mut m).free_frames, boot);
}
