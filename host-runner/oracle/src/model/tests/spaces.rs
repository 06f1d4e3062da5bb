//! Address spaces: the three requests' answers and errors, each space's
//! user half its own and the kernel half shared, what `DestroySpace` and
//! `Reset` free, and the counters that count every space.

use protocol::pattern::{checksum, fill};
use protocol::{Error, PageState, Request, Response};

use super::files::{read, write};
use super::requests::{err, map, K, U};
use super::{diverges, hello, run, BOOT_FREE, KSPACE};
use crate::model::{Model, ModelState, Prediction};

/// Roots the guest answers (free frames of the test machine).
pub(super) const ROOTS: [u64; 4] = [0x30_0000, 0x30_1000, 0x30_2000, 0x30_3000];

pub(super) fn create() -> Request {
    Request::CreateSpace { privilege: K }
}

pub(super) fn switch(space: u16) -> Request {
    Request::SwitchSpace {
        space,
        privilege: K,
    }
}

pub(super) fn destroy(space: u16) -> Request {
    Request::DestroySpace {
        space,
        privilege: K,
    }
}

pub(super) fn made(space: u16) -> Response {
    Response::Space {
        space,
        root: ROOTS[usize::from(space)],
    }
}

/// A model of [`hello`] with spaces 0..4 (numbers 1, 2, 3 to make).
pub(super) fn model() -> Model {
    Model::new(&super::with_frame_info(protocol::Hello {
        max_spaces: 4,
        ..hello()
    }))
}

/// [`model`] with spaces 1 and 2 made.
pub(super) fn two_spaces() -> Model {
    let mut m = model();
    run(&mut m, &[(create(), made(1)), (create(), made(2))]);
    m
}

fn sum_of(seed: u64, addr: u64, len: usize) -> Response {
    let mut bytes = vec![0u8; len];
    fill(seed, addr, &mut bytes);
    Response::Checksum {
        checksum: checksum(&bytes),
    }
}

fn zeros(len: usize) -> Response {
    Response::Checksum {
        checksum: checksum(&vec![0u8; len]),
    }
}

#[test]
fn each_request_answers_its_errors_in_order() {
    let mut m = model();
    let user = [
        Request::CreateSpace { privilege: U },
        Request::SwitchSpace {
            space: 9,
            privilege: U,
        },
        Request::DestroySpace {
            space: 0,
            privilege: U,
        },
    ];
    for req in user {
        assert_eq!(m.predict(&req), err(Error::PermissionDenied), "{req:?}");
    }
    assert_eq!(
        m.predict(&create()),
        Prediction::Space {
            space: 1,
            oom: false
        }
    );
    run(
        &mut m,
        &[
            (create(), made(1)),
            (create(), made(2)),
            (create(), made(3)),
            (create(), Response::Error(Error::TooManySpaces)),
            (switch(4), Response::Error(Error::NoSuchSpace)),
            (switch(2), Response::Done),
            (switch(2), Response::Done),
            (destroy(0), Response::Error(Error::SpaceInUse)),
            (destroy(2), Response::Error(Error::SpaceInUse)),
            (destroy(9), Response::Error(Error::NoSuchSpace)),
            (destroy(1), Response::Done),
            (destroy(1), Response::Error(Error::NoSuchSpace)),
            (switch(1), Response::Error(Error::NoSuchSpace)),
        ],
    );
    assert_eq!(m.current_space(), 2);
    // The lowest unused number again, not the next.
    assert_eq!(
        m.predict(&create()),
        Prediction::Space {
            space: 1,
            oom: false
        }
    );
    run(
        &mut m,
        &[(switch(0), Response::Done), (destroy(2), Response::Done)],
    );
    assert_eq!(m.space_roots().keys().copied().collect::<Vec<_>>(), [3]);
    // A guest without spaces makes none.
    let mut none = Model::new(&hello());
    assert_eq!(none.predict(&create()), err(Error::TooManySpaces));
    let d = diverges(&mut none, switch(0), Response::Error(Error::NoSuchSpace));
    assert!(d.to_string().contains("Done"), "{d}");
}

