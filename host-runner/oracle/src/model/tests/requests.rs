//! Validation order, state rules, out of memory and convert transitions
//! against hand-computed answers.

use protocol::{AreaType, Error, Privilege, Request, Response};

use super::{convert, diverges, hello, run, BOOT_FREE, HEAP, KSPACE};
use crate::model::{Model, ModelState, Prediction};

pub(super) const K: Privilege = Privilege::Kernel;
pub(super) const U: Privilege = Privilege::User;

/// [`Request::map_writable`], the mapping these tests mostly make.
pub(super) fn map(addr: u64, pages: u64, privilege: Privilege) -> Request {
    Request::map_writable(addr, pages, privilege)
}

/// A read-only user mapping of `pages` pages at `addr`.
pub(super) fn map_ro(addr: u64, pages: u64) -> Request {
    Request::Map {
        addr,
        pages,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: U,
    }
}

pub(super) fn err(e: Error) -> Prediction {
    Prediction::Exact(Response::Error(e))
}

#[test]
fn validation_answers_the_first_rule_that_applies() {
    let m = Model::new(&hello());
    let cases = [
        (map(0x1001, 0, U), Error::ZeroCount),
        (map(0x1001, 1, U), Error::Misaligned),
        (map(0x0000_8000_0000_1000, 1, U), Error::NonCanonical),
        (map(0x0000_8000_0000_1001, 1, U), Error::Misaligned),
        (map(0xffff_ffff_ffff_f000, 1, K), Error::Overflow),
        (map(0x1000, 1 << 63, U), Error::Overflow),
        (map(0x7fff_ffff_f000, 2, K), Error::CrossesCanonicalHole),
        (map(0x7fff_ffff_f000, 2, U), Error::CrossesCanonicalHole),
        (map(KSPACE, 1, U), Error::PermissionDenied),
        (map(0xffff_8000_0000_0000, 1, K), Error::Reserved),
        (map(HEAP, 1, K), Error::Reserved),
        (map(HEAP - 4096, 2, K), Error::Reserved),
        (map(0xffff_ff80_0000_0000, 1, K), Error::Reserved),
        (
            Request::Query {
                addr: 0,
                pages: protocol::MAX_QUERY_PAGES + 1,
                privilege: U,
            },
            Error::TooLarge,
        ),
        (
            Request::Write {
                addr: 0x1000,
                len: protocol::MAX_TOUCH_LEN + 1,
                seed: 1,
                privilege: U,
            },
            Error::TooLarge,
        ),
        (
            Request::Read {
                addr: 0xffff_ffff_ffff_fff0,
                len: 0x20,
                privilege: K,
            },
            Error::Overflow,
        ),
        (
            Request::Read {
                addr: 0x7fff_ffff_fff0,
                len: 0x20,
                privilege: K,
            },
            Error::CrossesCanonicalHole,
        ),
        (
            Request::AllocFrames {
                count: 0,
                contiguous: false,
                privilege: U,
            },
            Error::PermissionDenied,
        ),
        (Request::Reset { privilege: U }, Error::PermissionDenied),
    ];
    for (req, e) in cases {
        assert_eq!(m.predict(&req), err(e), "{req:?}");
    }
    // Valid ranges at the edges of the managed space.
    assert_eq!(
        m.predict(&map(0x7fff_ffff_f000, 1, U)),
        Prediction::Exact(Response::Done)
    );
    assert_eq!(
        m.predict(&map(HEAP - 4096, 1, K)),
        Prediction::Exact(Response::Done)
    );
    assert_eq!(
        m.predict(&map(HEAP + (32 << 20), 1, K)),
        Prediction::Exact(Response::Done)
    );
    // A zero-length touch needs no valid address.
    let empty = Request::Read {
        addr: 0x0000_8000_0000_0000,
        len: 0,
        privilege: U,
    };
    assert_eq!(
        m.predict(&empty),
        Prediction::Exact(Response::Checksum { checksum: 0 })
    );
}

