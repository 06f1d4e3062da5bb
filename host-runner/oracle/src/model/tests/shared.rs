//! Shared memory: `Share`'s validation in the spec's order, its success
//! (counts, one data image for every mapping, writability), and the rows
//! of the other requests on a shared page.

use protocol::{AreaType, Error, PageState, Privilege, Request, Response};

use super::files::{read, write};
use super::requests::{err, map, map_ro, K, U};
use super::spaces::{switch, two_spaces};
use super::{convert, diverges, run, KSPACE};
use crate::model::{Model, ModelState, Prediction};

pub(super) fn share(addr: u64, pages: u64, space: u16, to: u64) -> Request {
    Request::Share {
        addr,
        pages,
        space,
        to,
        privilege: K,
    }
}

pub(super) fn query(addr: u64, pages: u64) -> Request {
    Request::Query {
        addr,
        pages,
        privilege: U,
    }
}

/// The Query prediction's (writable, mappings) of each page.
pub(super) fn counts(m: &Model, addr: u64, pages: u64) -> Vec<Option<(bool, u64)>> {
    let Prediction::Pages(states) = m.predict(&query(addr, pages)) else {
        panic!("a query predicts pages");
    };
    states
        .into_iter()
        .map(|(st, n)| match st {
            Some(ModelState::Shared { writable, .. }) => Some((writable, n)),
            _ => None,
        })
        .collect()
}

pub(super) fn sum(seed: u64, addr: u64, len: usize) -> Response {
    let mut bytes = vec![0u8; len];
    protocol::pattern::fill(seed, addr, &mut bytes);
    Response::Checksum {
        checksum: protocol::pattern::checksum(&bytes),
    }
}

#[test]
fn share_answers_the_first_rule_that_applies_in_the_specs_order() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 2, U), Response::Done),
            (map_ro(0x3000, 1), Response::Done),
            (
                Request::Map {
                    addr: 0x4000,
                    pages: 1,
                    writable: false,
                    executable: true,
                    contiguous: false,
                    privilege: U,
                },
                Response::Done,
            ),
            (switch(1), Response::Done),
            (map(0x8000, 1, U), Response::Done),
            (switch(0), Response::Done),
        ],
    );
    let hole = 0x0000_7fff_ffff_f000;
    let non_canonical = 0x0000_8000_0000_1000;
    let cases = [
        // 1: the privilege before anything.
        (
            Request::Share {
                addr: 1,
                pages: 0,
                space: 9,
                to: 1,
                privilege: Privilege::User,
            },
            Error::PermissionDenied,
        ),
        // 2: steps 1–5 over the source, then over the target.
        (share(0x1001, 0, 0, 0x1001), Error::ZeroCount),
        (share(0x1001, 1, 0, 0x2000), Error::Misaligned),
        (share(non_canonical, 1, 0, 0x1001), Error::NonCanonical),
        (share(0xffff_ffff_ffff_f000, 2, 0, 0x1001), Error::Overflow),
        (share(hole, 2, 0, 0x1001), Error::CrossesCanonicalHole),
        (share(0x1000, 1, 0, 0x1001), Error::Misaligned),
        (share(0x1000, 1, 0, non_canonical), Error::NonCanonical),
        (share(0x1000, 2, 0, hole), Error::CrossesCanonicalHole),
        // 3: user memory only, either range; before the space's existence.
        (share(KSPACE, 1, 9, 0x9000), Error::Reserved),
        (share(0x1000, 1, 9, KSPACE), Error::Reserved),
        // 4.
        (share(0x5000, 1, 9, 0x9000), Error::NoSuchSpace),
        // 5: the source rule (unusable, executable), lowest page, before
        // the target rule.
        (
            share(0x1000, 4, 1, 0x8000),
            Error::InvalidState { addr: 0x4000 },
        ),
        (
            share(0x2000, 5, 1, 0x8000),
            Error::InvalidState { addr: 0x4000 },
        ),
        (
            share(0x5000, 1, 1, 0x8000),
            Error::InvalidState { addr: 0x5000 },
        ),
        // 6: the target rule in the target space, its plain address.
        (
            share(0x1000, 3, 1, 0x6000),
            Error::InvalidState { addr: 0x8000 },
        ),
        // Overlapping ranges of one space fail at the target rule.
        (
            share(0x1000, 2, 0, 0x2000),
            Error::InvalidState { addr: 0x2000 },
        ),
    ];
    for (req, want) in cases {
        assert_eq!(m.predict(&req), err(want), "{req:?}");
    }
    // Allocate-on-write and pinned RAM are not present RAM.
    run(
        &mut m,
        &[
            (convert(0x6000, 1, AreaType::UsableRam), Response::Done),
            (map(0x7000, 1, U), Response::Done),
            (convert(0x7000, 1, AreaType::PinnedRam), Response::Done),
        ],
    );
    for addr in [0x6000, 0x7000] {
        let want = err(Error::InvalidState { addr });
        assert_eq!(m.predict(&share(addr, 1, 2, 0x1000)), want);
    }
    // A refused Share changes nothing.
    let before = m.stats();
    let req = share(0x1000, 1, 1, 0x8000);
    let got = Response::Error(Error::InvalidState { addr: 0x8000 });
    m.apply(1, &req, &got).unwrap();
    assert_eq!(m.stats(), before);
    assert_eq!(m.state(0x1000), Some(ModelState::DATA));
}

