//! The minimizer against fake executors: no QEMU.

use std::cell::Cell;
use std::time::Duration;

use futures::executor::block_on;
use protocol::{AreaType, Privilege};
use trace::minimize::Step;
use trace::{
    generate, Budget, Failure, FailureKind, FnExecutor, GenConfig, Minimized, Op, Outcome,
    Signature, Trace, TraceHeader,
};

/// The minimizer over a plain function of the trace.
fn minimize(
    t: &Trace,
    target: &Signature,
    exec: &mut impl FnMut(&Trace) -> Outcome,
    budget: Budget,
    log: &mut dyn FnMut(&Step),
) -> Minimized {
    block_on(trace::minimize(
        t,
        target,
        &mut FnExecutor(exec),
        budget,
        log,
    ))
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    let end = |(addr, pages): (u64, u64)| addr.saturating_add(pages.saturating_mul(4096));
    a.0 < end(b) && b.0 < end(a)
}

/// Fails iff a map is followed by an unmap of an overlapping range: a
/// divergence whose message carries numbers that change while shrinking.
fn map_then_unmap(t: &Trace) -> Outcome {
    let mut maps = Vec::new();
    for (i, e) in t.entries.iter().enumerate() {
        match e.op {
            Op::Map { addr, pages, .. } => maps.push((addr, pages)),
            Op::Unmap { addr, pages, .. } if maps.iter().any(|&m| overlaps(m, (addr, pages))) => {
                return Outcome::Failed(Failure::new(
                    FailureKind::Divergence,
                    format!("op {i} (unmap): expected done, got {{\"error\":\"invalid_state\",\"addr\":\"{addr:#x}\"}}"),
                    Some(i),
                ));
            }
            _ => {}
        }
    }
    Outcome::Passed
}

/// Fails iff some op has a page count of at least 3 (a guest panic).
fn big_pages(t: &Trace) -> Outcome {
    for (i, e) in t.entries.iter().enumerate() {
        if let Op::Map { pages, .. } | Op::Unmap { pages, .. } | Op::Convert { pages, .. } = e.op {
            if pages >= 3 {
                return Outcome::Failed(Failure::new(
                    FailureKind::GuestPanic,
                    format!(
                        "panicked at src/paging.rs:{}:9: table index {pages} out of range",
                        100 + i
                    ),
                    Some(i),
                ));
            }
        }
    }
    Outcome::Passed
}

fn noisy_trace() -> Trace {
    let mut ops = generate(
        7,
        &GenConfig {
            ops: 60,
            ..GenConfig::default()
        },
    )
    .entries;
    // Keep the noise from failing on its own.
    ops.retain(|e| {
        big_pages(&Trace::from_ops(TraceHeader::default(), [e.op.clone()])) == Outcome::Passed
    });
    ops.retain(|e| !matches!(e.op, Op::Map { .. } | Op::Unmap { .. }));
    let mut t = Trace {
        header: TraceHeader {
            seed: Some(7),
            ..Default::default()
        },
        entries: ops,
    };
    let at = t.len() / 3;
    t.entries.insert(
        at,
        Op::Map {
            addr: 0x4020_0000,
            pages: 2,
            writable: true,
            contiguous: true,
            privilege: Privilege::User,
        }
        .into(),
    );
    t.entries.push(
        Op::Unmap {
            addr: 0x4020_1000,
            pages: 2,
            privilege: Privilege::User,
        }
        .into(),
    );
    t
}

fn signature_of(exec: fn(&Trace) -> Outcome, t: &Trace) -> trace::Signature {
    exec(t).failure().expect("the input fails").signature()
}

#[test]
fn shrinks_map_then_unmap_to_two_simple_ops() {
    let t = noisy_trace();
    assert!(t.len() > 20);
    let target = signature_of(map_then_unmap, &t);
    let mut logged: Vec<Step> = Vec::new();
    let mut exec = map_then_unmap;
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |s| {
        logged.push(s.clone())
    });
    assert!(!m.timed_out);
    assert_eq!(logged, m.steps);
    let ops: Vec<Op> = m.trace.entries.iter().map(|e| e.op.clone()).collect();
    assert_eq!(
        ops,
        vec![
            Op::Map {
                addr: 0,
                pages: 1,
                writable: false,
                contiguous: false,
                privilege: Privilege::Kernel
            },
            Op::Unmap {
                addr: 0,
                pages: 1,
                privilege: Privilege::Kernel
            },
        ],
        "steps: {:#?}",
        m.steps
    );
    assert_eq!(
        map_then_unmap(&m.trace).failure().unwrap().signature(),
        target
    );
    assert_eq!(m.trace.header, t.header);
}

