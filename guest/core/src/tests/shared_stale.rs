//! Shared memory and the stale-translation probe (`protocol::semantics`,
//! **Shared memory**, *Stale translations*): a shared page made unusable
//! in the current space is flushed like any page (and a missing flush is
//! caught); the other space's mapping, touched, stays readable after the
//! switch, and destroying a space that holds shared pages leaves the
//! current space's mappings alone.

use super::shared::{share_ok, shared_at, two_spaces, B};
use super::spaces::{destroy, pattern_sum, read, switch, write, A};
use super::*;

fn requests_that_unmap() -> Vec<Request> {
    vec![
        Request::Unmap {
            addr: A,
            pages: 2,
            privilege: U,
        },
        Request::Convert {
            addr: A,
            pages: 2,
            to: AreaType::Unusable,
            privilege: U,
        },
        Request::Reset { privilege: K },
    ]
}

#[test]
fn unmapping_a_shared_page_flushes_it_and_the_probe_sees_it() {
    for ignore_flushes in [false, true] {
        for r in requests_that_unmap() {
            // `A`'s pages were written (touched) before they were shared.
            let (mut m, one) = two_spaces(2);
            share_ok(&mut m, A, 2, one, B);
            m.vmm.mem().ignore_flushes = ignore_flushes;
            let answer = req(&mut m, r.clone());
            match (ignore_flushes, answer) {
                (false, Response::Stale { .. }) | (true, Response::Done) => {
                    panic!("{r:?} flushes {}: not as probed", !ignore_flushes)
                }
                (true, Response::Stale { addr, .. }) => assert_eq!(addr, A, "{r:?}"),
                (false, a) => {
                    assert_eq!(a.split_reclaimed().1, Response::Done, "{r:?}");
                    assert!(m.vmm.mem().tlb.is_empty(), "{r:?}");
                    check(&mut m);
                }
                (true, a) => panic!("{r:?} with a missing flush answered {a:?}"),
            }
        }
    }
}

#[test]
fn the_other_mapping_survives_unmap_switch_and_destroy() {
    let (mut m, one) = two_spaces(2);
    share_ok(&mut m, A, 2, one, B);
    switch(&mut m, one);
    write(&mut m, B, 8192, 6, U);
    switch(&mut m, 0);
    let unmap = Request::Unmap {
        addr: A + 4096,
        pages: 1,
        privilege: U,
    };
    assert_eq!(req(&mut m, unmap), Response::Done);
    switch(&mut m, one);
    assert_eq!(read(&mut m, B, 8192, U), pattern_sum(6, B, 8192));
    switch(&mut m, 0);
    // Space 1 goes with its mappings: space 0's page stays, count 1.
    assert_eq!(destroy(&mut m, one), Response::Done);
    check(&mut m);
    shared_at(&mut m, A, true, 1);
    assert_eq!(read(&mut m, A, 4096, U), pattern_sum(6, B, 4096));
    reset_and_check(&mut m);
}
