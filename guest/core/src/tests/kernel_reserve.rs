//! The kernel's reserve (`protocol::semantics`, "The kernel's reserve"):
//! every allocating request driven to exhaustion, then every request kind
//! still answered right, with the kernel's own heap use emulated beside the
//! dispatch ([`SimMachine::answer_as_kernel`]). The two bugs it fixed,
//! each alone, are in `reserve_bugs`.

use crate::conv::usize_of;
use protocol::budget::{Used, KERNEL_REQUEST_MEMORY};
use protocol::{AreaType, Error, FaultReason, MAX_BATCH, MAX_QUERY_PAGES};

use super::*;
use crate::layout::{HEAP_START, VALLOC_PAGES, VALLOC_START};
use crate::sim::KernelOutOfMemory;

/// An 8 MiB machine: a 2 MiB heap (the host's half 1 MiB), a reserve of
/// 256 frames, a 1 MiB swap store, one file of 64 pages.
pub(super) fn machine() -> SimMachine {
    SimMachine::with_files(2048, &[(64, 0xf11e)])
}

const FILE: u64 = 0x4000_0000;
const ANON: u64 = 0x1_0000_0000;
const CONVERTED: u64 = 0x2_0000_0000;
const READ_ONLY: u64 = 0x3_0000_0000;

/// Sends `r` as the kernel answers it; its plain answer (events dropped).
/// Panics where the real kernel would: its heap could not serve it.
pub(super) fn kreq(m: &mut SimMachine, r: Request) -> Response {
    match m.answer_as_kernel(r.clone()) {
        Ok(a) => a.split_reclaimed().1,
        Err(KernelOutOfMemory { bytes }) => {
            panic!("{r:?}: the kernel could not allocate {bytes} bytes")
        }
    }
}

/// The kernel can take the most one request frame needs, and give it back.
pub(super) fn kernel_can_answer(m: &mut SimMachine) {
    let free = m.vmm.stats().free_frames;
    let a = m
        .kernel_alloc(KERNEL_REQUEST_MEMORY as u64)
        .unwrap_or_else(|e| panic!("{e:?} with {free} frames free"));
    assert_eq!(m.vmm.kernel_free(a), Ok(()));
}

/// A user `Convert` of `pages` pages at `addr` to `to`.
fn convert(addr: u64, pages: u64, to: AreaType) -> Request {
    Request::Convert {
        addr,
        pages,
        to,
        privilege: U,
    }
}

/// A user mapping of `pages` pages of file 0 from its first page at `addr`.
fn map_file(addr: u64, pages: u64) -> Request {
    Request::MapFile {
        addr,
        pages,
        file: 0,
        file_page: 0,
        privilege: U,
    }
}

pub(super) fn write(addr: u64, len: u64, seed: u64, privilege: Privilege) -> Request {
    Request::Write {
        addr,
        len,
        seed,
        privilege,
    }
}

/// Maps (and with `seed`, fills) runs of `chunk` pages from `*at` until a
/// map is refused; answers the pages mapped.
fn map_until_refused(m: &mut SimMachine, at: &mut u64, chunk: u64, writable: bool) -> u64 {
    let mut mapped = 0;
    while kreq(m, map(*at, chunk, writable, false, U)) == Response::Done {
        if writable {
            kreq(m, write(*at, chunk * 4096, *at, U));
        }
        *at += chunk * 4096;
        mapped += chunk;
    }
    mapped
}

/// `AllocFrames` until a single frame is refused, halving the count at
/// each refusal: every frame a request may take is the host's then.
pub(super) fn take_all_frames(m: &mut SimMachine) {
    let mut count = protocol::MAX_ALLOC_FRAMES;
    while count > 0 {
        let r = Request::AllocFrames {
            count,
            contiguous: false,
            privilege: K,
        };
        if !matches!(kreq(m, r), Response::Frames(_)) {
            count /= 2;
        }
    }
}

