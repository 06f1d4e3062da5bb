//! Shared memory: the rows of the other requests on a shared page (Map,
//! MapFile, the converts, Evict, reclaim events, touches).

use protocol::{AreaType, Error, FaultReason, Request, Response};

use super::files::{map_file, read, write};
use super::requests::{err, map, map_ro, U};
use super::shared::{counts, share, zeros};
use super::spaces::{made, switch};
use super::{convert, diverges, run};
use crate::model::{Model, ModelState, Prediction};

#[test]
fn other_requests_on_shared_pages_follow_the_spec_rows() {
    let hello = super::with_frame_info(protocol::Hello {
        max_spaces: 4,
        ..super::hello_files()
    });
    let mut m = Model::with_files(&hello, &super::FILES).expect("specs match");
    run(
        &mut m,
        &[
            (super::spaces::create(), made(1)),
            (map(0x1000, 1, U), Response::Done),
            (map_ro(0x2000, 1), Response::Done),
            (share(0x1000, 2, 1, 0x5000), Response::Done),
        ],
    );
    let shared_rw = Some(ModelState::Shared {
        writable: true,
        group: 0,
    });
    assert_eq!(m.state(0x1000), shared_rw);
    // Map and MapFile: not unusable.
    let invalid = err(Error::InvalidState { addr: 0x1000 });
    assert_eq!(m.predict(&map(0x1000, 1, U)), invalid);
    assert_eq!(m.predict(&map_file(0x1000, 1, 0, 0)), invalid);
    // Converts to usable or pinned RAM leave it; Evict passes it.
    run(
        &mut m,
        &[
            (convert(0x1000, 2, AreaType::UsableRam), Response::Done),
            (convert(0x1000, 2, AreaType::PinnedRam), Response::Done),
        ],
    );
    assert_eq!(m.state(0x1000), shared_rw);
    assert_eq!(
        counts(&m, 0x1000, 2),
        vec![Some((true, 2)), Some((false, 2))]
    );
    let evict = Request::Evict {
        addr: 0x1000,
        pages: 2,
        privilege: U,
    };
    assert_eq!(m.predict(&evict), Prediction::Evict { swap: 0, drop: 0 });
    // A reclaim event naming a shared page is a guest bug.
    let ev = super::reclaimed(
        vec![protocol::Reclaim::Swapped {
            addr: 0x1000,
            slot: 0,
        }],
        Response::Done,
    );
    let d = diverges(&mut m, map(0x9000, 1, U), ev);
    assert!(d.reason.contains("Shared"), "{d}");
    // Touches: present RAM of its writability.
    let ro = Response::Fault {
        addr: 0x2000,
        write: true,
        reason: FaultReason::ReadOnly,
    };
    assert_eq!(m.predict(&write(0x1ff0, 32, 3)), Prediction::Exact(ro));
    run(&mut m, &[(switch(1), Response::Done)]);
    let ro = Response::Fault {
        addr: 0x6000,
        write: true,
        reason: FaultReason::ReadOnly,
    };
    assert_eq!(m.predict(&write(0x5ff0, 32, 3)), Prediction::Exact(ro));
    assert_eq!(
        m.predict(&read(0x5000, 8192)),
        Prediction::Exact(zeros(8192))
    );
}

#[test]
fn coverage_counts_share_and_what_drops_shared_mappings() {
    use crate::coverage::{
        AnswerClass, Caller, Event, Refusal, RequestKind, StateKind, Transition,
    };
    let mut m = super::spaces::two_spaces();
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (share(0x1000, 1, 1, 0x1000), Response::Done),
            (
                share(0x1000, 1, 1, 0x1000),
                Response::Error(Error::InvalidState { addr: 0x1000 }),
            ),
            (share(0x1000, 1, 2, 0x1000), Response::Done),
            (super::spaces::destroy(2), Response::Done),
            (
                Request::Unmap {
                    addr: 0x1000,
                    pages: 1,
                    privilege: U,
                },
                Response::Done,
            ),
            (super::spaces::destroy(1), Response::Done),
        ],
    );
    let c = m.coverage();
    let t = |from, answer| Transition {
        request: RequestKind::Share,
        caller: Caller::Kernel,
        from: Some(from),
        answer,
        reclaimed: false,
    };
    let ok = AnswerClass::Ok;
    assert_eq!(c.count(&t(StateKind::PresentRamWritable, ok)), 1);
    assert_eq!(c.count(&t(StateKind::SharedWritable, ok)), 1);
    let refused = AnswerClass::Refused(Refusal::InvalidState);
    assert_eq!(c.count(&t(StateKind::SharedWritable, refused)), 1);
    assert_eq!(c.event_count(Event::SharedMappingDropped), 2);
    assert_eq!(c.event_count(Event::SharedFrameFreed), 1);
    assert_eq!(RequestKind::Share.name(), "share");
}
