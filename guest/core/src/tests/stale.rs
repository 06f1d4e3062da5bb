//! The stale-translation probe (`protocol::semantics`, **Stale
//! translations**): pages a touch cached and a request made not present are
//! read once more after the answer; only a missing TLB flush lets that
//! read through.

use protocol::{AreaType, Request, Response};

use super::{req, K, U};
use crate::machine::Machine;
use crate::sim::SimMachine;

const ADDR: u64 = 0x40_0000;

fn map_and_touch(m: &mut SimMachine, pages: u64) {
    let map = Request::map_writable(ADDR, pages, U);
    assert_eq!(req(m, map), Response::Done);
    let write = Request::Write {
        addr: ADDR,
        len: pages * 4096,
        seed: 7,
        privilege: U,
    };
    assert_eq!(req(m, write), Response::Done);
}

fn requests_that_unmap() -> Vec<Request> {
    vec![
        Request::Unmap {
            addr: ADDR,
            pages: 4,
            privilege: U,
        },
        Request::Convert {
            addr: ADDR,
            pages: 4,
            to: AreaType::Unusable,
            privilege: U,
        },
        Request::Evict {
            addr: ADDR,
            pages: 4,
            privilege: U,
        },
        Request::Reset { privilege: K },
    ]
}

#[test]
fn a_vmm_that_flushes_passes_the_probe() {
    for r in requests_that_unmap() {
        let mut m = SimMachine::new(256);
        map_and_touch(&mut m, 4);
        let answer = req(&mut m, r.clone());
        assert!(
            !matches!(answer, Response::Stale { .. }),
            "{r:?} answered {answer:?}"
        );
        assert!(
            m.vmm.mem().tlb.is_empty(),
            "{r:?} left {:?}",
            m.vmm.mem().tlb
        );
    }
}

/// After a map and a touch of 4 pages (and, with `dropped`, a CPU that
/// dropped every translation since: a TLB holds few), each request that
/// unmaps, made with flushes that do nothing, answers `Stale` at the first
/// page.
fn a_missing_flush_is_caught(dropped: bool) {
    for r in requests_that_unmap() {
        let mut m = SimMachine::new(256);
        map_and_touch(&mut m, 4);
        if dropped {
            m.vmm.mem().tlb.clear();
        }
        m.vmm.mem().ignore_flushes = true;
        match req(&mut m, r.clone()) {
            Response::Stale { addr, .. } => assert_eq!(addr, ADDR, "{r:?}"),
            other => panic!("{r:?} with a missing flush answered {other:?}"),
        }
    }
}

#[test]
fn a_missing_flush_is_caught_after_each_request_that_unmaps() {
    a_missing_flush_is_caught(false);
}

#[test]
fn probed_pages_leave_the_touched_set() {
    let mut m = SimMachine::new(256);
    map_and_touch(&mut m, 4);
    let unmap = Request::Unmap {
        addr: ADDR,
        pages: 2,
        privilege: U,
    };
    assert_eq!(req(&mut m, unmap), Response::Done);
    let p = ADDR >> 12;
    assert_eq!(
        crate::machine::Machine::touched(&mut m).runs(),
        &[(p + 2, p + 4)]
    );
}

#[test]
fn a_missing_flush_is_caught_when_the_cpu_dropped_the_translation_since_the_touch() {
    a_missing_flush_is_caught(true);
}

#[test]
fn a_range_never_touched_is_probed_at_its_ends() {
    for pages in [1, 4, 300] {
        let mut m = SimMachine::new(1024);
        let map = Request::map_writable(ADDR, pages, U);
        assert_eq!(req(&mut m, map), Response::Done);
        m.vmm.mem().ignore_flushes = true;
        let unmap = Request::Unmap {
            addr: ADDR,
            pages,
            privilege: U,
        };
        match req(&mut m, unmap) {
            Response::Stale { addr, .. } => assert_eq!(addr, ADDR, "{pages} pages"),
            other => panic!("{pages} pages: a missing flush answered {other:?}"),
        }
    }
}

