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
            executable: false,
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
                executable: false,
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
    assert_eq!(signature_of(map_then_unmap, &m.trace), target);
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
            executable: false,
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
    assert_eq!(signature_of(map_then_unmap, &m.trace), target);
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
    assert_eq!(signature_of(map_then_unmap, &m.trace), target);
}

#[test]
fn a_failure_at_boot_minimizes_to_no_operation_in_one_run() {
    let t = noisy_trace();
    let at_boot = |_: &Trace| {
        Outcome::Failed(Failure::new(
            FailureKind::Invariant,
            "invariant 3: frame 0x7000 leaked",
            None,
        ))
    };
    let target = at_boot(&t).failure().unwrap().signature();
    let mut exec = at_boot;
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |_| {});
    assert!(m.trace.is_empty(), "{} ops left", m.trace.len());
    assert_eq!(m.steps[0].what, format!("removed all {} ops", t.len()));
    assert_eq!(m.steps.len(), 1);
    assert!(m.attempts <= 2, "{} runs", m.attempts);
}

#[test]
fn a_large_count_shrinks_by_halving_not_one_by_one() {
    // Fails while a map asks for at least 300 pages: from 61,838 pages the
    // count reaches 300 in a few dozen runs, not tens of thousands.
    let t = Trace::from_ops(
        TraceHeader::default(),
        [Op::Map {
            addr: 0x4000_0000,
            pages: 61_838,
            writable: false,
            executable: false,
            contiguous: false,
            privilege: Privilege::Kernel,
        }],
    );
    let mut exec = |t: &Trace| match t.entries.first().map(|e| &e.op) {
        Some(Op::Map { pages, .. }) if *pages >= 300 => Outcome::Failed(Failure::new(
            FailureKind::GuestPanic,
            "panicked at src/paging.rs:1:1: too many",
            Some(0),
        )),
        _ => Outcome::Passed,
    };
    let target = exec(&t).failure().unwrap().signature();
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |_| {});
    assert!(
        matches!(m.trace.entries[0].op, Op::Map { pages: 300, .. }),
        "{:?}",
        m.trace.entries[0].op
    );
    // Bisection: about log2(61,838) = 16 runs for the count (halving
    // toward a first success, restarted after each, took 57 runs in all).
    assert!(m.attempts < 40, "{} runs", m.attempts);
}

#[test]
fn a_count_the_guest_refuses_as_too_large_jumps_to_the_protocol_limit() {
    // An `alloc_frames` of 2^36 frames is refused as too large, like every
    // count above `MAX_ALLOC_FRAMES`: the failure needs a refusal, so the
    // count goes to the limit + 1 in one run, then bisects below it.
    let t = Trace::from_ops(
        TraceHeader::default(),
        [
            Op::AllocFrames {
                count: 1 << 36,
                contiguous: false,
                privilege: Privilege::Kernel,
            },
            Op::Stats,
        ],
    );
    let mut exec = |t: &Trace| match t.entries.first().map(|e| &e.op) {
        Some(Op::AllocFrames { count, .. }) if *count > protocol::MAX_ALLOC_FRAMES => {
            Outcome::Failed(Failure::new(
                FailureKind::Divergence,
                "op 0 (alloc_frames): expected frames, got {\"error\":\"too_large\"}",
                Some(0),
            ))
        }
        _ => Outcome::Passed,
    };
    let target = exec(&t).failure().unwrap().signature();
    let mut steps = Vec::new();
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |s| {
        steps.push(s.what.clone())
    });
    assert!(
        matches!(m.trace.entries[0].op, Op::AllocFrames { count: 4097, .. }),
        "{:?}",
        m.trace.entries[0].op
    );
    assert_eq!(steps[1], "op 0 (alloc_frames): count → 4097", "{steps:?}");
    // The empty trace, without the stats, counts 1, 4097 and 4096; then the
    // round that finds nothing more (without the alloc, counts 1 and 4096).
    // Halving toward a first success never tried 4097.
    assert!(m.attempts <= 12, "{} runs: {steps:?}", m.attempts);
}

/// `ops` then a `convert` of one user page, on a guest of `ram_mib` MiB.
fn then_convert(mut ops: Vec<Op>, ram_mib: u32) -> Trace {
    ops.push(Op::Convert {
        addr: 0x1000,
        pages: 1,
        to: AreaType::UsableRam,
        privilege: Privilege::User,
    });
    let header = TraceHeader {
        ram_mib: Some(ram_mib),
        ..TraceHeader::default()
    };
    Trace::from_ops(header, ops)
}

/// The zero-need bug's failure: op `i`, a `convert`, refused for want of
/// memory.
fn out_of_memory(i: usize) -> Failure {
    Failure::new(
        FailureKind::Divergence,
        format!("op {i} (convert): expected \"done\", got {{\"error\":\"out_of_memory\"}}"),
        Some(i),
    )
}

