//! `run_sequence` against a fake guest.

use protocol::{FrameRun, Request, Response};
use trace::replay::{BatchRun, Depth};
use trace::{Failure, FailureKind, GenConfig, Op, Target, TraceWriter};

use super::{run_sequence, SequenceSpec, Timed};
use crate::fuzz::plan::needs_answer;

/// Answers `Done` to everything but `AllocFrames` (a run at a fresh frame
/// each time); fails at operation `fail_at` or at the final check.
#[derive(Default)]
struct Fake {
    sent: Vec<Request>,
    batches: Vec<usize>,
    next_frame: u64,
    fail_at: Option<usize>,
    /// The batch holding this operation gets no answer: a hang, named at
    /// the batch's first operation as the judge names it.
    hang_at: Option<usize>,
    fail_check: bool,
    checks: Vec<(Option<usize>, Depth)>,
}

impl Timed for Fake {}

impl super::JudgeAhead for Fake {}

impl Target for Fake {
    async fn batch(&mut self, first: usize, reqs: &[Request], _: bool) -> BatchRun {
        assert_eq!(first, self.sent.len());
        self.batches.push(reqs.len());
        let mut out = BatchRun::default();
        if let Some(h) = self
            .hang_at
            .filter(|h| (first..first + reqs.len()).contains(h))
        {
            self.sent.extend_from_slice(reqs);
            let message = format!("request Batch of {} got no answer ({h})", reqs.len());
            out.failure = Some(Failure::new(FailureKind::Hang, message, Some(first)));
            return out;
        }
        for r in reqs {
            let index = self.sent.len();
            self.sent.push(r.clone());
            if self.fail_at == Some(index) {
                out.failure = Some(Failure::new(FailureKind::Divergence, "bad", Some(index)));
                return out;
            }
            out.answers.push(match r {
                Request::AllocFrames { count, .. } => {
                    self.next_frame += 1;
                    Response::Frames(vec![FrameRun {
                        start: self.next_frame * 0x10_0000,
                        count: (*count).clamp(1, 4),
                    }])
                }
                _ => Response::Done,
            });
        }
        out
    }

    async fn check(&mut self, last: Option<usize>, depth: Depth) -> Result<(), Failure> {
        self.checks.push((last, depth));
        if self.fail_check && depth == Depth::Full {
            return Err(Failure::new(FailureKind::Invariant, "leak", last));
        }
        Ok(())
    }
}

fn spec(seed: u64, ops: usize) -> SequenceSpec {
    SequenceSpec {
        seed,
        gen: GenConfig {
            ops,
            ..GenConfig::default()
        },
        batch: 16,
        check_every: 50,
        mutant: None,
        deadline: None,
    }
}

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

#[test]
fn same_seed_same_sequence_in_bounded_batches() {
    let (mut a, mut b) = (Fake::default(), Fake::default());
    let ra = block(run_sequence(&mut a, &spec(7, 300), None)).unwrap();
    let rb = block(run_sequence(&mut b, &spec(7, 300), None)).unwrap();
    assert_eq!(ra.ops, rb.ops);
    assert_eq!(ra.ops.len(), 300);
    assert!(ra.failure.is_none());
    // Incremental checks after the batches that reach 50 ops since the
    // last one, then one full check at the end.
    assert_eq!(a.checks.last(), Some(&(Some(299), Depth::Full)));
    assert_eq!(a.checks.iter().filter(|c| c.1 == Depth::Full).count(), 1);
    assert!(a.checks.len() > 300 / (50 + 16), "{:?}", a.checks);
    let t = ra.trace();
    assert_eq!(t.header.check_every, Some(50));
    assert_eq!(t.header.batches.iter().sum::<u32>(), 300);
    let sent: Vec<Op> = a
        .sent
        .iter()
        .map(|r| Op::from_request(r).unwrap())
        .collect();
    assert_eq!(sent, ra.ops);
    assert!(a.batches.iter().all(|&n| (1..=16).contains(&n)));
    assert_eq!(a.batches.len(), ra.batches());
    // Every batch but the last ends at a full batch, after an operation
    // whose answer the generator needs, or before a `Reset` (which starts
    // the next batch after a check).
    let mut end = 0;
    for &n in &a.batches[..a.batches.len() - 1] {
        end += n;
        let (op, next) = (&ra.ops[end - 1], &ra.ops[end]);
        let reset_next = matches!(next, Op::Reset { .. });
        assert!(
            n == 16 || needs_answer(op) || reset_next,
            "batch ends at {end}"
        );
    }
    let other = block(run_sequence(&mut Fake::default(), &spec(8, 300), None)).unwrap();
    assert_ne!(other.ops, ra.ops);
}

