//! Shared memory under memory pressure (`protocol::semantics`, **Shared
//! memory**, *Memory pressure*): `Evict` and the clock pass shared pages
//! as pinned RAM (no event, no second chance: the accessed bit left);
//! `Share`'s step 9 (the target's tables, with the heap's reserve)
//! reclaims as any multi-frame request, never a page of its source range,
//! and fails with `OutOfMemory` changing nothing, at every allocation.

use protocol::{Error, PageState, Reclaim};

use super::shared::{share, share_ok, shared_at, states, B};
use super::spaces::{create, pattern_sum, read, switch, write, A};
use super::*;
use crate::pte::ACCESSED;
use crate::validate::LINEAR_MASK;

/// Where a second range of space 0 shares `A`'s frames.
const A2: u64 = 0x5000_0000;
/// Plain RAM the pressure path may take.
const ANON: u64 = 0x6000_0000;

/// The raw level-1 entry of `addr` in the current space.
fn raw_at(m: &mut SimMachine, addr: u64) -> u64 {
    let pt = m.vmm.tables_for_test();
    let (table, i) = pt.leaf_slot(addr & LINEAR_MASK).expect("mapped");
    pt.read_entry(table, i)
}

/// Sets the accessed bit of the present page at `addr`, as the CPU does
/// (the simulated one never does).
fn access(m: &mut SimMachine, addr: u64) {
    let (table, i) = m
        .vmm
        .tables_for_test()
        .leaf_slot(addr & LINEAR_MASK)
        .expect("mapped");
    let raw = raw_at(m, addr);
    crate::pte::set_raw(&mut m.vmm.mem().table(table)[i], raw | ACCESSED);
}

fn event_addr(e: &Reclaim) -> u64 {
    match *e {
        Reclaim::Swapped { addr, .. } | Reclaim::Dropped { addr } | Reclaim::Scavenged { addr } => {
            addr
        }
    }
}

/// The host takes every free frame but `keep` beyond the heap's reserve.
fn take_frames_but(m: &mut SimMachine, keep: u64) {
    let reserve = m.vmm.heap_reserve();
    let spare = stats(m).free_frames - reserve - keep;
    let take = Request::AllocFrames {
        count: spare,
        contiguous: false,
        privilege: K,
    };
    assert!(matches!(req(m, take), Response::Frames(_)));
}

#[test]
fn evict_and_the_clock_pass_shared_pages() {
    let mut m = SimMachine::new(1024);
    assert_eq!(req(&mut m, Request::map_writable(A, 8, U)), Response::Done);
    write(&mut m, A, 8 * 4096, 1, U);
    share_ok(&mut m, A, 8, 0, A2);
    let shared = [states(&mut m, A, 8), states(&mut m, A2, 8)];
    let evict = |addr| Request::Evict {
        addr,
        pages: 8,
        privilege: U,
    };
    let none = Response::Evicted {
        swapped: 0,
        dropped: 0,
    };
    assert_eq!(req(&mut m, evict(A)), none);
    assert_eq!(req(&mut m, evict(A2)), none);
    // The clock: shared pages with their accessed bit set, and plain RAM
    // in twice the frames left.
    for p in 0..8 {
        access(&mut m, A + p * 4096);
    }
    convert(&mut m, ANON, 64, AreaType::UsableRam);
    take_frames_but(&mut m, 32);
    let mut events = Vec::new();
    for round in 0..3u64 {
        for p in 0..64 {
            let w = Request::Write {
                addr: ANON + p * 4096,
                len: 64,
                seed: round * 100 + p,
                privilege: U,
            };
            let (ev, r) = req(&mut m, w).split_reclaimed();
            assert_eq!(r, Response::Done);
            events.extend(ev);
        }
    }
    let swapped = events
        .iter()
        .filter(|e| matches!(e, Reclaim::Swapped { .. }));
    assert!(swapped.count() > 64, "the pressure path ran: {events:?}");
    for e in &events {
        let a = event_addr(e);
        assert!(
            !(A..A + 8 * 4096).contains(&a) && !(A2..A2 + 8 * 4096).contains(&a),
            "a shared page was reclaimed: {e:?}"
        );
    }
    for p in 0..8 {
        assert_ne!(
            raw_at(&mut m, A + p * 4096) & ACCESSED,
            0,
            "accessed bit left"
        );
    }
    assert_eq!([states(&mut m, A, 8), states(&mut m, A2, 8)], shared);
    assert_eq!(read(&mut m, A2, 8 * 4096, U), pattern_sum(1, A, 8 * 4096));
    check(&mut m);
    reset_and_check(&mut m);
}