/// Every allocating request, to exhaustion: host heap blocks (and their
/// pages), `Valloc`, file pages, RAM (written with data that does not
/// compress) until the swap store is full, allocate-on-write pages
/// touched, host frames, read-only RAM. Answers the host block.
fn exhaust(m: &mut SimMachine) -> u64 {
    // The host's half of the heap, in one block, then touched: its pages
    // take frames as a request's do.
    let half = m.vmm.heap_max_bytes() / 2;
    let block = match kreq(
        m,
        Request::Kmalloc {
            size: half,
            align: 16,
            privilege: K,
        },
    ) {
        Response::Kmalloc { addr } => addr,
        a => panic!("{a:?}"),
    };
    assert_eq!(block, HEAP_START + half);
    assert_eq!(
        kreq(
            m,
            Request::Kmalloc {
                size: 16,
                align: 16,
                privilege: K
            }
        ),
        Response::Error(Error::OutOfMemory)
    );
    assert_eq!(kreq(m, write(block, half, 3, K)), Response::Done);
    let all = Request::Valloc {
        pages: VALLOC_PAGES,
        privilege: K,
    };
    assert_eq!(kreq(m, all), Response::Valloc { addr: VALLOC_START });
    let mf = map_file(FILE, 64);
    assert_eq!(kreq(m, mf), Response::Done);
    assert!(matches!(
        kreq(
            m,
            Request::Read {
                addr: FILE,
                len: 64 * 4096,
                privilege: U
            }
        ),
        Response::Checksum { .. }
    ));
    let some = Request::AllocFrames {
        count: 256,
        contiguous: true,
        privilege: K,
    };
    assert!(matches!(kreq(m, some), Response::Frames(_)));
    // Read-only RAM: never evicted.
    assert_eq!(kreq(m, map(READ_ONLY, 16, false, false, U)), Response::Done);
    // Allocate-on-write pages (their tables now, their frames below).
    let conv = convert(CONVERTED, 1 << 16, AreaType::UsableRam);
    assert_eq!(kreq(m, conv), Response::Done);
    // RAM and swap: map, fill, evict, until nothing more goes to swap.
    let mut at = ANON;
    loop {
        let from = at;
        map_until_refused(m, &mut at, 16, true);
        map_until_refused(m, &mut at, 1, true);
        let ev = Request::Evict {
            addr: ANON,
            pages: (at - ANON) / 4096,
            privilege: U,
        };
        match kreq(m, ev) {
            Response::Evicted { swapped: 0, .. } if at == from => break,
            Response::Evicted { .. } => {}
            a => panic!("{a:?}"),
        }
    }
    assert!(matches!(
        kreq(m, write(CONVERTED, 1 << 28, 5, U)),
        Response::Fault {
            reason: FaultReason::OutOfMemory,
            ..
        }
    ));
    take_all_frames(m);
    let mut ro = READ_ONLY + 16 * 4096;
    map_until_refused(m, &mut ro, 1, false);
    block
}