#[test]
fn answers_feed_the_generator() {
    let mut fake = Fake::default();
    let run = block(run_sequence(&mut fake, &spec(3, 600), None)).unwrap();
    let frees_of_given_frames = run
        .ops
        .iter()
        .filter(
            |op| matches!(op, Op::FreeFrames { frame, .. } if frame % 0x10_0000 == 0 && *frame > 0),
        )
        .count();
    assert!(
        frees_of_given_frames > 0,
        "no free_frames of a frame the fake handed out"
    );
}

#[test]
fn aimed_operations_are_recorded_with_references_to_the_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("running.jsonl");
    let spec = spec(3, 600);
    let mut log = TraceWriter::create(&path, &trace::TraceHeader::default(), false).unwrap();
    // An earlier sequence since boot: the log's references count it.
    for _ in 0..3 {
        log.append(&Op::Stats.into()).unwrap();
    }
    let mut fake = Fake::default();
    let run = block(run_sequence(&mut fake, &spec, Some(&mut log))).unwrap();
    drop(log);
    let t = run.trace();
    let mut referenced = 0;
    for (i, e) in t.entries.iter().enumerate() {
        let Some(r) = e.reference else { continue };
        referenced += 1;
        assert!(r.op < i);
        assert!(
            matches!(t.entries[r.op].op, Op::AllocFrames { .. }),
            "{i}: {r:?}"
        );
        // The literal is what the reference resolved to when it was sent.
        let Response::Frames(runs) = &fake_answer(&fake, r.op) else {
            panic!("frames")
        };
        let Op::FreeFrames { frame, .. } = e.op else {
            panic!("a free")
        };
        assert_eq!(
            runs[r.run as usize].start.wrapping_add_signed(r.plus),
            frame
        );
    }
    assert!(referenced > 0, "no free_frames recorded with a reference");
    // The trace reads back with them, and the log holds them moved by the
    // three operations before the sequence.
    assert_eq!(trace::parse_str(&t.to_text()).unwrap(), t);
    let logged = trace::parse_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (e, l) in t.entries.iter().zip(&logged.entries[3..]) {
        assert_eq!(e.reference.map(|r| r.op + 3), l.reference.map(|r| r.op));
    }
}

#[test]
fn a_mutant_s_references_resolve_from_this_run_s_answers() {
    let k = protocol::Privilege::Kernel;
    let alloc = Op::AllocFrames {
        count: 1,
        contiguous: false,
        privilege: k,
    };
    let mut free = trace::Entry::from(Op::FreeFrames {
        frame: 0xdead_0000,
        count: 1,
        privilege: k,
    });
    free.reference = Some(trace::Ref {
        op: 1,
        run: 0,
        plus: 0,
    });
    let mut s = spec(1, 3);
    s.mutant = Some(super::super::corpus::Mutant {
        ops: vec![alloc.clone().into(), alloc.into(), free].into(),
        note: "test".into(),
    });
    let mut fake = Fake::default();
    let run = block(run_sequence(&mut fake, &s, None)).unwrap();
    // The recorded literal (0xdead0000) named another run's frame; this
    // run's second alloc_frames got the fake's second frame.
    assert_eq!(
        fake.sent[2],
        Request::FreeFrames {
            frame: 0x20_0000,
            count: 1,
            privilege: k
        }
    );
    assert_eq!(run.trace().entries[2].reference.map(|r| r.op), Some(1));
}

/// What the fake answered to operation `i` (its answers are a function of
/// the requests: frames at increasing addresses).
fn fake_answer(fake: &Fake, i: usize) -> Response {
    let nth = fake.sent[..=i]
        .iter()
        .filter(|r| matches!(r, Request::AllocFrames { .. }))
        .count() as u64;
    let Request::AllocFrames { count, .. } = fake.sent[i] else {
        return Response::Done;
    };
    Response::Frames(vec![FrameRun {
        start: nth * 0x10_0000,
        count: count.clamp(1, 4),
    }])
}