#[test]
fn state_rules_name_the_lowest_offending_page() {
    let mut m = Model::new(&hello());
    run(&mut m, &[(map(0x5000, 2, U), Response::Done)]);
    assert_eq!(
        m.predict(&map(0x3000, 4, U)),
        err(Error::InvalidState { addr: 0x5000 })
    );
    let unmap = Request::Unmap {
        addr: 0x5000,
        pages: 4,
        privilege: U,
    };
    assert_eq!(m.predict(&unmap), err(Error::InvalidState { addr: 0x7000 }));
    // The error comes before out of memory, and changes nothing.
    let huge = map(0x3000, 1 << 30, U);
    assert_eq!(m.predict(&huge), err(Error::InvalidState { addr: 0x5000 }));
    let d = diverges(&mut m, unmap, Response::Done);
    assert_eq!(d.expected, "Error(InvalidState { addr: 0x7000 })");
    assert_eq!(
        d.to_string(),
        "operation 7: Unmap { addr: 0x5000, pages: 4, privilege: User }: \
         expected Error(InvalidState { addr: 0x7000 }), got Done: different answer"
    );
    assert_eq!(
        m.state(0x5000),
        Some(ModelState::PresentRam {
            writable: true,
            executable: false
        })
    );
}

#[test]
fn out_of_memory_counts_data_frames_and_needed_tables() {
    let mut m = Model::new(&hello());
    // One page at 0 needs a PT, a PD and a PDPT: BOOT_FREE - 3 data pages fit.
    assert_eq!(
        m.predict(&map(0, BOOT_FREE - 3 + 1, U)),
        err(Error::OutOfMemory)
    );
    // BOOT_FREE - 65 = 32191 pages need 63 PTs + a PD + a PDPT: exactly BOOT_FREE.
    assert_eq!(
        m.predict(&map(0, BOOT_FREE - 65, U)),
        Prediction::Exact(Response::Done)
    );
    assert_eq!(
        m.predict(&map(0, BOOT_FREE - 64, U)),
        err(Error::OutOfMemory)
    );
    // Converting the whole lower half needs 2^26 + 2^17 + 2^8 tables.
    let all = convert(0, 1 << 35, AreaType::UsableRam);
    assert_eq!(m.predict(&all), err(Error::OutOfMemory));
    // ... and making it unusable needs nothing.
    let none = convert(0, 1 << 35, AreaType::Unusable);
    run(&mut m, &[(none, Response::Done)]);
    // A contiguous map may fail when frames suffice; a plain one may not.
    let contiguous = Request::Map {
        addr: 0x1000,
        pages: 16,
        writable: false,
        executable: false,
        contiguous: true,
        privilege: U,
    };
    assert_eq!(m.predict(&contiguous), Prediction::DoneOrOutOfMemory);
    run(&mut m, &[(contiguous, Response::Error(Error::OutOfMemory))]);
    diverges(
        &mut m,
        map(0x1000, 16, U),
        Response::Error(Error::OutOfMemory),
    );
}

#[test]
fn convert_transitions() {
    let mut m = Model::new(&hello());
    m.force_state(
        0x1000,
        1,
        ModelState::PresentMmap {
            file: 2,
            page: 7,
            private: true,
        },
    );
    m.force_state(0x2000, 2, ModelState::NotPresentMmap { file: 2, page: 8 });
    m.force_state(0x4000, 1, ModelState::OnSwap { slot: 9 });
    m.force_state(0x5000, 1, ModelState::AllocOnWrite);
    m.force_state(
        0x6000,
        1,
        ModelState::PresentRam {
            writable: false,
            executable: false,
        },
    );
    let to = |to| convert(0, 8, to);
    run(&mut m, &[(to(AreaType::UsableRam), Response::Done)]);
    let ram = |w| {
        Some(ModelState::PresentRam {
            writable: w,
            executable: false,
        })
    };
    let aow = Some(ModelState::AllocOnWrite);
    let want = [
        aow,
        ram(true),
        aow,
        aow,
        Some(ModelState::OnSwap { slot: 9 }),
        aow,
        ram(false),
        aow,
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(m.state(i as u64 * 4096), *w, "page {i}");
    }
    // Present pages 1 and 6: 2 frames, 1 PT + 1 PD + 1 PDPT.
    let s = m.stats();
    assert_eq!(
        (s.present_pages, s.alloc_on_write_pages, s.page_table_frames),
        (2, 5, 3)
    );
    assert_eq!(s.free_frames, BOOT_FREE - 5);
    run(&mut m, &[(to(AreaType::Unusable), Response::Done)]);
    assert_eq!(m.stats().free_frames, BOOT_FREE);
    assert_eq!(m.stats().page_table_frames, 0);
}
