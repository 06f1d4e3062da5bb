//! Merging is associative and commutative, novelty is what the campaign had
//! not seen, and the JSON form reads back the same.

use proptest::prelude::*;

use super::*;

/// Transitions and events drawn from small pools, so that coverages
/// overlap.
fn observation() -> impl Strategy<Value = Observation> {
    let transition = (0..4u8, 0..=StateKind::ALL.len(), 0..3u8, any::<bool>()).prop_map(
        |(r, from, answer, reclaimed)| Transition {
            request: [
                RequestKind::Map,
                RequestKind::Unmap,
                RequestKind::ConvertToUsable,
                RequestKind::Write,
            ][r as usize],
            caller: Caller::User,
            from: StateKind::ALL.get(from).copied(),
            answer: [
                AnswerClass::Ok,
                AnswerClass::FaultUnusable,
                AnswerClass::Refused(Refusal::OutOfMemory),
            ][answer as usize],
            reclaimed,
        },
    );
    let event = (0..Event::ALL.len()).prop_map(|i| Event::ALL[i]);
    (
        prop::collection::vec(transition, 0..6),
        prop::collection::vec(event, 0..3),
    )
        .prop_map(|(transitions, events)| Observation {
            transitions,
            events,
        })
}

fn coverage() -> impl Strategy<Value = ModelCoverage> {
    prop::collection::vec(observation(), 0..5).prop_map(|obs| {
        let mut c = ModelCoverage::default();
        obs.iter().for_each(|o| c.add(o));
        c
    })
}

fn merged(a: &ModelCoverage, b: &ModelCoverage) -> ModelCoverage {
    let mut m = a.clone();
    m.merge(b);
    m
}

proptest! {
    #[test]
    fn merge_is_associative_and_commutative(a in coverage(), b in coverage(), c in coverage()) {
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&a, &ModelCoverage::default()), a.clone());
    }

    #[test]
    fn novelty_is_what_the_seen_coverage_lacks(a in coverage(), b in coverage()) {
        let all = merged(&a, &b);
        prop_assert!(!a.novelty(&all).any());
        let n = b.novelty(&a);
        prop_assert_eq!(
            n.transitions,
            all.transitions_reached() - a.transitions_reached()
        );
        prop_assert_eq!(n.events, all.events_reached() - a.events_reached());
    }

    #[test]
    fn json_reads_back_the_same(a in coverage()) {
        let text = serde_json::to_string(&a).unwrap();
        let back: ModelCoverage = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, a);
    }
}

#[test]
fn the_table_names_every_transition_and_event() {
    let mut c = ModelCoverage::default();
    c.add(&Observation {
        transitions: vec![Transition {
            request: RequestKind::ConvertToUnusable,
            caller: Caller::Kernel,
            from: Some(StateKind::OnSwap),
            answer: AnswerClass::Ok,
            reclaimed: true,
        }],
        events: vec![Event::SwappedPageConverted],
    });
    let text = c.to_string();
    assert!(text.contains("model transitions: 1 reached"), "{text}");
    assert!(
        text.contains("convert to unusable")
            && text.contains("kernel")
            && text.contains("usable RAM: on swap")
            && text.contains("ok +reclaim"),
        "{text}"
    );
    assert!(text.contains("model events: 1 of 22 reached"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("swapped page converted"))
        .unwrap();
    assert!(line.trim_end().ends_with(" 1"), "{line}");
}