#[test]
fn a_failure_keeps_the_prefix_and_the_log_has_everything_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("running.jsonl");
    let mut fake = Fake {
        fail_at: Some(37),
        ..Fake::default()
    };
    let spec = spec(11, 200);
    let mut log = TraceWriter::create(
        &path,
        &trace::Generator::new(11, spec.gen.clone()).header(),
        false,
    )
    .unwrap();
    let run = block(run_sequence(&mut fake, &spec, Some(&mut log))).unwrap();
    drop(log);
    let failure = run.failure.clone().expect("failed");
    assert_eq!(failure.op_index, Some(37));
    assert!(
        fake.checks
            .iter()
            .all(|c| c.1 == Depth::Incremental && c.0 < Some(37)),
        "no check after a failure"
    );
    let saved = run.failing_trace().unwrap();
    assert_eq!(saved.len(), 38);
    assert_eq!(
        saved.header.batches.iter().sum::<u32>(),
        38,
        "the batches cut there"
    );
    assert_eq!(saved.header.failure, Some(failure));
    assert_eq!(saved.header.seed, Some(11));
    // The write-ahead log holds every operation sent (the whole batch
    // with the failing one), readable as a trace.
    let text = std::fs::read_to_string(&path).unwrap();
    let logged = trace::parse_str(&text).unwrap();
    assert!(logged.len() >= 38);
    assert_eq!(logged.len(), run.ops.len());
    assert!(
        text.contains("# failed: divergence at op 37: bad"),
        "{text}"
    );
}

#[test]
fn a_batch_that_hangs_is_saved_whole() {
    // Op 45 falls inside seed 11's batch of ops 42–57.
    let mut fake = Fake {
        hang_at: Some(45),
        ..Fake::default()
    };
    let run = block(run_sequence(&mut fake, &spec(11, 200), None)).unwrap();
    let failure = run.failure.clone().expect("hung");
    let first = failure.op_index.expect("the batch's first operation");
    let sizes = &fake.batches;
    let last = sizes.len() - 1;
    let batch_end: usize = sizes.iter().sum();
    assert_eq!(first, batch_end - sizes[last], "named at its first op");
    assert!(
        sizes[last] > 1 && first < 45,
        "the hang is inside a batch: {sizes:?}"
    );
    let saved = run.failing_trace().unwrap();
    assert_eq!(saved.len(), batch_end, "every operation of the batch kept");
    assert_eq!(
        saved.header.batches.last().copied(),
        Some(sizes[last] as u32),
        "the batch is not cut"
    );
}

#[test]
fn the_campaigns_end_stops_a_deep_sequence_with_its_final_check() {
    let mut fake = Fake::default();
    let ended = SequenceSpec {
        deadline: Some(std::time::Instant::now()),
        ..spec(4, 5000)
    };
    let run = block(run_sequence(&mut fake, &ended, None)).unwrap();
    assert_eq!(run.batches(), 1, "stopped after the batch in flight");
    assert!(run.failure.is_none());
    assert_eq!(fake.checks.last().map(|c| c.1), Some(Depth::Full));
    // A prefix of the sequence the seed makes without a deadline.
    let whole = block(run_sequence(&mut Fake::default(), &spec(4, 5000), None)).unwrap();
    assert_eq!(run.ops[..], whole.ops[..run.ops.len()]);
}

#[test]
fn the_final_check_is_a_failure_with_every_op() {
    let mut fake = Fake {
        fail_check: true,
        ..Fake::default()
    };
    let run = block(run_sequence(&mut fake, &spec(5, 40), None)).unwrap();
    let t = run.failing_trace().unwrap();
    assert_eq!(t.len(), 40);
    assert_eq!(t.header.failure.unwrap().kind, FailureKind::Invariant);
}

/// A `Reset` the generator draws after other operations of a batch starts
/// the next batch, and the state before it is checked first (`Cadence::before`):
/// it would hide a leak or a missed flush.
#[test]
fn a_reset_starts_a_batch_after_a_check() {
    let mut resets = 0;
    for seed in 0..40 {
        let mut f = Fake::default();
        let r = block(run_sequence(&mut f, &spec(seed, 400), None)).unwrap();
        let starts: Vec<usize> = f
            .batches
            .iter()
            .scan(0, |at, &n| {
                let s = *at;
                *at += n;
                Some(s)
            })
            .collect();
        for (i, op) in r.ops.iter().enumerate() {
            if !matches!(op, Op::Reset { .. }) || i == 0 {
                continue;
            }
            resets += 1;
            assert!(starts.contains(&i), "seed {seed}: reset {i} inside a batch");
            assert!(
                f.checks.contains(&(Some(i - 1), Depth::Incremental)),
                "seed {seed}: no check before reset {i}: {:?}",
                f.checks
            );
        }
    }
    assert!(resets > 0, "the draws held no reset to test");
}

