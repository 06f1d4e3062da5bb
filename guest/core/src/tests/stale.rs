//! The stale-translation probe (`protocol::semantics`, **Stale
//! translations**): pages a touch cached and a request made not present are
//! read once more after the answer; only a missing TLB flush lets that
//! read through.

use protocol::{AreaType, Request, Response};

use super::{req, K, U};
use crate::sim::SimMachine;

const ADDR: u64 = 0x40_0000;

fn map_and_touch(m: &mut SimMachine, pages: u64) {
    let map = Request::Map {
        addr: ADDR,
        pages,
        writable: true,
        contiguous: false,
        privilege: U,
    };
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

#[test]
fn a_missing_flush_is_caught_after_each_request_that_unmaps() {
    for r in requests_that_unmap() {
        let mut m = SimMachine::new(256);
        map_and_touch(&mut m, 4);
        m.vmm.mem().ignore_flushes = true;
        match req(&mut m, r.clone()) {
            Response::Stale { addr, .. } => assert_eq!(addr, ADDR, "{r:?}"),
            other => panic!("{r:?} with a missing flush answered {other:?}"),
        }
    }
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
