//! Model coverage counted from known scenarios: the transitions and events
//! each request reached, nothing for a divergent answer, batches element
//! by element, and the count surviving `Reset`.

use protocol::{AreaType, Error, Reclaim, Request, Response};

use super::files::{file_sum, map_file, read, write};
use super::requests::{map, U};
use super::{convert, diverges, hello, model_files, reclaimed, run};
use crate::coverage::{AnswerClass, Caller, Event, Refusal, RequestKind, StateKind, Transition};
use crate::model::Model;

fn t(request: RequestKind, from: Option<StateKind>, answer: AnswerClass) -> Transition {
    Transition {
        request,
        caller: Caller::User,
        from,
        answer,
        reclaimed: false,
    }
}

fn unmap(addr: u64, pages: u64) -> Request {
    Request::Unmap {
        addr,
        pages,
        privilege: U,
    }
}

#[test]
fn map_write_unmap_counts_each_transition_once() {
    let mut m = Model::new(&hello());
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (write(0x1000, 4096, 5), Response::Done),
            (
                map(0x1000, 1, U),
                Response::Error(Error::InvalidState { addr: 0x1000 }),
            ),
            (unmap(0x1000, 1), Response::Done),
        ],
    );
    let c = m.coverage();
    use RequestKind as R;
    use StateKind as S;
    let ok = AnswerClass::Ok;
    assert_eq!(c.count(&t(R::Map, Some(S::Unusable), ok)), 1);
    assert_eq!(c.count(&t(R::Write, Some(S::PresentRamWritable), ok)), 1);
    let refused = AnswerClass::Refused(Refusal::InvalidState);
    assert_eq!(c.count(&t(R::Map, Some(S::PresentRamWritable), refused)), 1);
    assert_eq!(c.count(&t(R::Unmap, Some(S::PresentRamWritable), ok)), 1);
    assert_eq!(c.transitions_reached(), 4);
    assert_eq!(c.event_count(Event::PresentPageUnmapped), 1);
    // The only page of its table went: the table must be freed.
    assert_eq!(c.event_count(Event::PageTableEmptied), 1);
    assert_eq!(c.event_count(Event::RangeCrossesTable), 0);
    assert_eq!(refused.name(), "invalid_state");
}

#[test]
fn a_range_over_mixed_states_counts_each_state_and_table_crossings() {
    let mut m = Model::new(&hello());
    let to_usable = |addr, pages| convert(addr, pages, AreaType::UsableRam);
    // 0x1ff000 is the last page of the first table, 0x200000 the first of
    // the next.
    run(
        &mut m,
        &[
            (map(0x1ff000, 1, U), Response::Done),
            (to_usable(0x1fe000, 3), Response::Done),
        ],
    );
    let c = m.coverage();
    use RequestKind as R;
    use StateKind as S;
    let ok = AnswerClass::Ok;
    assert_eq!(c.count(&t(R::ConvertToUsable, Some(S::Unusable), ok)), 1);
    assert_eq!(
        c.count(&t(R::ConvertToUsable, Some(S::PresentRamWritable), ok)),
        1
    );
    assert_eq!(c.event_count(Event::RangeCrossesTable), 1);
}

#[test]
fn evict_and_swap_in_count_their_events() {
    let mut m = model_files();
    run(
        &mut m,
        &[
            (map(0x1000, 1, U), Response::Done),
            (write(0x1000, 4096, 5), Response::Done),
            (map_file(0x4000, 2, 0, 0), Response::Done),
            (read(0x4000, 4096), file_sum(0, 0, 1)),
            (write(0x5000, 4096, 6), Response::Done),
        ],
    );
    let c = m.take_coverage();
    assert_eq!(c.event_count(Event::FileLoad), 2, "{c}");
    assert!(m.coverage().is_empty(), "taken");
    let evict = Request::Evict {
        addr: 0x1000,
        pages: 5,
        privilege: U,
    };
    let events = vec![
        Reclaim::Swapped {
            addr: 0x1000,
            slot: 0,
        },
        Reclaim::Dropped { addr: 0x4000 },
        Reclaim::Swapped {
            addr: 0x5000,
            slot: 40,
        },
    ];
    let answer = reclaimed(
        events,
        Response::Evicted {
            swapped: 2,
            dropped: 1,
        },
    );
    run(&mut m, &[(evict, answer)]);
    let c = m.coverage();
    assert_eq!(c.event_count(Event::RamPageSwapped), 1);
    assert_eq!(c.event_count(Event::DirtyFilePageSwapped), 1);
    assert_eq!(c.event_count(Event::CleanFilePageDropped), 1);
    // Evict's own reclaims are not memory pressure.
    assert_eq!(c.event_count(Event::ReclaimUnderPressure), 0);
    let evicted = Transition {
        reclaimed: true,
        ..t(
            RequestKind::Evict,
            Some(StateKind::MmapPrivate),
            AnswerClass::Ok,
        )
    };
    assert_eq!(c.count(&evicted), 1);
    let sum = protocol::pattern::checksum(&{
        let mut b = [0u8; 4096];
        protocol::pattern::fill(5, 0x1000, &mut b);
        b
    });
    run(
        &mut m,
        &[(read(0x1000, 4096), Response::Checksum { checksum: sum })],
    );
    assert_eq!(m.coverage().event_count(Event::SwapIn), 1);
}

#[test]
fn a_divergent_answer_counts_nothing_and_a_batch_counts_its_elements() {
    let mut m = Model::new(&hello());
    diverges(
        &mut m,
        map(0x1000, 1, U),
        Response::Error(Error::OutOfMemory),
    );
    assert!(m.coverage().is_empty());
    let batch = Request::Batch(vec![map(0x1000, 2, U), unmap(0x1000, 1), Request::Stats]);
    let stats = m.stats();
    let answers = Response::Batch(vec![
        Response::Done,
        Response::Done,
        Response::Stats(protocol::Stats {
            present_pages: 1,
            page_table_frames: stats.page_table_frames + 3,
            free_frames: stats.free_frames - 4,
            ..stats
        }),
    ]);
    m.apply(0, &batch, &answers).expect("judged right");
    let c = m.coverage();
    assert_eq!(c.transitions_reached(), 3, "{c}");
    let stats_t = Transition {
        caller: Caller::Any,
        ..t(RequestKind::Stats, None, AnswerClass::Ok)
    };
    assert_eq!(c.count(&stats_t), 1);
    // The table still holds the second page.
    assert_eq!(c.event_count(Event::PageTableEmptied), 0);
}

#[test]
fn coverage_survives_reset() {
    let mut m = Model::new(&hello());
    let reset = Request::Reset {
        privilege: super::requests::K,
    };
    run(
        &mut m,
        &[(map(0x1000, 1, U), Response::Done), (reset, Response::Done)],
    );
    let c = m.coverage();
    assert_eq!(c.transitions_reached(), 2);
    assert_eq!(
        c.count(&t(
            RequestKind::Map,
            Some(StateKind::Unusable),
            AnswerClass::Ok
        )),
        1
    );
}