/// A fake guest whose allocator holds `256 × ram_mib − 600` frames at
/// boot and hands out at most 4,096 at once, all or nothing: a `convert`
/// once every frame is taken answers `out_of_memory` (the zero-need bug).
fn drained_convert(t: &Trace) -> Outcome {
    let mut free = u64::from(t.header.ram_mib.unwrap_or(128)) * 256 - 600;
    for (i, e) in t.entries.iter().enumerate() {
        match e.op {
            Op::AllocFrames { count, .. } if count <= 4096 && count <= free => {
                free -= count;
            }
            Op::Convert { .. } if free == 0 => return Outcome::Failed(out_of_memory(i)),
            _ => {}
        }
    }
    Outcome::Passed
}

#[test]
fn a_failure_that_drains_the_allocator_moves_to_the_smallest_guest() {
    // The halving chain drains any count below 2 × 4,096 + 28,672 frames:
    // a 128 MiB guest needs 8 requests to empty, an 8 MiB guest one.
    let mut ops: Vec<Op> = Vec::new();
    let alloc = |count| Op::AllocFrames {
        count,
        contiguous: false,
        privilege: Privilege::Kernel,
    };
    ops.extend((0..7).map(|_| alloc(4096)));
    ops.extend((0..13).map(|k| alloc(4096 >> (k + 1))));
    let t = then_convert(ops, 128);
    let target = signature_of(drained_convert, &t);
    let mut exec = drained_convert;
    let mut log = Vec::new();
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |s| {
        log.push(s.what.clone())
    });
    assert_eq!(m.trace.header.ram_mib, Some(8), "{log:#?}");
    assert!(log.iter().any(|w| w.starts_with("guest RAM: ")), "{log:#?}");
    // What is left of the halving chain merges into one request.
    let kinds: Vec<_> = m.trace.ops().map(|o| o.kind().name()).collect();
    assert_eq!(kinds, ["alloc_frames", "convert"], "{log:#?}");
    assert!(log.iter().any(|w| w.ends_with("merged")), "{log:#?}");
    assert_eq!(
        drained_convert(&m.trace).failure().unwrap().signature(),
        target
    );
}

#[test]
fn a_trace_without_its_ram_size_keeps_its_guest() {
    let t = noisy_trace();
    assert_eq!(t.header.ram_mib, None);
    let target = signature_of(map_then_unmap, &t);
    let mut exec = map_then_unmap;
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |_| {});
    assert_eq!(m.trace.header.ram_mib, None);
    assert!(m.steps.iter().all(|s| !s.what.starts_with("guest RAM")));
}

/// [`drained_convert`]'s guest, whose maps also take frames (one per page
/// and one for the page table) and which answers every operation, a
/// `Stats` with its free frames: what the drain passes probe. With `dip`,
/// its bug also needs the heap to have grown while the allocator was
/// nearly empty (a `query` with fewer than 64 frames free, as the
/// zero-need bug needs).
struct DrainGuest {
    dip: bool,
}

impl DrainGuest {
    fn play(&self, t: &Trace) -> (Vec<protocol::Response>, Outcome) {
        use protocol::{Response, Stats};
        let mut free = u64::from(t.header.ram_mib.unwrap_or(128)) * 256 - 600;
        let mut dipped = false;
        let mut answers = Vec::new();
        for (i, e) in t.entries.iter().enumerate() {
            let take = match e.op {
                Op::AllocFrames { count, .. } if count <= 4096 => count,
                Op::Map { pages, .. } => pages + 1,
                Op::Query { .. } => {
                    dipped |= free < 64;
                    0
                }
                Op::Convert { .. } if free == 0 && (dipped || !self.dip) => {
                    return (answers, Outcome::Failed(out_of_memory(i)));
                }
                _ => 0,
            };
            if take <= free {
                free -= take;
            }
            answers.push(match e.op {
                Op::Stats => Response::Stats(Stats {
                    free_frames: free,
                    ..Stats::default()
                }),
                _ => Response::Done,
            });
        }
        (answers, Outcome::Passed)
    }
}

impl trace::Executor for DrainGuest {
    async fn run(&mut self, t: &Trace) -> Outcome {
        self.play(t).1
    }

    async fn answers(&mut self, t: &Trace) -> Vec<protocol::Response> {
        self.play(t).0
    }
}

/// Minimizes `ops` followed by a `convert` of one user page on a 16 MiB
/// `guest`; answers the result and the log of accepted steps.
fn minimize_drained(mut guest: DrainGuest, ops: Vec<Op>) -> (Minimized, Vec<String>) {
    let t = then_convert(ops, 16);
    let target = guest.play(&t).1.failure().unwrap().signature();
    let mut log = Vec::new();
    let m = block_on(trace::minimize(
        &t,
        &target,
        &mut guest,
        Budget::default(),
        &mut |s| log.push(s.what.clone()),
    ));
    (m, log)
}