#[test]
fn priming_loads_only_present_pages_of_the_range_and_changes_no_answer() {
    let mut m = SimMachine::new(256);
    map_and_touch(&mut m, 4);
    m.vmm.mem().tlb.clear();
    // Unmapping the upper half primes and probes only its pages: the lower
    // half's translations are not loaded again.
    let unmap = Request::Unmap {
        addr: ADDR + 2 * 4096,
        pages: 2,
        privilege: U,
    };
    assert_eq!(req(&mut m, unmap), Response::Done);
    assert!(m.vmm.mem().tlb.is_empty(), "{:?}", m.vmm.mem().tlb);
    let read = Request::Read {
        addr: ADDR,
        len: 2 * 4096,
        privilege: U,
    };
    assert!(matches!(req(&mut m, read), Response::Checksum { .. }));
}

/// Found by a 10-minute campaign (`testcases/fuzz-stale-probe-past-the-top.jsonl`
/// is the guest's trace): an `unmap` of 14 pages from the last page of the
/// address space made the probe's range run past its top, and page
/// `2^52 + 12` passed for the user page `0xc000` (present here), so it
/// joined the touched set; merged with a run at the top of the kernel's
/// space, the set then covered the kernel's own PML4 slot 511, and a later
/// probe walked the kernel's tables (refused by the frame guard: the guest
/// panicked instead of answering).
#[test]
fn a_range_past_the_top_adds_no_page_to_the_touched_set() {
    let mut m = SimMachine::new(64);
    let map = Request::map_writable(0xc000, 1, U);
    assert_eq!(req(&mut m, map), Response::Done);
    let past_the_top = Request::Unmap {
        addr: 0xffff_ffff_ffff_f000,
        pages: 14,
        privilege: K,
    };
    assert!(matches!(req(&mut m, past_the_top), Response::Error(_)));
    let top = crate::layout::KERNEL_SPACE_END >> 12;
    let runs = m.touched().runs().to_vec();
    assert!(runs.iter().all(|&(_, e)| e <= top), "{runs:x?}");
}

/// The probe walks only space the VMM manages, whatever the touched set
/// holds: a run across the top of the kernel's space (into slot 511, the
/// kernel's own tables, which the simulation's memory refuses as the
/// kernel's frame guard does) is probed up to that top only.
#[test]
fn the_probe_stays_out_of_the_kernels_own_tables() {
    let mut m = SimMachine::new(64);
    let top = crate::layout::KERNEL_SPACE_END >> 12;
    m.touched().add(top - 2, top + 8);
    for r in [
        Request::Unmap {
            addr: crate::layout::KERNEL_SPACE_END - 0x2000,
            pages: 10,
            privilege: K,
        },
        Request::Reset { privilege: K },
    ] {
        let answer = req(&mut m, r.clone());
        assert!(
            !matches!(answer, Response::Stale { .. }),
            "{r:?}: {answer:?}"
        );
    }
}

/// A `Reset` drops every translation at once, so one an earlier request
/// failed to invalidate (here past that request's own 128 probe loads) is
/// looked for before the reset runs: the reset answers `Stale` at it.
#[test]
fn a_reset_finds_what_an_earlier_request_left_stale() {
    let mut m = SimMachine::new(1024);
    map_and_touch(&mut m, 200);
    m.vmm.mem().ignore_flushes = true;
    let unmap = Request::Unmap {
        addr: ADDR,
        pages: 200,
        privilege: U,
    };
    match req(&mut m, unmap) {
        Response::Stale { addr, .. } => assert!(addr > ADDR, "only the highest pages: {addr:#x}"),
        other => panic!("the unmap answered {other:?}"),
    }
    m.vmm.mem().ignore_flushes = false;
    match req(&mut m, Request::Reset { privilege: K }) {
        Response::Stale { addr, .. } => assert_eq!(addr, ADDR),
        other => panic!("the reset answered {other:?}"),
    }
    assert!(m.vmm.mem().tlb.is_empty(), "the reset flushed everything");
}