#[test]
fn a_shared_frame_has_one_data_image_across_spaces() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 2, U), Response::Done),
            (write(0x1000, 8192, 7), Response::Done),
            (share(0x1000, 2, 1, 0x5000), Response::Done),
        ],
    );
    assert_eq!(counts(&m, 0x1000, 2), vec![Some((true, 2)); 2]);
    // The target's bytes are the source's (at the source's addresses).
    run(&mut m, &[(switch(1), Response::Done)]);
    assert_eq!(counts(&m, 0x5000, 2), vec![Some((true, 2)); 2]);
    assert_eq!(
        m.predict(&read(0x5000, 8192)),
        Prediction::Exact(sum(7, 0x1000, 8192))
    );
    // A write through the target is what the source reads.
    run(&mut m, &[(write(0x5800, 100, 9), Response::Done)]);
    run(&mut m, &[(switch(0), Response::Done)]);
    let mut want = vec![0u8; 4096];
    protocol::pattern::fill(7, 0x1000, &mut want);
    protocol::pattern::fill(9, 0x5800, &mut want[0x800..0x864]);
    assert_eq!(
        m.predict(&read(0x1000, 4096)),
        Prediction::Exact(Response::Checksum {
            checksum: protocol::pattern::checksum(&want)
        })
    );
    // The Query answer must carry the count.
    let q = query(0x1000, 1);
    let wrong = Response::Pages(vec![PageState::Shared {
        writable: true,
        mappings: 1,
        frame: 0x40_0000,
    }]);
    let d = diverges(&mut m, q.clone(), wrong);
    assert!(d.to_string().contains("mappings: 2"), "{d}");
    let right = Response::Pages(vec![PageState::Shared {
        writable: true,
        mappings: 2,
        frame: 0x40_0000,
    }]);
    m.apply(1, &q, &right).unwrap();
}

#[test]
fn counts_grow_by_share_and_fall_by_unmap_in_any_space() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (share(0x1000, 1, 1, 0x5000), Response::Done),
            (share(0x1000, 1, 2, 0x5000), Response::Done),
            // Within one space, from a page shared already.
            (share(0x1000, 1, 0, 0x9000), Response::Done),
        ],
    );
    assert_eq!(counts(&m, 0x1000, 1), vec![Some((true, 4))]);
    assert_eq!(counts(&m, 0x9000, 1), vec![Some((true, 4))]);
    let s = m.stats();
    assert_eq!(s.present_pages, 1, "a shared frame counts once");
    run(
        &mut m,
        &[
            (switch(1), Response::Done),
            (share(0x5000, 1, 1, 0x7000), Response::Done),
            (
                Request::Unmap {
                    addr: 0x5000,
                    pages: 1,
                    privilege: U,
                },
                Response::Done,
            ),
            (switch(0), Response::Done),
            (convert(0x9000, 1, AreaType::Unusable), Response::Done),
        ],
    );
    assert_eq!(counts(&m, 0x1000, 1), vec![Some((true, 3))]);
    assert_eq!(m.stats().present_pages, 1);
    // A count of 1 is still shared RAM.
    run(
        &mut m,
        &[
            (super::spaces::destroy(2), Response::Done),
            (switch(1), Response::Done),
            (convert(0x7000, 1, AreaType::Unusable), Response::Done),
            (switch(0), Response::Done),
        ],
    );
    assert_eq!(counts(&m, 0x1000, 1), vec![Some((true, 1))]);
    let free = m.stats().free_frames;
    run(
        &mut m,
        &[(convert(0x1000, 1, AreaType::Unusable), Response::Done)],
    );
    let s = m.stats();
    assert_eq!(s.present_pages, 0, "the last mapping frees the frame");
    // The data frame and space 0's three tables.
    assert_eq!(s.free_frames, free + 4);
}

/// The checksum of `len` zero bytes (pages never written).
pub(super) fn zeros(len: usize) -> Response {
    Response::Checksum {
        checksum: protocol::pattern::checksum(&vec![0u8; len]),
    }
}

/// A write across two pages of one frame (two ranges of one space share)
/// stores in ascending address order: the frame holds the later page's
/// bytes, and both mappings read them (the review's reproducer: spreading
/// each page's bytes only after the whole write lost them).
#[test]
fn a_write_across_two_mappings_of_one_frame_leaves_the_later_bytes() {
    let mut m = Model::new(&super::with_frame_info(super::hello()));
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (share(0x1000, 1, 0, 0x2000), Response::Done),
            (write(0x1000, 8192, 2), Response::Done),
        ],
    );
    let later = sum(2, 0x2000, 4096);
    assert_eq!(
        m.predict(&read(0x1000, 4096)),
        Prediction::Exact(later.clone())
    );
    assert_eq!(m.predict(&read(0x2000, 4096)), Prediction::Exact(later));
}

/// Without a frame-info table there is nowhere to count mappings: `Share`
/// answers `OutOfMemory` after its state rules, reclaiming nothing.
#[test]
fn share_without_a_frame_info_table_is_out_of_memory() {
    let mut m = Model::new(&super::hello());
    run(&mut m, &[(map(0x1000, 1, U), Response::Done)]);
    assert_eq!(
        m.predict(&share(0x1000, 1, 0, 0x2000)),
        Prediction::Exact(Response::Error(Error::OutOfMemory))
    );
    assert_eq!(
        m.predict(&share(0x1000, 1, 0, 0x1000)),
        Prediction::Exact(Response::Error(Error::InvalidState { addr: 0x1000 }))
    );
}
