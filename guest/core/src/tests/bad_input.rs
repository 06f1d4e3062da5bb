//! Every bad-input class gets its typed error, in the specification's
//! order, and changes nothing.

use protocol::budget::Used;
use protocol::{AreaType, Error, MAX_ALLOC_FRAMES, MAX_BATCH, MAX_QUERY_PAGES, MAX_TOUCH_LEN};

use super::*;

/// A machine with some state: mapped pages, allocate-on-write pages, host
/// frames and a valloc run.
fn busy() -> SimMachine {
    let mut m = SimMachine::without_reclaim(512);
    for r in [
        Request::map_writable(0x20_0000 - 0x2000, 4, U),
        Request::Map {
            addr: 0x4000_0000,
            pages: 2,
            writable: false,
            executable: false,
            contiguous: true,
            privilege: U,
        },
        Request::Convert {
            addr: 0x10_0000,
            pages: 8,
            to: AreaType::UsableRam,
            privilege: U,
        },
        Request::map_writable(0xffff_c080_0000_0000, 1, K),
        Request::Write {
            addr: 0x20_0000 - 0x2000,
            len: 0x3000,
            seed: 9,
            privilege: U,
        },
        Request::AllocFrames {
            count: 3,
            contiguous: false,
            privilege: K,
        },
        Request::Valloc {
            pages: 5,
            privilege: K,
        },
    ] {
        let a = req(&mut m, r.clone());
        assert!(
            !matches!(a, Response::Error(_) | Response::Fault { .. }),
            "{r:?}: {a:?}"
        );
    }
    check(&mut m);
    m
}

/// `r` answers `want` and changes nothing.
fn refused(r: Request, want: Error) {
    let mut m = busy();
    let before = snapshot(&mut m);
    let got = req(&mut m, r.clone());
    assert_eq!(got, Response::Error(want), "{r:?}");
    assert_eq!(snapshot(&mut m), before, "{r:?} changed state");
    check(&mut m);
}

fn map(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::map_writable(addr, pages, privilege)
}
fn conv(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::Convert {
        addr,
        pages,
        to: AreaType::UsableRam,
        privilege,
    }
}
fn query(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::Query {
        addr,
        pages,
        privilege,
    }
}

/// The range requests, each as a function of (addr, pages, privilege).
fn range_requests() -> Vec<fn(u64, u64, Privilege) -> Request> {
    vec![map, unmap, conv, query, |a, p, pr| Request::Convert {
        addr: a,
        pages: p,
        to: AreaType::Unusable,
        privilege: pr,
    }]
}

#[test]
fn range_validation_classes_in_order() {
    let hole = 0x0000_8000_0000_0000u64;
    let cases: Vec<(u64, u64, Privilege, Error)> = vec![
        (0x1000, 0, U, Error::ZeroCount),
        (0x1001, 0, U, Error::ZeroCount),
        (0x1001, 1, U, Error::Misaligned),
        (hole + 1, 1, U, Error::Misaligned),
        (hole, 1, U, Error::NonCanonical),
        (0xffff_0000_0000_0000, 1, K, Error::NonCanonical),
        (0xffff_ffff_ffff_f000, 1, K, Error::Overflow),
        (0x1000, 1 << 52, U, Error::Overflow),
        (0x1000, u64::MAX, U, Error::Overflow),
        (0x7fff_ffff_f000, 2, U, Error::CrossesCanonicalHole),
        (0x7fff_ffff_f000, 2, K, Error::CrossesCanonicalHole),
        (0, (1 << 35) + 1, U, Error::CrossesCanonicalHole),
        (0xffff_c080_0000_0000, 1, U, Error::PermissionDenied),
        (0xffff_8000_0000_0000, 1, U, Error::PermissionDenied),
        (0xffff_8000_0000_0000, 1, K, Error::Reserved), // direct map
        (0xffff_c000_0000_0000, 1, K, Error::Reserved), // heap
        (0xffff_c07f_ffff_f000, 2, K, Error::Reserved), // last heap page + first managed
        (0xffff_ff80_0000_0000, 1, K, Error::Reserved), // kernel image slot
        (0xffff_ff7f_ffff_f000, 2, K, Error::Reserved), // runs into it
        (0xffff_a000_0000_0000, 1, K, Error::Reserved), // between direct map and heap
    ];
    for f in range_requests() {
        for &(addr, pages, pr, want) in &cases {
            let r = f(addr, pages, pr);
            // Query has a page limit, checked right after the zero count.
            let want = match r {
                Request::Query { .. } if pages > MAX_QUERY_PAGES => Error::TooLarge,
                _ => want,
            };
            refused(r, want);
        }
    }
}

