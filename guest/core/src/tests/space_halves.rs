//! Address spaces apart and together: user halves apart (the same
//! address names a page of each space), one kernel half seen alike from
//! every space (made, seen and freed in any of them), and the
//! stale-translation probe after a switch.
//!
//! The injected bugs these catch: `inject-switch-no-cr3` fails
//! `user_halves_are_apart` (the switch's probe reads the previous space's
//! page: `Stale`), `inject-kernel-half-unsynced` fails
//! `kernel_pages_are_one_in_every_space` (the kernel halves differ).

use protocol::{FaultReason, PageState};

use super::spaces::{create, pattern_sum, query, read, switch, write, A, KADDR};
use super::*;
use crate::machine::Machine as _;
use crate::sim::Cached;
use crate::stale::{self, Scope};

/// Catches `inject-switch-no-cr3`: the CPU would go on reading space 0's
/// page after the first switch (the switch's probe answers `Stale`).
#[test]
fn user_halves_are_apart() {
    let mut m = SimMachine::new(256);
    assert_eq!(req(&mut m, Request::map_writable(A, 1, U)), Response::Done);
    write(&mut m, A, 4096, 9, U);
    let (one, _) = create(&mut m);
    let (two, _) = create(&mut m);
    // The switch's probe reads A, touched and not present in space 1: it
    // must fault (the answer would be `Stale` otherwise).
    switch(&mut m, one);
    let fault = Response::Fault {
        addr: A,
        write: false,
        reason: FaultReason::Unusable,
    };
    assert_eq!(read(&mut m, A, 8, U), fault, "space 0's page seen from 1");
    assert_eq!(req(&mut m, Request::map_writable(A, 2, U)), Response::Done);
    write(&mut m, A, 2 * 4096, 1, U);
    let PageState::PresentRam { frame: f1, .. } = query(&mut m, A, U) else {
        panic!("space 1's page is not present RAM");
    };
    switch(&mut m, two);
    assert_eq!(read(&mut m, A, 8, U), fault, "space 1's page seen from 2");
    assert_eq!(query(&mut m, A, U), PageState::Unusable);
    assert_eq!(req(&mut m, Request::map_writable(A, 1, U)), Response::Done);
    write(&mut m, A, 4096, 2, U);
    let PageState::PresentRam { frame: f2, .. } = query(&mut m, A, U) else {
        panic!("space 2's page is not present RAM");
    };
    assert_ne!(f1, f2, "two spaces share a frame");
    check(&mut m);
    switch(&mut m, one);
    assert_reads_pattern(&mut m, 1, A, 2 * 4096);
    switch(&mut m, two);
    assert_reads_pattern(&mut m, 2, A, 4096);
    switch(&mut m, 0);
    assert_reads_pattern(&mut m, 9, A, 4096);
    check(&mut m);
}

/// Catches `inject-kernel-half-unsynced`: the PDPT made in space 1 would
/// be in space 1's PML4 only.
#[test]
fn kernel_pages_are_one_in_every_space() {
    let mut m = SimMachine::new(256);
    let (one, _) = create(&mut m);
    let (two, _) = create(&mut m);
    switch(&mut m, one);
    assert_eq!(
        req(&mut m, Request::map_writable(KADDR, 2, K)),
        Response::Done
    );
    check(&mut m);
    write(&mut m, KADDR, 2 * 4096, 7, K);
    let state = query(&mut m, KADDR, K);
    // Seen alike from every space, one made after the page too.
    let (three, _) = create(&mut m);
    check(&mut m);
    for s in [two, 0, three] {
        switch(&mut m, s);
        assert_eq!(query(&mut m, KADDR, K), state, "from space {s}");
        assert_eq!(
            read(&mut m, KADDR, 2 * 4096, K),
            pattern_sum(7, KADDR, 2 * 4096)
        );
    }
    // The last pages of its PDPT gone (from space 3): its PML4 entry is
    // cleared in every space.
    let unmap = Request::Unmap {
        addr: KADDR,
        pages: 2,
        privilege: K,
    };
    assert_eq!(req(&mut m, unmap), Response::Done);
    let slot = crate::conv::usize_of((KADDR >> 39) & 511);
    for s in 0..4 {
        let root = m.vmm.space_root(s).expect("a live space");
        assert_eq!(pte::raw(&m.vmm.mem().table(root)[slot]), 0, "space {s}");
    }
    check(&mut m);
    switch(&mut m, one);
    let fault = Response::Fault {
        addr: KADDR,
        write: false,
        reason: FaultReason::Unusable,
    };
    assert_eq!(read(&mut m, KADDR, 8, K), fault);
    check(&mut m);
}

/// The probe after a switch reads every touched user page not present in
/// the new space, and a read that goes through (a translation left from
/// the previous space) makes the answer `Stale`.
#[test]
fn the_switch_probe_reads_the_previous_spaces_pages() {
    let mut m = SimMachine::new(256);
    let switch_req = Request::SwitchSpace {
        space: 0,
        privilege: K,
    };
    assert_eq!(Scope::of(&switch_req), Scope::Switch);
    let (one, _) = create(&mut m);
    switch(&mut m, one);
    assert_eq!(req(&mut m, Request::map_writable(A, 1, U)), Response::Done);
    write(&mut m, A, 8, 3, U);
    let PageState::PresentRam { frame, .. } = query(&mut m, A, U) else {
        panic!("not present");
    };
    switch(&mut m, 0);
    // As if the switch had left space 1's translation of A in the TLB.
    let f = crate::frames::frame_at(frame / 4096);
    m.vmm.mem().tlb.insert(A, Cached::new(f, true));
    m.touched().add(A >> 12, (A >> 12) + 1);
    let answer = stale::check(&mut m, Scope::Switch, Response::Done, None);
    let stale = Response::Stale {
        addr: A,
        response: Box::new(Response::Done),
    };
    assert_eq!(answer, stale);
}
