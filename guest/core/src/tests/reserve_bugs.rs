//! The two bugs the kernel's reserve fixed (`kernel_reserve`), each alone:
//! a host block that took the kernel's half of the heap, and a request
//! needing no frame refused for want of one. Each test fails on the guest
//! built with the feature that puts its bug back (`inject-heap-starve`,
//! `inject-zero-need-oom`).

use protocol::{AreaType, Error, FaultReason, PageState};

use super::kernel_reserve::{kernel_can_answer, kreq, machine, take_all_frames, write};
use super::*;
use crate::layout::HEAP_START;

/// The first bug: one host `Kmalloc` took the whole heap, and the kernel's
/// next allocation (any answer with a vector) failed: the guest panicked.
/// The host's blocks now stay in the upper half.
#[test]
fn a_host_block_never_takes_the_kernels_half_of_the_heap() {
    let mut m = machine();
    let max = m.vmm.heap_max_bytes();
    let whole = Request::Kmalloc {
        size: max,
        align: 16,
        privilege: K,
    };
    assert_eq!(kreq(&mut m, whole), Response::Error(Error::OutOfMemory));
    let half = Request::Kmalloc {
        size: max / 2,
        align: 16,
        privilege: K,
    };
    assert_eq!(
        kreq(&mut m, half.clone()),
        Response::Kmalloc {
            addr: HEAP_START + max / 2
        }
    );
    assert_eq!(kreq(&mut m, half), Response::Error(Error::OutOfMemory));
    for size in [max / 4, 4096, 16] {
        let r = Request::Kmalloc {
            size,
            align: 16,
            privilege: K,
        };
        assert_eq!(kreq(&mut m, r), Response::Error(Error::OutOfMemory));
    }
    kernel_can_answer(&mut m);
    let q = Request::Query {
        addr: 0x1234_5000,
        pages: 1,
        privilege: U,
    };
    assert_eq!(kreq(&mut m, q), Response::Pages(vec![PageState::Unusable]));
    check(&mut m);
}

/// A host block's pages take their frames as a request's do: touched
/// with only the reserve left, the touch faults and the reserve stays.
#[test]
fn a_host_blocks_touch_leaves_the_kernels_reserve() {
    let mut m = machine();
    let block = match kreq(
        &mut m,
        Request::Kmalloc {
            size: 64 * 4096,
            align: 4096,
            privilege: K,
        },
    ) {
        Response::Kmalloc { addr } => addr,
        a => panic!("{a:?}"),
    };
    take_all_frames(&mut m);
    let reserve = protocol::heap_reserve_frames(m.vmm.heap_max_bytes());
    let free = m.vmm.stats().free_frames;
    assert!(free <= reserve, "{free} free");
    assert_eq!(
        kreq(&mut m, write(block, 64 * 4096, 1, K)),
        Response::Fault {
            addr: block,
            write: true,
            reason: FaultReason::OutOfMemory
        }
    );
    assert_eq!(m.vmm.stats().free_frames, free);
    kernel_can_answer(&mut m);
    check(&mut m);
}

/// The second bug: a request that needs no frame (a `Convert` of pages
/// whose tables exist) answered `OutOfMemory` once the kernel's own heap
/// had taken frames of the reserve and nothing could be reclaimed.
#[test]
fn a_request_needing_no_frame_is_done_whatever_the_heap_took() {
    let mut m = machine();
    let conv = Request::Convert {
        addr: 0x1000,
        pages: 1,
        to: AreaType::UsableRam,
        privilege: U,
    };
    assert_eq!(kreq(&mut m, conv.clone()), Response::Done);
    take_all_frames(&mut m);
    // The kernel's heap takes frames of the reserve, and keeps them.
    let reserve = protocol::heap_reserve_frames(m.vmm.heap_max_bytes());
    let a = m
        .kernel_alloc(64 * 4096)
        .expect("the reserve serves the kernel");
    let free = m.vmm.stats().free_frames;
    assert!(free < reserve, "{free} free");
    assert_eq!(req(&mut m, conv.clone()), Response::Done);
    assert_eq!(m.vmm.stats().free_frames, free, "nothing reclaimed");
    // Once freed, its pages are the heap's until reclaimed: still done.
    assert_eq!(m.vmm.kernel_free(a), Ok(()));
    assert_eq!(req(&mut m, conv).split_reclaimed().1, Response::Done);
    check(&mut m);
}