#[test]
fn operations_that_only_take_frames_collapse_into_one_allocation() {
    // Maps at scattered addresses take a few frames each, then a halving
    // chain takes the rest: ddmin alone can remove none of them.
    let mut ops: Vec<Op> = (0..12)
        .map(|k| Op::Map {
            addr: 0x4000_0000 * (k + 1),
            pages: 1 + k % 5,
            writable: false,
            executable: false,
            contiguous: false,
            privilege: Privilege::Kernel,
        })
        .collect();
    ops.extend((0..13).map(|k| Op::AllocFrames {
        count: 4096 >> k,
        contiguous: false,
        privilege: Privilege::Kernel,
    }));
    let (m, log) = minimize_drained(DrainGuest { dip: false }, ops);
    let kinds: Vec<_> = m.trace.ops().map(|o| o.kind().name()).collect();
    assert_eq!(kinds, ["alloc_frames", "convert"], "{log:#?}");
    assert!(
        log.iter().any(|w| w.ends_with("frames they took")),
        "{log:#?}"
    );
    // 8 MiB: 1,448 frames, all taken at once.
    assert!(
        matches!(m.trace.entries[0].op, Op::AllocFrames { count: 1448, .. }),
        "{:?}",
        m.trace.entries[0].op
    );
}

/// A leak at the first `unmap` that only a memory check sees: at the
/// first check after it (each operation its own batch here, a check after
/// every `check_every` of them), else at the trace's end.
fn leak_seen_at_checks(t: &Trace) -> Outcome {
    let Some(u) = t.ops().position(|o| matches!(o, Op::Unmap { .. })) else {
        return Outcome::Passed;
    };
    let seen = match t.header.check_every {
        Some(c) => ((u / c as usize + 1) * c as usize - 1).min(t.len() - 1),
        None => t.len() - 1,
    };
    Outcome::Failed(Failure::new(
        FailureKind::Invariant,
        format!(
            "invariant 3: frame {:#x} is neither free nor mapped",
            0x1000 * seen
        ),
        Some(seen),
    ))
}

#[test]
fn a_failure_only_a_check_sees_is_cut_after_the_operation_that_caused_it() {
    let mut ops = vec![Op::Stats; 400];
    ops[20] = Op::Unmap {
        addr: 0x1000,
        pages: 1,
        privilege: Privilege::User,
    };
    let t = Trace::from_ops(TraceHeader::default(), ops);
    let target = signature_of(leak_seen_at_checks, &t);
    let mut exec = leak_seen_at_checks;
    let mut log = Vec::new();
    let m = minimize(&t, &target, &mut exec, Budget::default(), &mut |s| {
        log.push((s.attempt, s.what.clone(), s.ops))
    });
    // Run 1 is the empty trace, run 2 the trace checked every 400 / 64
    // = 6 operations (after ops 5, 11, 17, 23…), run 3 the cut, with the
    // trace's own cadence; below 64 operations the pass stops.
    assert_eq!(
        log.first(),
        Some(&(
            3,
            "cut after op 23, where a check every 6 ops shows the failure".to_owned(),
            24
        )),
        "{log:#?}"
    );
    assert_eq!(m.trace.len(), 1, "{log:#?}");
    assert_eq!(m.trace.header.check_every, None, "the trace's own cadence");
}

#[test]
fn operations_around_one_that_matters_become_the_frames_they_took() {
    let map = |k: u64| Op::Map {
        addr: 0x4000_0000 * (k + 1),
        pages: 1 + k % 3,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: Privilege::Kernel,
    };
    let alloc = |count| Op::AllocFrames {
        count,
        contiguous: false,
        privilege: Privilege::Kernel,
    };
    // 16 MiB: 3,496 frames. Ten maps take 29, the allocations 3,440,
    // leaving 27 for the query; twelve maps after it take 24, and the
    // last allocation the 3 left.
    let mut ops: Vec<Op> = (0..10).map(map).collect();
    ops.extend([alloc(2048), alloc(1024), alloc(368)]);
    ops.push(Op::Query {
        addr: 0x1000,
        pages: 512,
        privilege: Privilege::Kernel,
    });
    ops.extend((0..12).map(|k| Op::Map {
        addr: 0x80_0000_0000 * (k + 1),
        pages: 1,
        writable: false,
        executable: false,
        contiguous: false,
        privilege: Privilege::Kernel,
    }));
    ops.push(alloc(3));
    let (m, log) = minimize_drained(DrainGuest { dip: true }, ops);
    let kinds: Vec<_> = m.trace.ops().map(|o| o.kind().name()).collect();
    assert_eq!(
        kinds,
        ["alloc_frames", "query", "alloc_frames", "convert"],
        "{log:#?}"
    );
    assert!(
        log.iter().any(|w| w.ends_with("→ the frames they took")),
        "{log:#?}"
    );
}
