//! Shared memory, the text's lists and tables: `Share`'s refusals in the
//! specification's order, error by error, each changing nothing; and every
//! row of the transition tables for present shared pages (writable and
//! read-only): touches, `Map`, `MapFile`, `Evict`, every `Convert`.

use protocol::{Error, FaultReason, PageState};

use super::shared::{share_ok, shared_at, states, two_spaces, B, C};
use super::spaces::{create, pattern_sum, read, switch, write, A, KADDR};
use super::*;

/// `Share` answers `want` and changes nothing.
fn refused(m: &mut SimMachine, r: Request, want: Error) {
    let before = snapshot(m);
    assert_eq!(req(m, r.clone()), Response::Error(want), "{r:?}");
    assert_eq!(snapshot(m), before, "{r:?} changed the state");
}

fn sh(addr: u64, pages: u64, space: u16, to: u64) -> Request {
    Request::Share {
        addr,
        pages,
        space,
        to,
        privilege: K,
    }
}

#[test]
fn refusals_come_in_the_specified_order() {
    let (mut m, one) = two_spaces(2);
    let m = &mut m;
    const HOLE: u64 = 0x0000_8000_0000_0000;
    const TOP: u64 = 0xffff_ffff_ffff_f000;
    const EDGE: u64 = 0x7fff_ffff_f000;
    // 1. Kernel only: before any other check.
    let mut user = sh(A + 1, 0, 99, HOLE);
    if let Request::Share { privilege, .. } = &mut user {
        *privilege = U;
    }
    refused(m, user, Error::PermissionDenied);
    // 2. Steps 1–5 over `addr`, then over `to`.
    refused(m, sh(A + 1, 0, 99, HOLE), Error::ZeroCount);
    refused(m, sh(A + 1, 1, 99, HOLE), Error::Misaligned);
    refused(m, sh(HOLE, 1, 99, A + 1), Error::NonCanonical);
    refused(m, sh(TOP, 2, 99, A + 1), Error::Overflow);
    refused(m, sh(A, u64::MAX, 99, A + 1), Error::Overflow);
    refused(m, sh(EDGE, 2, 99, A + 1), Error::CrossesCanonicalHole);
    refused(m, sh(KADDR, 1, 99, A + 1), Error::Misaligned);
    refused(m, sh(KADDR, 1, 99, HOLE), Error::NonCanonical);
    refused(m, sh(A, 2, 99, TOP), Error::Overflow);
    refused(m, sh(A, 2, 99, EDGE), Error::CrossesCanonicalHole);
    // 3. Either range outside the user half, the heap's region included.
    refused(m, sh(KADDR, 1, 99, B), Error::Reserved);
    refused(m, sh(A, 1, 99, KADDR), Error::Reserved);
    refused(m, sh(0xffff_8000_0000_0000, 1, 99, B), Error::Reserved);
    // 4. The target space.
    refused(m, sh(C, 1, 99, A), Error::NoSuchSpace);
    refused(m, sh(C, 1, u16::MAX, A), Error::NoSuchSpace);
    refused(m, sh(C, 1, one + 1, A), Error::NoSuchSpace);
    // 5. The source's pages, the lowest offending one (before the target's).
    refused(m, sh(C, 1, 0, A), Error::InvalidState { addr: C });
    refused(m, sh(A, 3, one, B), Error::InvalidState { addr: A + 8192 });
    let exec = Request::Map {
        addr: C,
        pages: 1,
        writable: false,
        executable: true,
        contiguous: false,
        privilege: U,
    };
    assert_eq!(req(m, exec), Response::Done);
    convert(m, C + 4096, 1, AreaType::UsableRam);
    convert(m, C + 8192, 1, AreaType::PinnedRam);
    write(m, C + 8192, 1, 5, U);
    for bad in [C, C + 4096, C + 8192] {
        refused(m, sh(bad, 1, one, B), Error::InvalidState { addr: bad });
    }
    // 6. The target's pages in `space`, the lowest offending one.
    switch(m, one);
    assert_eq!(
        req(m, Request::map_writable(B + 4096, 1, U)),
        Response::Done
    );
    switch(m, 0);
    refused(m, sh(A, 2, one, B), Error::InvalidState { addr: B + 4096 });
    refused(
        m,
        sh(A, 1, one, B + 4096),
        Error::InvalidState { addr: B + 4096 },
    );
    // Overlapping ranges of one space fail at the target.
    refused(m, sh(A, 2, 0, A - 4096), Error::InvalidState { addr: A });
    // A source page on swap is not present RAM.
    let evict = Request::Evict {
        addr: A + 4096,
        pages: 1,
        privilege: U,
    };
    assert!(matches!(
        req(m, evict).split_reclaimed().1,
        Response::Evicted { swapped: 1, .. }
    ));
    refused(m, sh(A, 2, one, B), Error::InvalidState { addr: A + 4096 });
    check(m);
}