#[test]
fn a_root_must_be_a_frame_the_model_knows_nothing_else_of() {
    let mut m = two_spaces();
    let root = |root| Response::Space { space: 3, root };
    for (r, why) in [
        (0x1000, "boot reservation"),
        (0x30_0800, "not page aligned"),
        (ROOTS[2], "the PML4 of space 2"),
        (32768 << 12, "beyond RAM"),
    ] {
        let d = diverges(&mut m, create(), root(r));
        assert!(d.reason.contains(why), "{r:#x}: {d}");
    }
    let d = diverges(&mut m, create(), made(2));
    assert!(d.reason.contains("lowest unused number is 3"), "{d}");
    // A frame the host holds, and one a page's Query reported.
    run(
        &mut m,
        &[
            (
                Request::AllocFrames {
                    count: 1,
                    contiguous: false,
                    privilege: K,
                },
                Response::Frames(vec![protocol::FrameRun {
                    start: 0x40_0000,
                    count: 1,
                }]),
            ),
            (map(0x1000, 1, U), Response::Done),
            (
                Request::Query {
                    addr: 0x1000,
                    pages: 1,
                    privilege: U,
                },
                Response::Pages(vec![PageState::PresentRam {
                    writable: true,
                    executable: false,
                    frame: 0x40_1000,
                }]),
            ),
        ],
    );
    for r in [0x40_0000, 0x40_1000] {
        diverges(&mut m, create(), root(r));
    }
    // And no page's frame may be a space's PML4.
    run(&mut m, &[(switch(1), Response::Done)]);
    run(&mut m, &[(map(0x1000, 1, U), Response::Done)]);
    let query = Request::Query {
        addr: 0x1000,
        pages: 1,
        privilege: U,
    };
    let at = |frame| {
        Response::Pages(vec![PageState::PresentRam {
            writable: true,
            executable: false,
            frame,
        }])
    };
    let d = diverges(&mut m, query.clone(), at(ROOTS[2]));
    assert!(d.reason.contains("PML4 of space 2"), "{d}");
    // Nor a page's of another space (no sharing yet).
    let d = diverges(&mut m, query, at(0x40_1000));
    assert!(d.reason.contains("backs page 0x1000"), "{d}");
}

#[test]
fn each_space_has_its_user_half_and_all_share_the_kernel_half() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (switch(1), Response::Done),
            (map(0x1000, 1, U), Response::Done),
            (write(0x1000, 4096, 5), Response::Done),
            (map(KSPACE, 1, K), Response::Done),
            (
                Request::Write {
                    addr: KSPACE,
                    len: 100,
                    seed: 3,
                    privilege: K,
                },
                Response::Done,
            ),
            (switch(2), Response::Done),
        ],
    );
    // Space 2's page at the same address is its own: unusable, then
    // another page with other bytes.
    assert_eq!(m.state(0x1000), None);
    assert_eq!(
        m.predict(&read(0x1000, 16)),
        Prediction::Exact(Response::Fault {
            addr: 0x1000,
            write: false,
            reason: protocol::FaultReason::Unusable
        })
    );
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (read(0x1000, 4096), zeros(4096)),
            (write(0x1800, 8, 9), Response::Done),
        ],
    );
    // The kernel page is the one space 1 wrote.
    let kread = Request::Read {
        addr: KSPACE,
        len: 100,
        privilege: K,
    };
    assert_eq!(m.predict(&kread), Prediction::Exact(sum_of(3, KSPACE, 100)));
    run(&mut m, &[(switch(1), Response::Done)]);
    assert_eq!(
        m.predict(&read(0x1000, 4096)),
        Prediction::Exact(sum_of(5, 0x1000, 4096))
    );
    assert_eq!(m.state_in(1, 0x1000), Some(ModelState::DATA));
    assert_eq!(m.state_in(2, 0x1000), Some(ModelState::DATA));
    assert_eq!(m.state_in(0, 0x1000), None);
    // Tables per space (PDPT, PD, PT for each user page), one kernel
    // set, and the two PML4s.
    let s = m.stats();
    assert_eq!(s.page_table_frames, 3 + 3 + 3 + 2);
    assert_eq!(s.present_pages, 3);
    assert_eq!(s.free_frames, BOOT_FREE - 11 - 3);
    assert_eq!(
        m.predict(&Request::Stats),
        Prediction::Stats(m.stats_bounds())
    );
}

#[test]
fn answers_name_plain_addresses_of_the_current_space() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (switch(2), Response::Done),
            (map(0x5000, 1, U), Response::Done),
        ],
    );
    assert_eq!(
        m.predict(&map(0x4000, 2, U)),
        err(Error::InvalidState { addr: 0x5000 })
    );
    assert_eq!(
        m.predict(&write(0x5ff0, 32, 1)),
        Prediction::Exact(Response::Fault {
            addr: 0x6000,
            write: true,
            reason: protocol::FaultReason::Unusable
        })
    );
    let d = diverges(
        &mut m,
        write(0x5ff0, 32, 1),
        Response::Fault {
            addr: 0x0002_0000_0000_6000,
            write: true,
            reason: protocol::FaultReason::Unusable,
        },
    );
    assert!(d.reason.contains("different answer"), "{d}");
}
