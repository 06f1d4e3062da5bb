//! The data thread (`checker::data_thread`), in the incremental check and
//! in the full one: the same report as a check on one thread, in the same
//! order.

use proptest::prelude::*;
use protocol::{Privilege, Request};

use super::super::{Checker, GuestMemory, Scope, Violation};
use super::incremental::op;
use super::mutations::mutate;
use crate::bench::Scenario;
use crate::model::Changes;

const U: Privilege = Privilege::User;

/// An empty scenario and two checkers of it, the second with the data
/// thread for every check.
fn pair() -> (Scenario, Checker, Checker) {
    let (one, mut two) = (Checker::new(), Checker::new());
    two.set_data_thread(Some(0));
    (Scenario::empty(16, 4), one, two)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A checker that compares the changed pages on a thread of their own
    /// reports what one that does not, through the same operations and
    /// then a mutation with a changed page's byte flipped besides
    /// (dropping the thread's violations, or giving it no pages, fails
    /// it). The order both put them in is `a_data_thread_keeps_the_order`'s.
    #[test]
    fn a_data_thread_reports_what_one_thread_reports(
        ops in prop::collection::vec(op(), 1..40),
        kind in 0u8..15,
        sel in any::<u64>(),
    ) {
        let (mut s, mut one, mut two) = pair();
        prop_assert!(s.img.mem.as_sync().is_some(), "the thread would never run");
        let changes = s.take_changes();
        for c in [&mut one, &mut two] {
            let r = c.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
            prop_assert!(r.is_clean(), "{r}");
        }
        let both = |s: &Scenario, changes: &Changes, one: &mut Checker, two: &mut Checker| {
            let view = s.model.view();
            let a = one.incremental(&s.img.mem, &s.img.hello, &view, changes);
            let b = two.incremental(&s.img.mem, &s.img.hello, &view, changes);
            (a, b)
        };
        for op in ops {
            match op {
                Some(req) => s.apply(req),
                None => {
                    let changes = s.take_changes();
                    let (a, b) = both(&s, &changes, &mut one, &mut two);
                    prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
                }
            }
        }
        let changes = s.take_changes();
        let mutated = mutate(&mut s, &changes, kind, sel);
        if !(mutate(&mut s, &changes, 0, sel.rotate_left(17)) || mutated) {
            return Ok(());
        }
        let (a, b) = both(&s, &changes, &mut one, &mut two);
        prop_assert!(!a.is_clean(), "mutation {kind} broke nothing: {a}");
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    /// A full check that compares the present pages on a thread of their
    /// own reports what one that does not, after the same operations and
    /// then after a mutation with a present page's byte flipped besides;
    /// the two keep the same record, so the incremental checks that
    /// follow (on one thread each) agree too.
    #[test]
    fn a_full_check_with_a_data_thread_reports_what_one_thread_reports(
        before in prop::collection::vec(op(), 1..40),
        after in prop::collection::vec(op(), 1..20),
        kind in 0u8..15,
        sel in any::<u64>(),
    ) {
        let (mut s, mut one, mut two) = pair();
        prop_assert!(s.img.mem.as_sync().is_some(), "the thread would never run");
        let full = |s: &mut Scenario, one: &mut Checker, two: &mut Checker| {
            let changes = s.take_changes();
            let view = s.model.view();
            let a = one.full(&s.img.mem, &s.img.hello, &view, Some(&changes));
            let b = two.full(&s.img.mem, &s.img.hello, &view, Some(&changes));
            (a, b, changes)
        };
        for req in before.into_iter().flatten() {
            s.apply(req);
        }
        let (a, b, _) = full(&mut s, &mut one, &mut two);
        prop_assert!(a.is_clean(), "{a}");
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        prop_assert!(one.has_record() && two.has_record());
        two.set_data_thread(None);
        for req in after.into_iter().flatten() {
            s.apply(req);
        }
        let changes = s.take_changes();
        let view = s.model.view();
        let a = one.incremental(&s.img.mem, &s.img.hello, &view, &changes);
        let b = two.incremental(&s.img.mem, &s.img.hello, &view, &changes);
        prop_assert!(a.is_clean(), "{a}");
        prop_assert!(matches!(a.scope, Scope::Incremental { .. }), "{a}");
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        two.set_data_thread(Some(0));
        let mutated = mutate(&mut s, &changes, kind, sel);
        if !(mutate(&mut s, &changes, 0, sel.rotate_left(17)) || mutated) {
            return Ok(());
        }
        let (a, b, _) = full(&mut s, &mut one, &mut two);
        prop_assert!(!a.is_clean(), "mutation {kind} broke nothing: {a}");
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        prop_assert_eq!(one.has_record(), two.has_record());
    }
}

/// With the data thread, a report's violations come in the order of a
/// check on one thread: the frames' (a leak), then the changed pages'
/// data, then the swap store's.
#[test]
fn a_data_thread_keeps_the_order() {
    let mut s = Scenario::empty(16, 4);
    s.apply(Request::map_writable(0x4000_0000, 4, U));
    let mut checker = Checker::new();
    checker.set_data_thread(Some(0));
    let changes = s.take_changes();
    let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
    assert!(r.is_clean(), "{r}");
    s.apply(Request::map_writable(0x4000_8000, 4, U));
    let changes = s.take_changes();
    assert!(mutate(&mut s, &changes, 2, 0), "a leak");
    assert!(mutate(&mut s, &changes, 0, 1), "a changed page's byte");
    assert!(
        mutate(&mut s, &changes, 7, 0),
        "a pending bit of the swap store"
    );
    let r = checker.incremental(&s.img.mem, &s.img.hello, &s.model.view(), &changes);
    assert!(matches!(r.scope, Scope::Incremental { .. }), "{r}");
    let ranks: Vec<u8> = r.violations.iter().map(rank).collect();
    for k in 0..3 {
        assert!(ranks.contains(&k), "no violation of rank {k}: {r}");
    }
    assert!(ranks.is_sorted(), "out of order {ranks:?}: {r}");
}

/// With the data thread, a full check's violations come in the order of a
/// check on one thread: the frames' (a leak), then the present pages'
/// data, then what follows the data: the frame-info table's (a stray
/// record) and the swap store's.
#[test]
fn a_full_check_with_a_data_thread_keeps_the_order() {
    let mut s = Scenario::empty(16, 4);
    s.apply(Request::map_writable(0x4000_0000, 4, U));
    s.apply(Request::map_writable(0x4000_8000, 4, U));
    let changes = s.take_changes();
    assert!(mutate(&mut s, &changes, 2, 0), "a leak");
    assert!(mutate(&mut s, &changes, 0, 1), "a present page's byte");
    assert!(mutate(&mut s, &changes, 6, 0), "a stray frame-info record");
    assert!(
        mutate(&mut s, &changes, 7, 0),
        "a pending bit of the swap store"
    );
    let mut checker = Checker::new();
    checker.set_data_thread(Some(0));
    let r = checker.full(&s.img.mem, &s.img.hello, &s.model.view(), Some(&changes));
    assert_eq!(r.scope, Scope::Full, "{r}");
    let ranks: Vec<u8> = r.violations.iter().filter_map(full_rank).collect();
    for k in 0..3 {
        assert!(ranks.contains(&k), "no violation of rank {k}: {r}");
    }
    let info = |v: &&Violation| {
        matches!(
            v,
            Violation::FrameInfo { .. } | Violation::FrameInfoMismatch { .. }
        )
    };
    assert!(
        r.violations.iter().any(|v| info(&v)),
        "no frame-info violation: {r}"
    );
    assert!(ranks.is_sorted(), "out of order {ranks:?}: {r}");
}

/// Where the violations the order test makes come in a full check: the
/// frames' claims, then the data, then the frame-info table and the swap
/// store.
fn full_rank(v: &Violation) -> Option<u8> {
    match v {
        Violation::Leak { .. } | Violation::FrameFree { .. } => Some(0),
        Violation::DataMismatch { .. } => Some(1),
        Violation::FrameInfo { .. }
        | Violation::FrameInfoMismatch { .. }
        | Violation::SwapStore { .. }
        | Violation::SwapData { .. } => Some(2),
        _ => None,
    }
}

/// Where a violation comes in an incremental check's report: the frames'
/// and the sharing's first (the frame-info table's among them), then the
/// data's, then the swap store's.
fn rank(v: &Violation) -> u8 {
    match v {
        Violation::DataMismatch { .. } => 1,
        Violation::SwapStore { .. } | Violation::SwapData { .. } => 2,
        _ => 0,
    }
}
