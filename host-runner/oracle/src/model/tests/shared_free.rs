//! Shared memory and frames: `DestroySpace` and `Reset` drop mappings
//! (the frame freed with the last), `Share` takes tables only (and fails
//! for want of them), the frames a `Query` reports for one shared frame
//! must be one, and the clock never names a page of `Share`'s source.

use protocol::{Error, Hello, PageState, Reclaim, Request, Response};

use super::requests::{map, U};
use super::shared::{counts, share};
use super::spaces::{create, destroy, made, switch, two_spaces};
use super::{diverges, hello, reclaimed, run, BOOT_FREE};
use crate::model::{Model, ModelState, Prediction};

fn reset() -> Request {
    Request::Reset {
        privilege: super::requests::K,
    }
}

#[test]
fn destroying_a_space_drops_its_mappings_and_frees_only_the_last() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 2, U), Response::Done),
            (share(0x1000, 2, 1, 0x5000), Response::Done),
            (switch(1), Response::Done),
            (map(0x9000, 1, U), Response::Done),
            (share(0x9000, 1, 2, 0x9000), Response::Done),
        ],
    );
    // Frames: 2 shared by spaces 0 and 1, 1 shared by spaces 1 and 2.
    assert_eq!(m.stats().present_pages, 3);
    let free = m.stats().free_frames;
    // Space 2 is not current: its one mapping goes, the frame stays.
    run(&mut m, &[(destroy(2), Response::Done)]);
    assert_eq!(counts(&m, 0x9000, 1), vec![Some((true, 1))]);
    let s = m.stats();
    assert_eq!(s.present_pages, 3);
    // Space 2's three tables and its PML4.
    assert_eq!(s.free_frames, free + 4);
    // Space 1 destroyed from space 0: the frame it alone mapped is freed.
    run(
        &mut m,
        &[(switch(0), Response::Done), (destroy(1), Response::Done)],
    );
    assert_eq!(counts(&m, 0x1000, 2), vec![Some((true, 1)); 2]);
    let s = m.stats();
    assert_eq!(s.present_pages, 2);
    assert_eq!(s.free_frames, free + 4 + 1 + 4);
}

#[test]
fn reset_drops_every_mapping() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (share(0x1000, 1, 1, 0x1000), Response::Done),
            (share(0x1000, 1, 2, 0x1000), Response::Done),
            (switch(2), Response::Done),
            (reset(), Response::Done),
        ],
    );
    let s = m.stats();
    assert_eq!((s.present_pages, s.page_table_frames), (0, 0));
    assert_eq!(s.free_frames, BOOT_FREE);
    assert_eq!(m.state(0x1000), None);
    // A space made after the reset shares afresh.
    run(
        &mut m,
        &[
            (create(), made(1)),
            (map(0x1000, 1, U), Response::Done),
            (share(0x1000, 1, 1, 0x1000), Response::Done),
        ],
    );
    assert_eq!(counts(&m, 0x1000, 1), vec![Some((true, 2))]);
}

#[test]
fn share_needs_the_targets_tables_and_nothing_else() {
    // 5 free frames: a page and its three tables leave 1.
    let mut m = Model::new(&super::with_frame_info(Hello {
        boot_free_frames: 5,
        max_spaces: 4,
        ..hello()
    }));
    run(&mut m, &[(map(0x1000, 1, U), Response::Done)]);
    assert_eq!(m.stats().free_frames, 1);
    // Same page table: nothing needed, nothing taken.
    run(&mut m, &[(share(0x1000, 1, 0, 0x2000), Response::Done)]);
    assert_eq!(m.stats().free_frames, 1);
    // A new PML4 slot needs three tables: more than could ever be free.
    let far = 0x0000_4000_0000_0000;
    assert_eq!(
        m.predict(&share(0x1000, 1, 0, far)),
        Prediction::Exact(Response::Error(Error::OutOfMemory))
    );
    // A new page table: the last free frame.
    run(&mut m, &[(share(0x1000, 1, 0, 0x20_0000), Response::Done)]);
    let s = m.stats();
    assert_eq!(
        (s.free_frames, s.present_pages, s.page_table_frames),
        (0, 1, 4)
    );
    assert_eq!(counts(&m, 0x1000, 1), vec![Some((true, 3))]);
}

