//! Reclaim events under memory pressure: legal ones applied before the
//! request, illegal ones reported precisely.

use protocol::{Error, FaultReason, Reclaim, Request, Response};

use super::files::{file_sum, map_file, read, write};
use super::requests::{map, map_ro, U};
use super::{convert, diverges, model_files, reclaimed, run, BOOT_FREE};
use crate::model::{Model, ModelState, Prediction};

/// 0x1000 RAM, 0x2000 read-only RAM, 0x3000..0x5000 clean file pages, and
/// every other frame taken by a big mapping at 1 GiB: no frame is free.
fn full() -> Model {
    let mut m = model_files();
    let ro = map_ro(0x2000, 1);
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (ro, Response::Done),
            (map_file(0x3000, 2, 0, 0), Response::Done),
            (read(0x3000, 8192), file_sum(0, 0, 2)),
        ],
    );
    // 7 frames used; the rest at 1 GiB: n pages + ceil(n / 512) PTs + a PD.
    let left = BOOT_FREE - 7;
    let n = left - 1 - left.div_ceil(513);
    run(&mut m, &[(map(0x4000_0000, n, U), Response::Done)]);
    assert_eq!(m.free_frames(), 0);
    m
}

#[test]
fn pressure_drops_a_clean_page_for_a_touch() {
    let mut m = full();
    // MapFile needing a table: OutOfMemory is wrong while a clean page
    // outside the range can be dropped.
    let mf = map_file(0x20_0000, 1, 1, 0);
    let d = diverges(
        &mut m.clone(),
        mf.clone(),
        Response::Error(Error::OutOfMemory),
    );
    assert!(d.reason.contains("reclaim clean file pages"), "{d}");
    // A need no reclaim could ever meet fails at once, reclaiming nothing.
    let huge = map(0x8000_0000, BOOT_FREE, U);
    run(
        &mut m.clone(),
        &[(huge, Response::Error(Error::OutOfMemory))],
    );
    let mut dropped = m.clone();
    let drop = vec![Reclaim::Dropped { addr: 0x3000 }];
    run(&mut dropped, &[(mf, reclaimed(drop, Response::Done))]);
    // A write to an allocate-on-write page after the guest dropped 0x3000.
    let aow = convert(0x5000, 1, protocol::AreaType::UsableRam);
    run(&mut m, &[(aow, Response::Done)]);
    // Without the drop, the fault is required to come with a reclaim first.
    assert!(matches!(
        m.predict(&write(0x5000, 1, 1)),
        Prediction::Reclaim(_)
    ));
    let d = diverges(
        &mut m.clone(),
        write(0x5000, 1, 1),
        Response::Fault {
            addr: 0x5000,
            write: true,
            reason: FaultReason::OutOfMemory,
        },
    );
    assert!(d.reason.contains("reclaim"), "{d}");
    let drop = vec![Reclaim::Dropped { addr: 0x3000 }];
    run(
        &mut m,
        &[(write(0x5000, 1, 1), reclaimed(drop, Response::Done))],
    );
    assert_eq!(
        m.state(0x3000),
        Some(ModelState::NotPresentMmap { file: 0, page: 0 })
    );
    assert_eq!(m.stats().pages_dropped, 1);
    // A swap of the writable RAM page for the next one is legal too.
    let aow = convert(0x6000, 1, protocol::AreaType::UsableRam);
    run(&mut m, &[(aow, Response::Done)]);
    let swap = vec![
        Reclaim::Dropped { addr: 0x4000 },
        Reclaim::Swapped {
            addr: 0x1000,
            slot: 3,
        },
    ];
    run(
        &mut m,
        &[(
            read(0x6000, 1),
            reclaimed(
                swap,
                Response::Checksum {
                    checksum: protocol::pattern::checksum(&[0]),
                },
            ),
        )],
    );
    assert_eq!(m.free_frames(), 1);
    assert_eq!(m.state(0x1000), Some(ModelState::OnSwap { slot: 3 }));
}

#[test]
fn illegal_events_are_reported_precisely() {
    let m = full();
    let stats = Request::Stats;
    let cases: [(Vec<Reclaim>, &str); 8] = [
        (
            vec![Reclaim::Swapped {
                addr: 0x2000,
                slot: 0,
            }],
            "PresentRam { writable: false, executable: false } (only present writable RAM",
        ),
        (
            vec![Reclaim::Swapped {
                addr: 0x9000,
                slot: 0,
            }],
            "the page is Unusable",
        ),
        (
            vec![Reclaim::Swapped {
                addr: 0x1001,
                slot: 0,
            }],
            "not page aligned",
        ),
        (
            vec![
                Reclaim::Swapped {
                    addr: 0x1000,
                    slot: 4,
                },
                Reclaim::Swapped {
                    addr: 0x4000_0000,
                    slot: 4,
                },
            ],
            "event 1 Swapped { addr: 0x40000000, slot: 4 }: slot 4 is in use",
        ),
        (
            vec![Reclaim::Dropped { addr: 0x1000 }],
            "only clean present file pages drop",
        ),
        (
            vec![
                Reclaim::Dropped { addr: 0x3000 },
                Reclaim::Dropped { addr: 0x3000 },
            ],
            "event 1 Dropped { addr: 0x3000 }: the page is NotPresentMmap",
        ),
        (
            vec![Reclaim::Scavenged { addr: 0x1000 }],
            "not a page of the heap",
        ),
        (
            vec![Reclaim::Swapped {
                addr: super::HEAP,
                slot: 0,
            }],
            "the page is Unusable",
        ),
    ];
    for (events, want) in cases {
        let d = diverges(
            &mut m.clone(),
            stats.clone(),
            reclaimed(events, Response::Done),
        );
        assert!(d.reason.contains(want), "{want}: {d}");
        assert_eq!(d.expected, "legal reclaim events");
    }
    // A reclaim of a page of the request's own range.
    let d = diverges(
        &mut m.clone(),
        read(0x2000, 8192),
        reclaimed(vec![Reclaim::Dropped { addr: 0x3000 }], Response::Done),
    );
    assert!(d.reason.contains("request's own range"), "{d}");
    // Nested Reclaimed.
    let inner = reclaimed(vec![], Response::Done);
    let d = diverges(&mut m.clone(), stats, reclaimed(vec![], inner));
    assert!(d.reason.contains("inside Reclaimed"), "{d}");
}