/// Drives every allocating request to exhaustion, then sends every
/// request kind (but `Panic` and `Shutdown`, which end the guest by
/// design): each gets its right answer, the kernel can still take the most
/// one request needs, and every frame is accounted for.
#[test]
fn after_every_allocating_request_is_exhausted_every_request_is_answered() {
    let mut m = machine();
    let block = exhaust(&mut m);
    let s = m.vmm.stats();
    let reserve = protocol::heap_reserve_frames(s.heap_max_bytes);
    assert!(s.free_frames <= reserve + 16, "not exhausted: {s:?}");
    assert!(s.swap_slots_used > 0 && s.host_frames > 0, "{s:?}");
    check(&mut m);
    kernel_can_answer(&mut m);

    let sent = |m: &mut SimMachine, r: Request| -> Response {
        let a = kreq(m, r);
        check(m);
        kernel_can_answer(m);
        a
    };
    assert!(matches!(sent(&mut m, Request::Hello), Response::Hello(_)));
    assert_eq!(
        sent(&mut m, Request::Ping { nonce: 9 }),
        Response::Pong { nonce: 9 }
    );
    assert!(matches!(sent(&mut m, Request::Stats), Response::Stats(_)));
    let q = Request::Query {
        addr: ANON,
        pages: MAX_QUERY_PAGES,
        privilege: U,
    };
    assert!(matches!(sent(&mut m, q), Response::Pages(p) if p.len() == usize_of(MAX_QUERY_PAGES)));
    let oom = Response::Error(Error::OutOfMemory);
    assert_eq!(sent(&mut m, map(0x7000_0000, 1, true, false, U)), oom);
    // Needing no frame: done, however little is free (the second bug).
    let again = convert(CONVERTED, 16, AreaType::UsableRam);
    assert_eq!(sent(&mut m, again), Response::Done);
    // A page whose table exists: unusable, then a file page (no frame).
    let hole = CONVERTED + 100 * 4096;
    let un = convert(hole, 1, AreaType::Unusable);
    assert_eq!(sent(&mut m, un), Response::Done);
    let mf = map_file(hole, 1);
    assert_eq!(sent(&mut m, mf), Response::Done);
    let far = map_file(0x7f00_0000_0000, 1);
    assert_eq!(sent(&mut m, far), oom);
    let last = CONVERTED + ((1 << 16) - 1) * 4096;
    assert!(matches!(
        sent(&mut m, write(last, 1, 1, U)),
        Response::Fault {
            reason: FaultReason::OutOfMemory,
            ..
        }
    ));
    let ro = Request::Read {
        addr: READ_ONLY,
        len: 4096,
        privilege: U,
    };
    let zeros = protocol::pattern::checksum(&[0; 4096]);
    assert_eq!(sent(&mut m, ro), Response::Checksum { checksum: zeros });
    assert!(matches!(
        sent(&mut m, write(block, 16, 8, K)),
        Response::Done
    ));
    assert_eq!(
        sent(
            &mut m,
            Request::AllocFrames {
                count: 1,
                contiguous: true,
                privilege: K
            }
        ),
        oom
    );
    assert_eq!(
        sent(
            &mut m,
            Request::Valloc {
                pages: 1,
                privilege: K
            }
        ),
        Response::Error(Error::NoVirtualSpace)
    );
    assert_eq!(
        sent(
            &mut m,
            Request::Kmalloc {
                size: 16,
                align: 16,
                privilege: K
            }
        ),
        oom
    );
    let ev = Request::Evict {
        addr: ANON,
        pages: 64,
        privilege: U,
    };
    assert!(matches!(sent(&mut m, ev), Response::Evicted { .. }));
    assert!(matches!(
        sent(&mut m, Request::HeapScavenge { privilege: K }),
        Response::Scavenged { .. }
    ));
    assert_eq!(
        sent(
            &mut m,
            Request::Unmap {
                addr: 0x7000_0000,
                pages: 1,
                privilege: U
            }
        ),
        Response::Error(Error::InvalidState { addr: 0x7000_0000 })
    );
    // The biggest batches: pings (the answer vector) and queries of
    // unusable pages (answers far bigger in memory than on the wire).
    for r in [
        Request::Ping { nonce: 1 },
        Request::Query {
            addr: 0x7000_0000,
            pages: 64,
            privilege: U,
        },
    ] {
        let Response::Batch(v) = sent(&mut m, Request::Batch(vec![r.clone(); MAX_BATCH])) else {
            panic!("a batch of {r:?} not answered as a batch")
        };
        let cut = v.len() - 1;
        assert_eq!(v[cut], Response::Error(Error::BatchCut), "{r:?}");
        assert!(!Used::of(&v[..cut]).fits(&r));
    }
    // What frees: each answered, the kernel's reserve intact throughout.
    assert_eq!(
        sent(
            &mut m,
            Request::Kfree {
                addr: block,
                privilege: K
            }
        ),
        Response::Done
    );
    assert_eq!(
        sent(
            &mut m,
            Request::Vfree {
                addr: VALLOC_START,
                pages: 1,
                privilege: K
            }
        ),
        Response::Done
    );
    assert_eq!(
        sent(
            &mut m,
            Request::Unmap {
                addr: ANON,
                pages: 1,
                privilege: U
            }
        ),
        Response::Done
    );
    let un = convert(CONVERTED, 1 << 16, AreaType::Unusable);
    assert_eq!(sent(&mut m, un), Response::Done);
    reset_and_check(&mut m);
    kernel_can_answer(&mut m);
}