/// The machine of the rows: space 0 with `A` (2 pages, writable, seed 1)
/// and `D` (1 page, read-only) shared into space 1 at `B` and `B + 2`
/// pages; a file of 4 pages.
fn rows_machine() -> (SimMachine, u16) {
    let mut m = SimMachine::with_files(1024, &[(4, 0xf11e)]);
    assert_eq!(req(&mut m, Request::map_writable(A, 2, U)), Response::Done);
    write(&mut m, A, 8192, 1, U);
    let ro = Request::Map {
        addr: D,
        pages: 1,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: U,
    };
    assert_eq!(req(&mut m, ro), Response::Done);
    let (one, _) = create(&mut m);
    share_ok(&mut m, A, 2, one, B);
    share_ok(&mut m, D, 1, one, B + 8192);
    (m, one)
}

/// A read-only page next to `A`'s table.
const D: u64 = A + 0x10_0000;

#[test]
fn shared_pages_follow_their_rows() {
    let (mut m, one) = rows_machine();
    let m = &mut m;
    let both = |m: &mut SimMachine| [states(m, A, 2), states(m, D, 1)];
    let before = both(m);
    shared_at(m, D, false, 2);
    // Convert → UsableRam and → PinnedRam: left as they are.
    for to in [AreaType::UsableRam, AreaType::PinnedRam] {
        convert(m, A, 2, to);
        convert(m, D, 1, to);
        assert_eq!(both(m), before, "convert to {to:?}");
        check(m);
    }
    // Map and MapFile: not unusable.
    for addr in [A, D] {
        let map = Request::map_writable(addr, 1, U);
        assert_eq!(req(m, map), Response::Error(Error::InvalidState { addr }));
        let file = Request::MapFile {
            addr,
            pages: 1,
            file: 0,
            file_page: 0,
            privilege: U,
        };
        assert_eq!(req(m, file), Response::Error(Error::InvalidState { addr }));
    }
    // Evict: never sent out, no event.
    let evict = Request::Evict {
        addr: A,
        pages: D / 4096 - A / 4096 + 1,
        privilege: U,
    };
    let none = Response::Evicted {
        swapped: 0,
        dropped: 0,
    };
    assert_eq!(req(m, evict), none);
    assert_eq!(both(m), before, "evict");
    // Touches: read both; write the writable one (seen through the other
    // mapping); a write to the read-only one faults.
    assert_eq!(read(m, D, 4096, U), pattern_sum_zero(4096));
    let ro_write = Request::Write {
        addr: D + 8,
        len: 8,
        seed: 3,
        privilege: U,
    };
    let fault = Response::Fault {
        addr: D + 8,
        write: true,
        reason: FaultReason::ReadOnly,
    };
    assert_eq!(req(m, ro_write), fault);
    write(m, A + 4000, 200, 4, U);
    check(m);
    switch(m, one);
    assert_eq!(read(m, B + 4000, 200, U), pattern_sum(4, A + 4000, 200));
    assert_eq!(
        req(
            m,
            Request::Write {
                addr: B + 8192,
                len: 1,
                seed: 0,
                privilege: U
            }
        ),
        Response::Fault {
            addr: B + 8192,
            write: true,
            reason: FaultReason::ReadOnly
        }
    );
    // Convert → Unusable: unusable, the count − 1, the frame kept.
    let free = stats(m).free_frames;
    convert(m, B + 8192, 1, AreaType::Unusable);
    check(m);
    assert_eq!(states(m, B + 8192, 1), vec![PageState::Unusable]);
    assert_eq!(stats(m).free_frames, free);
    switch(m, 0);
    shared_at(m, D, false, 1);
    // The last mapping: the frame freed (D's table holds A's pages too).
    convert(m, D, 1, AreaType::Unusable);
    check(m);
    assert_eq!(stats(m).free_frames, free + 1);
    reset_and_check(m);
}

/// The checksum of `len` zero bytes.
fn pattern_sum_zero(len: u64) -> Response {
    let buf = vec![0u8; crate::conv::usize_of(len)];
    Response::Checksum {
        checksum: protocol::pattern::checksum(&buf),
    }
}