#[test]
fn share_reclaims_for_its_tables_never_a_source_page() {
    let mut m = SimMachine::new(1024);
    // The source pages come first in the clock's order and are never
    // accessed: the first victims, but for the pin.
    assert_eq!(req(&mut m, Request::map_writable(A, 8, U)), Response::Done);
    write(&mut m, A, 8 * 4096, 1, U);
    assert_eq!(
        req(&mut m, Request::map_writable(ANON, 8, U)),
        Response::Done
    );
    write(&mut m, ANON, 8 * 4096, 2, U);
    let (one, _) = create(&mut m);
    take_frames_but(&mut m, 0);
    let r = Request::Share {
        addr: A,
        pages: 8,
        space: one,
        to: B,
        privilege: K,
    };
    let (events, answer) = req(&mut m, r).split_reclaimed();
    assert_eq!(answer, Response::Done);
    assert!(!events.is_empty(), "B's 3 tables needed reclaiming");
    for e in &events {
        assert!(
            !(A..A + 8 * 4096).contains(&event_addr(e)),
            "a source page was reclaimed: {e:?}"
        );
    }
    check(&mut m);
    shared_at(&mut m, A + 7 * 4096, true, 2);
    switch(&mut m, one);
    assert_eq!(read(&mut m, B, 8 * 4096, U), pattern_sum(1, A, 8 * 4096));
}

/// `Share` needing the target's tables on a machine with no reclaim,
/// failing at every allocation in turn: `OutOfMemory` with nothing
/// changed, until it succeeds.
#[test]
fn out_of_memory_for_the_target_tables_changes_nothing() {
    for k in 0.. {
        let mut m = SimMachine::without_reclaim(256);
        assert_eq!(req(&mut m, Request::map_writable(A, 3, U)), Response::Done);
        let (one, _) = create(&mut m);
        share_ok(&mut m, A, 1, one, B);
        let before = snapshot(&mut m);
        m.vmm.tables_for_test().frames_mut().fail_after = Some(k);
        // Slots 0 (the PT of A's address) and 100 (B's PT exists).
        let got = share(&mut m, A, 3, one, A + 0x4000_0000);
        m.vmm.tables_for_test().frames_mut().fail_after = None;
        if got == Response::Done {
            assert_eq!(k, 3, "PDPT, PD and PT: three tables");
            check(&mut m);
            shared_at(&mut m, A, true, 3);
            break;
        }
        assert_eq!(got, Response::Error(Error::OutOfMemory), "k={k}");
        assert_eq!(snapshot(&mut m), before, "changed after failing at {k}");
        check(&mut m);
    }
    // Too few frames free: refused at step 9 before any allocation.
    let mut m = SimMachine::without_reclaim(256);
    assert_eq!(req(&mut m, Request::map_writable(A, 2, U)), Response::Done);
    let (one, _) = create(&mut m);
    take_frames_but(&mut m, 2);
    let before = snapshot(&mut m);
    let oom = Response::Error(Error::OutOfMemory);
    assert_eq!(share(&mut m, A, 2, one, B), oom);
    assert_eq!(snapshot(&mut m), before);
    // A target whose tables exist needs no frame: it shares with none free.
    take_frames_but(&mut m, 0);
    assert_eq!(share(&mut m, A, 1, 0, A + 8192), Response::Done);
    check(&mut m);
    assert_eq!(
        states(&mut m, A + 8192, 1),
        states(&mut m, A, 1),
        "same frame, count 2"
    );
    assert!(matches!(
        states(&mut m, A, 1)[0],
        PageState::Shared { mappings: 2, .. }
    ));
}
