//! Address spaces under reclaim and release: what `DestroySpace` and
//! `Reset` free, the clock and `Evict` acting on the current space only,
//! `CreateSpace` out of memory, and the coverage the requests reach.

use protocol::{Error, FrameRun, PageState, Reclaim, Request, Response};

use super::files::{map_file, read, write};
use super::requests::{err, map, K, U};
use super::spaces::{create, destroy, made, model, switch, two_spaces, ROOTS};
use super::{convert, diverges, hello_files, reclaimed, run, BOOT_FREE, FILES};
use crate::coverage::{AnswerClass, Caller, Event, Refusal, RequestKind, Transition};
use crate::model::{Model, ModelState, Prediction};

fn evict(addr: u64, pages: u64) -> Request {
    Request::Evict {
        addr,
        pages,
        privilege: U,
    }
}

fn swapped_out(addr: u64, slot: u64) -> Response {
    reclaimed(
        vec![Reclaim::Swapped { addr, slot }],
        Response::Evicted {
            swapped: 1,
            dropped: 0,
        },
    )
}

/// The host takes the frames of `runs`, in requests of at most
/// `MAX_ALLOC_FRAMES`.
fn alloc(m: &mut Model, runs: &[FrameRun]) {
    let frames = runs
        .iter()
        .flat_map(|r| (0..r.count).map(|k| r.start + k * 4096));
    let frames: Vec<u64> = frames.collect();
    for chunk in frames.chunks(protocol::MAX_ALLOC_FRAMES as usize) {
        let req = Request::AllocFrames {
            count: chunk.len() as u64,
            contiguous: false,
            privilege: K,
        };
        let got = chunk.iter().map(|&start| FrameRun { start, count: 1 });
        run(m, &[(req, Response::Frames(got.collect()))]);
    }
}

#[test]
fn destroy_frees_every_page_slot_and_table_of_the_space() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (switch(1), Response::Done),
            (map(0x1000, 2, U), Response::Done),
            (write(0x1000, 4096, 4), Response::Done),
            (
                convert(0x10_0000, 1, protocol::AreaType::UsableRam),
                Response::Done,
            ),
            (evict(0x2000, 1), swapped_out(0x2000, 7)),
            (
                Request::Query {
                    addr: 0x1000,
                    pages: 1,
                    privilege: U,
                },
                Response::Pages(vec![PageState::PresentRam {
                    writable: true,
                    executable: false,
                    frame: 0x50_0000,
                }]),
            ),
        ],
    );
    let s = m.stats();
    assert_eq!(
        (s.present_pages, s.alloc_on_write_pages, s.swap_slots_used),
        (1, 1, 1)
    );
    assert_eq!(s.page_table_frames, 3 + 2);
    run(
        &mut m,
        &[(switch(0), Response::Done), (destroy(1), Response::Done)],
    );
    let s = m.stats();
    assert_eq!(
        (s.present_pages, s.alloc_on_write_pages, s.swap_slots_used),
        (0, 0, 0)
    );
    assert_eq!(s.page_table_frames, 1, "space 2's PML4 alone");
    assert_eq!(s.free_frames, BOOT_FREE - 1);
    assert_eq!(s.pages_evicted, 1, "a destroy is no reclaim event");
    // Its frame, its slot and its number are free again, and a new
    // space's page there holds zeros.
    run(
        &mut m,
        &[
            (
                create(),
                Response::Space {
                    space: 1,
                    root: 0x50_0000,
                },
            ),
            (switch(2), Response::Done),
            (map(0x1000, 1, U), Response::Done),
            (evict(0x1000, 1), swapped_out(0x1000, 7)),
            (switch(1), Response::Done),
            (map(0x1000, 1, U), Response::Done),
        ],
    );
    assert_eq!(m.state_in(2, 0x1000), Some(ModelState::OnSwap { slot: 7 }));
    let zeros = protocol::pattern::checksum(&[0u8; 4096]);
    assert_eq!(
        m.predict(&read(0x1000, 4096)),
        Prediction::Exact(Response::Checksum { checksum: zeros })
    );
}

#[test]
fn reset_destroys_every_space_but_0_and_makes_0_current() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (switch(2), Response::Done),
            (map(0x1000, 1, U), Response::Done),
            (Request::Reset { privilege: K }, Response::Done),
        ],
    );
    assert_eq!(m.current_space(), 0);
    assert!(m.space_roots().is_empty());
    assert_eq!(m.stats().page_table_frames, 0);
    assert_eq!(m.state_in(2, 0x1000), None);
    assert_eq!(m.predict(&switch(1)), err(Error::NoSuchSpace));
    // The roots it destroyed are remembered for the checker.
    let view = m.view();
    assert_eq!(view.retired_space(ROOTS[2]), Some(2));
    run(&mut m, &[(create(), made(1))]);
    assert_eq!(m.view().retired_space(ROOTS[1]), None, "taken again");
}