#[test]
fn state_rules_answer_the_lowest_offending_page() {
    // Map over a range whose third page is mapped.
    refused(
        map(0x20_0000 - 0x4000, 8, U),
        Error::InvalidState {
            addr: 0x20_0000 - 0x2000,
        },
    );
    // allocate-on-write pages are not unusable either.
    refused(
        map(0x10_0000 - 0x1000, 2, U),
        Error::InvalidState { addr: 0x10_0000 },
    );
    // Unmap over a range whose first pages are mapped and the rest not.
    refused(
        unmap(0x20_0000 - 0x2000, 5, U),
        Error::InvalidState {
            addr: 0x20_0000 + 0x2000,
        },
    );
    // Unmap where the tables do not exist at all.
    refused(
        unmap(0x1234_5678_9000, 3, U),
        Error::InvalidState {
            addr: 0x1234_5678_9000,
        },
    );
    refused(
        unmap(0xffff_c200_0000_0000, 1 << 20, K),
        Error::InvalidState {
            addr: 0xffff_c200_0000_0000,
        },
    );
}

#[test]
fn out_of_memory_is_checked_last_and_changes_nothing() {
    let free = busy().vmm.stats().free_frames;
    refused(map(0x100_0000_0000, free, U), Error::OutOfMemory);
    // Enough frames for the data but not for the tables.
    refused(map(0x100_0000_0000, free - 2, U), Error::OutOfMemory);
    refused(
        Request::Map {
            addr: 0x100_0000_0000,
            pages: free + 1,
            writable: true,
            executable: false,
            contiguous: true,
            privilege: U,
        },
        Error::OutOfMemory,
    );
    // Convert to usable RAM needing more tables than there are frames.
    refused(conv(0, 1 << 34, U), Error::OutOfMemory);
    // An invalid state is reported before out of memory.
    refused(
        map(0x20_0000 - 0x2000, 1 << 30, U),
        Error::InvalidState {
            addr: 0x20_0000 - 0x2000,
        },
    );
}

#[test]
fn query_limit() {
    refused(query(0x1000, MAX_QUERY_PAGES + 1, U), Error::TooLarge);
    refused(query(0x1001, MAX_QUERY_PAGES + 1, U), Error::TooLarge);
    let mut m = busy();
    match req(&mut m, query(0, MAX_QUERY_PAGES, U)) {
        Response::Pages(p) => assert_eq!(p.len() as u64, MAX_QUERY_PAGES),
        other => panic!("{other:?}"),
    }
}

#[test]
fn touch_validation() {
    let w = |addr, len, privilege| Request::Write {
        addr,
        len,
        seed: 1,
        privilege,
    };
    let r = |addr, len, privilege| Request::Read {
        addr,
        len,
        privilege,
    };
    for f in [w as fn(u64, u64, Privilege) -> Request, r] {
        refused(f(0x1000, MAX_TOUCH_LEN + 1, U), Error::TooLarge);
        refused(f(0x0000_8000_0000_0000, 1, U), Error::NonCanonical);
        refused(f(0xffff_ffff_ffff_fff0, 0x20, K), Error::Overflow);
        refused(f(0x7fff_ffff_fff0, 0x20, U), Error::CrossesCanonicalHole);
        refused(f(0xffff_c080_0000_0000, 1, U), Error::PermissionDenied);
        refused(f(0xffff_8000_0000_1000, 8, K), Error::Reserved);
        refused(f(0xffff_ffff_8000_0000, 8, K), Error::Reserved);
    }
    // A zero length succeeds with no other check and touches nothing.
    let mut m = busy();
    let before = snapshot(&mut m);
    assert_eq!(req(&mut m, w(0x0000_8000_0000_0000, 0, U)), Response::Done);
    assert_eq!(
        req(&mut m, r(0xffff_8000_0000_0000, 0, U)),
        Response::Checksum {
            checksum: protocol::pattern::checksum(&[])
        }
    );
    assert_eq!(snapshot(&mut m), before);
}

#[test]
fn kernel_only_requests_refuse_users_first() {
    for r in [
        Request::Panic { privilege: U },
        Request::AllocFrames {
            count: 0,
            contiguous: false,
            privilege: U,
        },
        Request::FreeFrames {
            frame: 1,
            count: 0,
            privilege: U,
        },
        Request::Valloc {
            pages: 0,
            privilege: U,
        },
        Request::Vfree {
            addr: 1,
            pages: 0,
            privilege: U,
        },
        Request::Reset { privilege: U },
        Request::CreateSpace { privilege: U },
        Request::SwitchSpace {
            space: u16::MAX,
            privilege: U,
        },
        Request::DestroySpace {
            space: 0,
            privilege: U,
        },
    ] {
        refused(r, Error::PermissionDenied);
    }
}

