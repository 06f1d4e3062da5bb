//! Fault-around ([`crate::vmm::Vmm::fault_around`]): after a resolved
//! fault, resolving the pages after it up to the touch's end must end in
//! exactly the state the touch's own faults reach page by page (states,
//! frames, bytes, swap, counters, reclaim), whatever the pages hold and
//! however few frames are free.

use protocol::{AreaType, FaultReason};

use super::*;
use crate::backend::FrameAccess;

/// The first page of the touched range.
const AT: u64 = 0x4000_0000;
/// Pages of the range.
const PAGES: u64 = 48;

fn ok(m: &mut SimMachine, r: Request) {
    let got = req(m, r.clone()).split_reclaimed().1;
    assert!(
        matches!(got, Response::Done | Response::Evicted { .. }),
        "{r:?}: {got:?}"
    );
}

/// The range: allocate-on-write pages, then pages 10–13 on swap, 16–19
/// file pages not present, 22 present clean file page, 24 present
/// read-only RAM, 30–31 present RAM; `spare` frames free beyond the
/// heap's reserve.
fn machine(spare: u64) -> SimMachine {
    let mut m = SimMachine::with_files(1024, &[(8, 0xf11e)]);
    let page = |i: u64| AT + i * 4096;
    let convert = |addr, pages, to| Request::Convert {
        addr,
        pages,
        to,
        privilege: K,
    };
    ok(&mut m, convert(AT, PAGES, AreaType::UsableRam));
    let write = |addr, pages: u64| Request::Write {
        addr,
        len: pages * 4096,
        seed: 9,
        privilege: K,
    };
    ok(&mut m, write(page(10), 4));
    let evict = Request::Evict {
        addr: page(10),
        pages: 4,
        privilege: K,
    };
    ok(&mut m, evict);
    ok(&mut m, convert(page(16), 7, AreaType::Unusable));
    let map_file = Request::MapFile {
        addr: page(16),
        pages: 7,
        file: 0,
        file_page: 0,
        privilege: K,
    };
    ok(&mut m, map_file);
    let read = Request::Read {
        addr: page(22),
        len: 4096,
        privilege: K,
    };
    assert!(matches!(
        req(&mut m, read).split_reclaimed().1,
        Response::Checksum { .. }
    ));
    ok(&mut m, convert(page(24), 1, AreaType::Unusable));
    let map = Request::Map {
        addr: page(24),
        pages: 1,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: K,
    };
    ok(&mut m, map);
    ok(&mut m, write(page(30), 2));
    let free = stats(&mut m).free_frames;
    let keep = m.vmm.heap_reserve() + spare;
    if free > keep {
        let take = Request::AllocFrames {
            count: free - keep,
            contiguous: false,
            privilege: K,
        };
        assert!(matches!(
            req(&mut m, take).split_reclaimed().1,
            Response::Frames { .. }
        ));
    }
    m
}

/// A touch of the whole range as the CPU makes it: each page the access
/// cannot go through faults, and the touch stops at the first fault that
/// fails. With `around`, each resolved fault is followed by fault-around
/// to the range's end. Answers where it stopped, and the pages
/// fault-around resolved.
fn touch(m: &mut SimMachine, write: bool, around: bool) -> (Option<(u64, FaultReason)>, u64) {
    let end = AT + PAGES * 4096;
    let mut resolved_around = 0;
    for page in (AT..end).step_by(4096) {
        let goes_through = match m.vmm.page_state(page) {
            Pte::PresentRam { writable, .. } | Pte::PresentMmap { writable, .. } => {
                writable || !write
            }
            _ => false,
        };
        if goes_through {
            continue;
        }
        if let Err(reason) = m.vmm.handle_fault(page, write) {
            return (Some((page, reason)), resolved_around);
        }
        if around {
            resolved_around += m.vmm.fault_around(page, end, write, 512);
        }
    }
    (None, resolved_around)
}

/// The bytes of every present page of the range.
fn data(m: &mut SimMachine) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for page in (AT..AT + PAGES * 4096).step_by(4096) {
        if let Some(f) = m.vmm.page_state(page).frame() {
            out.push(m.vmm.mem().frame_bytes(f).to_vec());
        }
    }
    out
}

#[test]
fn fault_around_ends_where_the_touch_s_own_faults_end() {
    for write in [false, true] {
        let mut around_did_work = false;
        for spare in [0, 1, 2, 5, 9, 20, 200] {
            let mut one = machine(spare);
            let mut other = machine(spare);
            let (stop, _) = touch(&mut one, write, false);
            let (stop_around, resolved) = touch(&mut other, write, true);
            let what = format!("write {write}, {spare} spare frames");
            assert_eq!(stop, stop_around, "{what}");
            // Not `assert_eq!`: a snapshot prints megabytes.
            assert!(
                snapshot(&mut one) == snapshot(&mut other),
                "{what}: states differ"
            );
            assert!(data(&mut one) == data(&mut other), "{what}: bytes differ");
            let events = |m: &mut SimMachine| {
                let mut buf = [protocol::Reclaim::Scavenged { addr: 0 }; 64];
                let n = m.vmm.drain_events(&mut buf);
                buf[..n].to_vec()
            };
            assert_eq!(events(&mut one), events(&mut other), "{what}");
            around_did_work |= resolved > 0;
            if write && spare >= 20 {
                // Frames enough: a write stops at the read-only page.
                assert_eq!(
                    stop,
                    Some((AT + 24 * 4096, FaultReason::ReadOnly)),
                    "{what}"
                );
            }
        }
        assert!(
            around_did_work,
            "write {write}: fault-around never resolved a page"
        );
    }
}