#[test]
fn query_frames_of_one_shared_frame_must_agree() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 2, U), Response::Done),
            (share(0x1000, 2, 1, 0x5000), Response::Done),
        ],
    );
    let q = |addr| Request::Query {
        addr,
        pages: 1,
        privilege: U,
    };
    let page = |frame| {
        Response::Pages(vec![PageState::Shared {
            writable: true,
            mappings: 2,
            frame,
        }])
    };
    run(&mut m, &[(q(0x1000), page(0x40_0000))]);
    run(&mut m, &[(switch(1), Response::Done)]);
    // The target maps the source's frame, no other.
    let d = diverges(&mut m, q(0x5000), page(0x41_0000));
    assert!(
        d.reason.contains("0x1000, which maps frame 0x400000"),
        "{d}"
    );
    // Another shared frame may not be reported at the same frame.
    let d = diverges(&mut m, q(0x6000), page(0x40_0000));
    assert!(d.reason.contains("backs page"), "{d}");
    run(&mut m, &[(q(0x5000), page(0x40_0000))]);
    // After the source goes, the frame is still the target's.
    run(
        &mut m,
        &[
            (switch(0), Response::Done),
            (
                Request::Unmap {
                    addr: 0x1000,
                    pages: 1,
                    privilege: U,
                },
                Response::Done,
            ),
            (map(0x1000, 1, U), Response::Done),
        ],
    );
    let taken = Response::Pages(vec![PageState::PresentRam {
        writable: true,
        executable: false,
        frame: 0x40_0000,
    }]);
    let d = diverges(&mut m, q(0x1000), taken);
    assert!(d.reason.contains("backs page 0x5000 in space 1"), "{d}");
}

#[test]
fn no_reclaim_event_may_name_a_page_of_the_source_range() {
    let mut m = Model::new(&super::with_frame_info(Hello {
        max_spaces: 4,
        ..hello()
    }));
    run(
        &mut m,
        &[(create(), made(1)), (map(0x1000, 2, U), Response::Done)],
    );
    let ev = reclaimed(
        vec![Reclaim::Swapped {
            addr: 0x2000,
            slot: 0,
        }],
        Response::Done,
    );
    let d = diverges(&mut m, share(0x1000, 2, 1, 0x1000), ev);
    assert!(d.reason.contains("own range"), "{d}");
    assert_eq!(m.state(0x2000), Some(ModelState::DATA));
}

/// Found by a 10-minute campaign (seed 47; testcases/shared-frame-heir.jsonl):
/// a shared frame the model learned only after the share (a `Query` of the
/// source) passed to the target when the source was unmapped, but the
/// target's page was not recorded as mapping it, so destroying the target
/// left the frame recorded as its, and the VMM handing it out again was a
/// divergence.
#[test]
fn a_shared_frame_learned_after_the_share_is_freed_with_its_last_mapping() {
    let mut m = two_spaces();
    let q = |addr| Request::Query {
        addr,
        pages: 1,
        privilege: U,
    };
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (share(0x1000, 1, 1, 0x5000), Response::Done),
            (
                q(0x1000),
                Response::Pages(vec![PageState::Shared {
                    writable: true,
                    mappings: 2,
                    frame: 0x40_0000,
                }]),
            ),
            (
                Request::Unmap {
                    addr: 0x1000,
                    pages: 1,
                    privilege: U,
                },
                Response::Done,
            ),
            (destroy(1), Response::Done),
            (map(0x1000, 1, U), Response::Done),
        ],
    );
    // The frame went with space 1's mapping, the last: it may back anything.
    run(
        &mut m,
        &[(
            q(0x1000),
            Response::Pages(vec![PageState::PresentRam {
                writable: true,
                executable: false,
                frame: 0x40_0000,
            }]),
        )],
    );
}