#[test]
fn shrinks_pages_to_the_smallest_failing_count() {
    let mut t = noisy_trace();
    t.entries.insert(
        5,
        Op::Convert {
            addr: 0x1234_5000,
            pages: 8448,
            to: AreaType::UsableRam,
            privilege: Privilege::User,
        }
        .into(),
    );
    let target = signature_of(big_pages, &t);
    let mut exec = big_pages;
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |_| {});
    let ops: Vec<Op> = m.trace.entries.iter().map(|e| e.op.clone()).collect();
    assert_eq!(
        ops,
        vec![Op::Convert {
            addr: 0,
            pages: 3,
            to: AreaType::UsableRam,
            privilege: Privilege::Kernel
        }]
    );
}

#[test]
fn a_different_failure_is_not_the_same_bug() {
    // The trace fails both ways: a big map panics first (op order), and an
    // overlapping unmap diverges. Minimizing the divergence must never
    // accept a candidate that panics instead, and vice versa.
    let mut t = noisy_trace();
    t.entries.insert(
        0,
        Op::Map {
            addr: 0x9000_0000,
            pages: 5,
            writable: true,
            contiguous: false,
            privilege: Privilege::Kernel,
        }
        .into(),
    );
    let both = |t: &Trace| match big_pages(t) {
        Outcome::Passed => map_then_unmap(t),
        panic => panic,
    };
    let target = both(&t).failure().unwrap().signature();
    assert_eq!(target.kind, FailureKind::GuestPanic);
    let mut exec = both;
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |_| {});
    assert!(m
        .steps
        .iter()
        .all(|s| s.failure.kind == FailureKind::GuestPanic));
    assert_eq!(m.trace.len(), 1);

    // Now aim at the divergence, with the panic in the way: accepted only
    // candidates that diverge, which requires dropping the big map.
    let divergence = Failure::new(
        FailureKind::Divergence,
        "op 9 (unmap): expected done, got {\"error\":\"invalid_state\",\"addr\":\"0x1\"}",
        None,
    )
    .signature();
    let m = minimize(&t, &divergence, &mut exec, Budget::default(), &mut |_| {});
    assert!(m.steps.iter().all(|s| s.failure.signature() == divergence));
    assert_eq!(both(&m.trace).failure().unwrap().signature(), divergence);
    assert_eq!(m.trace.len(), 2);

    // A target nothing reproduces: nothing accepted, the input answered.
    let other = Failure::new(FailureKind::Hang, "op 3 timed out after 5 s", None).signature();
    let m = minimize(&t, &other, &mut exec, Budget::default(), &mut |_| {});
    assert!(m.steps.is_empty());
    assert_eq!(m.trace, t);
}

#[test]
fn budget_of_attempts_returns_best_so_far() {
    let t = noisy_trace();
    let target = signature_of(map_then_unmap, &t);
    let runs = Cell::new(0);
    let mut exec = |t: &Trace| {
        runs.set(runs.get() + 1);
        map_then_unmap(t)
    };
    let m = minimize(
        &t,
        &target,
        &mut exec,
        Budget::default().with_max_attempts(5),
        &mut |_| {},
    );
    assert!(m.timed_out);
    assert_eq!((m.attempts, runs.get()), (5, 5));
    assert!(m.trace.len() < t.len(), "some progress in 5 runs");
    assert_eq!(
        map_then_unmap(&m.trace).failure().unwrap().signature(),
        target
    );
}

#[test]
fn budget_of_time_returns_best_so_far() {
    let t = noisy_trace();
    let target = signature_of(map_then_unmap, &t);
    let mut exec = |t: &Trace| {
        std::thread::sleep(Duration::from_millis(20));
        map_then_unmap(t)
    };
    let m = minimize(
        &t,
        &target,
        &mut exec,
        Budget::for_duration(Duration::from_millis(150)),
        &mut |_| {},
    );
    assert!(m.timed_out);
    // Each attempt takes 20 ms at least: the budget ends the search after
    // at most 150 / 20 + 1 of them, however slow the machine.
    assert!(m.attempts <= 9, "{}", m.attempts);
    assert_eq!(
        map_then_unmap(&m.trace).failure().unwrap().signature(),
        target
    );
}