/// As [`Fake`], but judging one batch behind, as
/// `JudgedVm::run_batch_ahead` does: the answer to `wrong_at` is wrong, and
/// that is found by the next call (a batch, or a check, which judges what
/// is left first).
#[derive(Default)]
struct AheadFake {
    fake: Fake,
    wrong_at: Option<usize>,
    /// The operations answered and not judged yet.
    unjudged: Option<std::ops::Range<usize>>,
}

impl AheadFake {
    fn settle(&mut self) -> Option<Failure> {
        let ops = self.unjudged.take()?;
        let at = self.wrong_at.filter(|w| ops.contains(w))?;
        Some(Failure::new(FailureKind::Divergence, "wrong", Some(at)))
    }
}

impl Timed for AheadFake {}

impl Target for AheadFake {
    async fn batch(&mut self, first: usize, reqs: &[Request], predict: bool) -> BatchRun {
        if let Some(f) = self.settle() {
            return BatchRun {
                failure: Some(f),
                ..BatchRun::default()
            };
        }
        self.fake.batch(first, reqs, predict).await
    }

    async fn check(&mut self, last: Option<usize>, depth: Depth) -> Result<(), Failure> {
        if let Some(f) = self.settle() {
            return Err(f);
        }
        self.fake.check(last, depth).await
    }
}

impl super::JudgeAhead for AheadFake {
    async fn batch_ahead(&mut self, first: usize, reqs: &[Request]) -> BatchRun {
        let earlier = self.settle();
        // The guest runs this batch while the one before is judged.
        let run = self.fake.batch(first, reqs, false).await;
        if let Some(f) = earlier {
            return BatchRun {
                failure: Some(f),
                ..BatchRun::default()
            };
        }
        if run.failure.is_none() {
            self.unjudged = Some(first..first + reqs.len());
        }
        run
    }
}

/// A wrong answer found while the guest ran the next batch fails at its
/// own operation, and the saved trace ends there: the batch sent after it
/// is not part of the reproducer.
#[test]
fn a_wrong_answer_judged_a_batch_later_fails_at_its_own_operation() {
    let mut ahead = AheadFake {
        wrong_at: Some(37),
        ..AheadFake::default()
    };
    let run = block(run_sequence(&mut ahead, &spec(5, 300), None)).unwrap();
    let failure = run.failure.clone().expect("the wrong answer is found");
    assert_eq!(failure.kind, FailureKind::Divergence);
    assert_eq!(failure.op_index, Some(37));
    assert!(
        ahead.fake.sent.len() > 38,
        "the next batch ran before the answer was judged: {} sent",
        ahead.fake.sent.len()
    );
    let saved = run.failing_trace().unwrap();
    assert_eq!(saved.len(), 38);
    let sent: Vec<Op> = ahead.fake.sent[..38]
        .iter()
        .map(|r| Op::from_request(r).unwrap())
        .collect();
    assert_eq!(saved.ops().cloned().collect::<Vec<_>>(), sent);
}

/// The answers of a sequence's last batch, and of the batch before a
/// check, are judged before the check reads memory: a wrong one there is
/// the failure, not lost and not a check's.
#[test]
fn the_last_batch_before_a_check_is_judged_first() {
    for wrong in [299, 49] {
        let mut ahead = AheadFake {
            wrong_at: Some(wrong),
            ..AheadFake::default()
        };
        let run = block(run_sequence(&mut ahead, &spec(5, 300), None)).unwrap();
        let failure = run.failure.expect("the wrong answer is found");
        assert_eq!(
            (failure.kind, failure.op_index),
            (FailureKind::Divergence, Some(wrong))
        );
        assert!(
            ahead.fake.checks.iter().all(|c| c.0 < Some(wrong)),
            "no check ran past the wrong answer: {:?}",
            ahead.fake.checks
        );
    }
    // Without a wrong answer, the same sequence as judged at once.
    let mut ahead = AheadFake::default();
    let a = block(run_sequence(&mut ahead, &spec(5, 300), None)).unwrap();
    let b = block(run_sequence(&mut Fake::default(), &spec(5, 300), None)).unwrap();
    assert!(a.failure.is_none());
    assert_eq!(a.ops, b.ops);
    assert_eq!(ahead.fake.checks.last(), Some(&(Some(299), Depth::Full)));
}