#[test]
fn a_diverging_answer_leaves_the_model_unchanged() {
    let mut m = full();
    let events = vec![Reclaim::Dropped { addr: 0x3000 }];
    // Legal events, but a wrong answer: the drop is not kept.
    diverges(
        &mut m,
        Request::Ping { nonce: 1 },
        reclaimed(events, Response::Done),
    );
    assert!(matches!(
        m.state(0x3000),
        Some(ModelState::PresentMmap { private: false, .. })
    ));
    assert_eq!(m.stats().pages_dropped, 0);
}

#[test]
fn a_slot_of_a_page_on_swap_is_in_use() {
    let mut m = full();
    // Slots 10 and 11 in one run, 20 alone, below it.
    m.force_state(0x3000, 2, ModelState::OnSwap { slot: 10 });
    m.force_state(0x2000, 1, ModelState::OnSwap { slot: 20 });
    let ping = Request::Ping { nonce: 7 };
    let swap = |slot| {
        reclaimed(
            vec![Reclaim::Swapped { addr: 0x1000, slot }],
            Response::Pong { nonce: 7 },
        )
    };
    for slot in [10, 11, 20] {
        let d = diverges(&mut m.clone(), ping.clone(), swap(slot));
        assert!(d.reason.contains(&format!("slot {slot} is in use")), "{d}");
    }
    for slot in [9, 12, 19, 21] {
        let mut ok = m.clone();
        run(&mut ok, &[(ping.clone(), swap(slot))]);
        assert_eq!(ok.state(0x1000), Some(ModelState::OnSwap { slot }));
    }
}

#[test]
fn a_diverging_answer_leaves_every_part_of_the_model_unchanged() {
    use protocol::PageState;
    let mut m = full();
    let query = |pages| Request::Query {
        addr: 0x1000,
        pages,
        privilege: U,
    };
    let ram = |writable, frame| PageState::PresentRam {
        writable,
        frame,
        executable: false,
    };
    let file = |page, frame| PageState::PresentMmap {
        file: 0,
        page,
        private: false,
        frame,
    };
    // The frames of the four pages, known: a swap or a drop forgets them.
    let frames = vec![
        ram(true, 0x40_0000),
        ram(false, 0x40_1000),
        file(0, 0x40_2000),
        file(1, 0x40_3000),
    ];
    run(&mut m, &[(query(4), Response::Pages(frames))]);
    let before = m.fingerprint();
    let swap = Reclaim::Swapped {
        addr: 0x1000,
        slot: 0,
    };
    let drop = |addr| Reclaim::Dropped { addr };
    // The second page reported on the first's new frame, after the first
    // page's frame was recorded.
    let twice = Response::Pages(vec![ram(true, 0x50_0000), ram(false, 0x50_0000)]);
    let cases = [
        // Legal events, a wrong answer.
        (
            Request::Ping { nonce: 1 },
            reclaimed(vec![swap, drop(0x3000)], Response::Done),
            "Pong",
        ),
        // Legal events, then an illegal one.
        (
            Request::Ping { nonce: 1 },
            reclaimed(
                vec![drop(0x3000), swap, drop(0x3000)],
                Response::Pong { nonce: 1 },
            ),
            "legal reclaim events",
        ),
        // Legal events, a Query answer refused at its second page.
        (
            query(2),
            reclaimed(vec![drop(0x4000)], twice.clone()),
            "Pages",
        ),
        // The same answer without events.
        (query(2), twice, "Pages"),
    ];
    for (req, answer, expected) in cases {
        let d = diverges(&mut m, req, answer);
        assert!(d.expected.contains(expected), "{d}");
        assert_eq!(m.fingerprint(), before, "after {d}");
    }
}

impl Model {
    /// Everything the model holds but its coverage, written out the same
    /// way for equal models (the frame → page map in order), for tests
    /// that a divergence leaves the model as it was.
    fn fingerprint(&self) -> String {
        let mut frame_pages: Vec<_> = self.frame_pages.iter().collect();
        frame_pages.sort();
        format!(
            "{:?}",
            (
                (
                    &self.hello,
                    &self.managed,
                    &self.spaces,
                    &self.pages,
                    &self.data,
                    &self.host
                ),
                (&self.page_frames, frame_pages, &self.vspace),
                (self.faults_resolved, &self.files, &self.heap, self.reclaims),
                (self.learned, self.ring_used, &self.dirty),
            )
        )
    }
}