#[test]
fn frame_requests() {
    let a = |count, contiguous| Request::AllocFrames {
        count,
        contiguous,
        privilege: K,
    };
    let f = |frame, count| Request::FreeFrames {
        frame,
        count,
        privilege: K,
    };
    refused(a(0, false), Error::ZeroCount);
    refused(a(MAX_ALLOC_FRAMES + 1, false), Error::TooLarge);
    refused(a(1000, false), Error::OutOfMemory);
    refused(a(1000, true), Error::OutOfMemory);
    refused(f(0x1000, 0), Error::ZeroCount);
    refused(f(0x1000, MAX_ALLOC_FRAMES + 1), Error::TooLarge);
    refused(f(0x1001, 1), Error::Misaligned);
    refused(f(0xffff_ffff_ffff_f000, 2), Error::Overflow);
    refused(f(512 * 4096, 1), Error::OutOfRange);
    refused(f(511 * 4096, 2), Error::OutOfRange);
    refused(f(0, 1), Error::NotOwned { frame: 0 });
    // The host's frames plus one more: the lowest not held.
    let mut m = busy();
    let held: Vec<u64> = (0..512).filter(|&n| m.vmm.host_holds(n)).collect();
    assert_eq!(held.len(), 3);
    let last = *held.last().unwrap();
    refused(
        f(last * 4096, 2),
        Error::NotOwned {
            frame: (last + 1) * 4096,
        },
    );
}

#[test]
fn valloc_requests() {
    refused(
        Request::Valloc {
            pages: 0,
            privilege: K,
        },
        Error::ZeroCount,
    );
    refused(
        Request::Valloc {
            pages: crate::layout::VALLOC_PAGES + 1,
            privilege: K,
        },
        Error::TooLarge,
    );
    refused(
        Request::Valloc {
            pages: crate::layout::VALLOC_PAGES,
            privilege: K,
        },
        Error::NoVirtualSpace,
    );
    let v = |addr, pages| Request::Vfree {
        addr,
        pages,
        privilege: K,
    };
    let base = crate::layout::VALLOC_START;
    refused(v(base, 0), Error::ZeroCount);
    refused(v(base + 1, 1), Error::Misaligned);
    refused(v(0x0000_8000_0000_0000, 1), Error::NonCanonical);
    refused(v(0xffff_ffff_ffff_f000, 1), Error::Overflow);
    refused(v(0x1000, 1), Error::InvalidState { addr: 0x1000 });
    refused(
        v(base, 6),
        Error::InvalidState {
            addr: base + 5 * 4096,
        },
    );
    refused(v(base - 4096, 2), Error::InvalidState { addr: base - 4096 });
}

#[test]
fn batches() {
    let mut m = busy();
    let before = snapshot(&mut m);
    let big = vec![Request::Stats; MAX_BATCH + 1];
    assert_eq!(
        req(&mut m, Request::Batch(big)),
        Response::Error(Error::TooLarge)
    );
    let r = req(
        &mut m,
        Request::Batch(vec![
            Request::Ping { nonce: 4 },
            Request::Batch(vec![Request::Reset { privilege: K }]),
            Request::Valloc {
                pages: 0,
                privilege: K,
            },
        ]),
    );
    assert_eq!(
        r,
        Response::Batch(vec![
            Response::Pong { nonce: 4 },
            Response::Error(Error::NestedBatch),
            Response::Error(Error::ZeroCount),
        ])
    );
    assert_eq!(snapshot(&mut m), before);
    // A full batch is not refused; its answer is cut where the answers'
    // kernel memory would pass the budget (`protocol::budget::Used`).
    let ping = Request::Ping { nonce: 1 };
    let full = vec![ping.clone(); MAX_BATCH];
    match req(&mut m, Request::Batch(full)) {
        Response::Batch(v) => {
            let cut = v.len() - 1;
            assert!(cut > 1000 && cut < MAX_BATCH, "cut at {cut}");
            assert_eq!(v[cut], Response::Error(Error::BatchCut));
            assert!(!Used::of(&v[..cut]).fits(&ping));
            assert!(Used::of(&v[..cut - 1]).fits(&ping));
        }
        other => panic!("{other:?}"),
    }
}