#[test]
fn the_clock_and_evict_act_on_the_current_space_only() {
    let mut m = two_spaces();
    run(
        &mut m,
        &[
            (switch(1), Response::Done),
            (map(0x1000, 1, U), Response::Done),
            (switch(2), Response::Done),
        ],
    );
    // Space 1's page at 0x1000 is not the clock's to take now.
    let event = vec![Reclaim::Swapped {
        addr: 0x1000,
        slot: 0,
    }];
    let d = diverges(
        &mut m,
        map(0x9000, 1, U),
        reclaimed(event.clone(), Response::Done),
    );
    assert!(d.reason.contains("the page is Unusable"), "{d}");
    // Nor is a key of space 1 named as an address.
    let tagged = vec![Reclaim::Swapped {
        addr: 0x0001_0000_0000_1000,
        slot: 0,
    }];
    let d = diverges(&mut m, map(0x9000, 1, U), reclaimed(tagged, Response::Done));
    assert!(d.reason.contains("not canonical"), "{d}");
    // Space 2's own page at the same address is.
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (map(0x9000, 1, U), reclaimed(event, Response::Done)),
        ],
    );
    assert_eq!(m.state_in(2, 0x1000), Some(ModelState::OnSwap { slot: 0 }));
    assert_eq!(m.state_in(1, 0x1000), Some(ModelState::DATA));
    // Evict sends out the current space's page.
    run(
        &mut m,
        &[
            (switch(1), Response::Done),
            (evict(0x1000, 1), swapped_out(0x1000, 1)),
        ],
    );
    assert_eq!(m.state_in(1, 0x1000), Some(ModelState::OnSwap { slot: 1 }));
    let d = diverges(&mut m, evict(0x9000, 1), swapped_out(0x9000, 2));
    assert!(d.reason.contains("Unusable"), "{d}");
}

#[test]
fn reclaim_counts_only_clean_file_pages_the_clock_sweeps() {
    let mut m = Model::with_files(
        &protocol::Hello {
            max_spaces: 4,
            ..hello_files()
        },
        &FILES,
    )
    .expect("specs match");
    run(
        &mut m,
        &[
            (create(), made(1)),
            (create(), made(2)),
            (switch(1), Response::Done),
            (map_file(0x4000, 1, 0, 0), Response::Done),
            (read(0x4000, 4096), super::files::file_sum(0, 0, 1)),
        ],
    );
    // The host takes every free frame: 2 PML4s, 3 tables, 1 file page.
    let free = BOOT_FREE - 6;
    alloc(
        &mut m,
        &[
            FrameRun {
                start: 0x20_0000,
                count: 0x101,
            },
            FrameRun {
                start: 0x30_3000,
                count: free - 0x101,
            },
        ],
    );
    assert_eq!(m.stats().free_frames, 0);
    // In space 1 the clock may drop the clean page: a map must reclaim.
    assert!(matches!(
        m.predict(&map(0x1000, 1, U)),
        Prediction::Reclaim(_)
    ));
    // In space 2 nothing the clock sweeps can go.
    run(&mut m, &[(switch(2), Response::Done)]);
    assert_eq!(m.predict(&map(0x1000, 1, U)), err(Error::OutOfMemory));
}

#[test]
fn create_needs_a_frame_for_its_pml4() {
    let mut m = model();
    alloc(
        &mut m,
        &[FrameRun {
            start: 0x20_0000,
            count: BOOT_FREE,
        }],
    );
    assert_eq!(m.predict(&create()), err(Error::OutOfMemory));
    let d = diverges(&mut m, create(), made(1));
    assert!(d.reason.contains("different answer"), "{d}");
    run(
        &mut m,
        &[
            (create(), Response::Error(Error::OutOfMemory)),
            (
                Request::FreeFrames {
                    frame: 0x20_0000,
                    count: 1,
                    privilege: K,
                },
                Response::Done,
            ),
            (
                create(),
                Response::Space {
                    space: 1,
                    root: 0x20_0000,
                },
            ),
        ],
    );
    assert_eq!(m.stats().page_table_frames, 1);
    assert_eq!(m.stats().free_frames, 0);
}

#[test]
fn coverage_names_each_request_its_answers_and_the_space_events() {
    let mut m = two_spaces();
    let kmap = map(super::KSPACE, 1, K);
    run(
        &mut m,
        &[
            (create(), made(3)),
            (create(), Response::Error(Error::TooManySpaces)),
            (switch(1), Response::Done),
            (map(0x1000, 1, U), Response::Done),
            (kmap, Response::Done),
            (switch(2), Response::Done),
            (destroy(2), Response::Error(Error::SpaceInUse)),
            (destroy(1), Response::Done),
            (destroy(1), Response::Error(Error::NoSuchSpace)),
            (map(0x1000, 1, U), Response::Done),
            (
                map(0x9000, 1, U),
                reclaimed(
                    vec![Reclaim::Swapped {
                        addr: 0x1000,
                        slot: 0,
                    }],
                    Response::Done,
                ),
            ),
        ],
    );
    let c = m.coverage();
    let t = |request, answer| Transition {
        request,
        caller: Caller::Kernel,
        from: None,
        answer,
        reclaimed: false,
    };
    use RequestKind as R;
    for (request, answer, n) in [
        (R::CreateSpace, AnswerClass::Ok, 3),
        (
            R::CreateSpace,
            AnswerClass::Refused(Refusal::TooManySpaces),
            1,
        ),
        (R::SwitchSpace, AnswerClass::Ok, 2),
        (R::DestroySpace, AnswerClass::Ok, 1),
        (
            R::DestroySpace,
            AnswerClass::Refused(Refusal::SpaceInUse),
            1,
        ),
        (
            R::DestroySpace,
            AnswerClass::Refused(Refusal::NoSuchSpace),
            1,
        ),
    ] {
        assert_eq!(c.count(&t(request, answer)), n, "{request:?} {answer:?}");
    }
    assert_eq!(c.event_count(Event::SpaceSwitchedAway), 1);
    assert_eq!(c.event_count(Event::SpaceDestroyedHoldingPages), 1);
    assert_eq!(c.event_count(Event::KernelSlotSharedBySpaces), 1);
    assert_eq!(c.event_count(Event::ReclaimInOtherSpace), 1);
    assert_eq!(R::CreateSpace.name(), "create_space");
}
