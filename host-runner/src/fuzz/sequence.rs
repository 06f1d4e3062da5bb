//! One fuzz sequence: operations generated from its seed, sent in batches
//! to a judged guest, recorded write-ahead, and checked at the end.

use std::future::Future;
use std::io;

use protocol::{Request, Response};
use trace::replay::{BatchRun, Depth};
use trace::{
    Answers, Cadence, Entry, Failure, FailureKind, GenConfig, Generator, Op, Ref, Target, Trace,
    TraceHeader, TraceWriter,
};

use super::coverage::Coverage;
use super::plan::BatchRule;
use crate::coverage::Coverage as Reached;
use crate::judge::timings::timed;
use crate::judge::{JudgedVm, Timings};

/// What a fuzz sequence learns from its target besides the answers: where
/// its time went (the judged guest's [`Timings`]) and what the guest's
/// code and the model reached (`crate::coverage`); nothing for a fake.
pub trait Timed {
    fn timings(&self) -> Timings {
        Timings::default()
    }

    /// What the guest's code and the model reached since the last call.
    fn take_coverage(&mut self) -> Reached {
        Reached::default()
    }
}

impl Timed for JudgedVm {
    fn timings(&self) -> Timings {
        JudgedVm::timings(self)
    }

    fn take_coverage(&mut self) -> Reached {
        JudgedVm::take_coverage(self)
    }
}

/// A target that may judge a batch's answers while the guest runs the
/// next batch (issue 16, pipelining: `judge::JudgedVm::run_batch_ahead`):
/// its answers come back before they are judged, and a wrong one fails
/// the next call (the next batch, or the next check, which judges what is
/// left first) with its own operation's index. By default a batch is
/// judged before it returns, as [`Target::batch`] does.
pub trait JudgeAhead: Target {
    fn batch_ahead(
        &mut self,
        first: usize,
        requests: &[Request],
    ) -> impl Future<Output = BatchRun> {
        self.batch(first, requests, false)
    }
}

impl JudgeAhead for JudgedVm {
    async fn batch_ahead(&mut self, first: usize, requests: &[Request]) -> BatchRun {
        debug_assert_eq!(first, self.index(), "operations run in order");
        self.run_batch_ahead(requests).await
    }
}

/// What one sequence is.
#[derive(Debug, Clone)]
pub struct SequenceSpec {
    pub seed: u64,
    pub gen: GenConfig,
    /// Most operations in one batch.
    pub batch: usize,
    /// The memory check cadence ([`trace::Cadence`]): after each batch that
    /// brings the operations since the last check to this many (0: only
    /// the final check).
    pub check_every: usize,
    /// Operations to send instead of generating them: a corpus mutant.
    pub mutant: Option<super::corpus::Mutant>,
    /// The campaign's end (`--duration`): a sequence still running then
    /// stops after its batch in flight and gets its final check, so a deep
    /// sequence never holds a campaign past its time. What it sent is a
    /// prefix of the sequence its seed makes, and replays as one.
    pub deadline: Option<std::time::Instant>,
}

/// A finished sequence: what was sent and how it ended.
#[derive(Debug, Clone)]
pub struct SequenceRun {
    pub header: TraceHeader,
    /// Every operation sent, in order.
    pub ops: Vec<Op>,
    /// Each operation's reference to an earlier answer its address was
    /// aimed at ([`trace::Answers::infer`]), beside `ops`.
    pub refs: Vec<Option<Ref>>,
    /// The size of each batch sent, in order.
    pub batch_sizes: Vec<u32>,
    pub failure: Option<Failure>,
    /// How the guest answered each kind of operation (the batches answered
    /// in full; in a failing sequence, the batch with the wrong answer too,
    /// since answers are judged one batch later: [`JudgeAhead`]).
    pub coverage: Coverage,
    /// Where the sequence's time went (the target's parts and generating).
    pub timings: Timings,
    /// Guest edges and model transitions reached, read at the end (and
    /// since the previous sequence's end on the same guest: its reset).
    pub reached: Reached,
}

impl SequenceRun {
    /// Batches sent.
    pub fn batches(&self) -> usize {
        self.batch_sizes.len()
    }

    /// The sequence as a trace: its operations, the batches they were sent
    /// in and the check cadence.
    pub fn trace(&self) -> Trace {
        let mut t = Trace::from_ops(self.header.clone(), self.ops.iter().cloned());
        for (e, r) in t.entries.iter_mut().zip(&self.refs) {
            e.reference = *r;
        }
        t.header.batches.clone_from(&self.batch_sizes);
        t
    }

    /// The trace to save for the failure: the operations up to and
    /// including the failing one (its batch cut there), the failure in the
    /// header. A failure of the whole batch (the guest hung, died or
    /// panicked before answering it: its index is the batch's first
    /// operation) keeps the whole batch, since any of its operations may be
    /// the one that did it.
    pub fn failing_trace(&self) -> Option<Trace> {
        let failure = self.failure.clone()?;
        let mut t = self.trace();
        let whole_batch = matches!(
            failure.kind,
            FailureKind::Hang | FailureKind::GuestDied | FailureKind::GuestPanic
        );
        let end = match failure.op_index {
            None => self.ops.len(),
            Some(i) if whole_batch => t
                .batch_ranges()
                .into_iter()
                .find(|r| r.contains(&i))
                .map_or(i + 1, |r| r.end),
            Some(i) => i + 1,
        }
        .min(self.ops.len());
        t.remove_ops(end..t.len());
        t.header.failure = Some(failure);
        Some(t)
    }
}

/// Runs sequence `spec` on `target` (already in a fresh state). Each batch
/// is appended to `log` and flushed before it is sent (write-ahead: a
/// killed runner leaves what the guest received; the log's batches are
/// comments, so it replays one operation at a time). The batch is generated
/// ahead of its answers; it ends after any operation whose answer the
/// generator learns from ([`super::plan::needs_answer`]) or when full, so
/// the trace depends only on the seed and the guest's answers, never on
/// timing or `--jobs`. Each batch's answers are judged while the guest
/// runs the next one ([`JudgeAhead`]); a check judges what is left first.
/// The memory is checked at the cadence after a batch (incremental) and
/// once at the end (full). A failure ends the sequence.
/// `Err` only for the log's I/O.
pub async fn run_sequence<T: JudgeAhead + Timed>(
    target: &mut T,
    spec: &SequenceSpec,
    mut log: Option<&mut TraceWriter>,
) -> io::Result<SequenceRun> {
    let mut gen = spec.gen.for_sequence(spec.seed);
    let mut generator = Generator::new(spec.seed, gen.clone());
    let mut fixed = spec.mutant.as_ref().map(|m| m.ops.iter());
    if let Some(m) = &spec.mutant {
        gen.ops = m.ops.len();
    }
    let rule = BatchRule {
        max: spec.batch,
        ops: gen.ops,
    };
    let mut header = generator.header();
    if let Some(m) = &spec.mutant {
        header.seed = None;
        header.weights = None;
        header.note = Some(format!("{} (sequence seed {:#x})", m.note, spec.seed));
    }
    header.check_every = u32::try_from(spec.check_every).ok().filter(|&n| n > 0);
    let mut run = SequenceRun {
        header,
        ops: Vec::with_capacity(gen.ops),
        refs: Vec::with_capacity(gen.ops),
        batch_sizes: Vec::new(),
        failure: None,
        coverage: Coverage::default(),
        timings: Timings::default(),
        reached: Reached::default(),
    };
    let before = target.timings();
    let mut cadence = Cadence::new(spec.check_every);
    let mut last: Option<Response> = None;
    // The answers that handed something out, for the references an
    // operation aimed at one is recorded with; and where this sequence
    // starts in the log (which may hold earlier sequences since boot).
    let mut answers = Answers::new();
    let base = log.as_deref().map_or(0, TraceWriter::ops);
    // A `Reset` generated after other operations of a batch: it starts the
    // next one, so that the state it ends is checked first
    // (`Cadence::before`).
    let mut carried: Option<(Op, Option<Ref>)> = None;
    while run.ops.len() < gen.ops {
        let mut batch = Vec::new();
        let mut refs: Vec<Option<Ref>> = Vec::new();
        timed(&mut run.timings.generate, || loop {
            let (op, r) = match carried.take() {
                Some(c) => c,
                None => {
                    let answer = if batch.is_empty() { last.take() } else { None };
                    // A mutant's references resolve from this run's answers
                    // (their operations are in earlier batches: each ends a
                    // batch); other operations aimed at what an answer
                    // handed out get one.
                    let (op, r) = match fixed.as_mut().map(|ops| ops.next()) {
                        Some(Some(e)) => {
                            (answers.resolve(&e.op, e.reference.as_ref()), e.reference)
                        }
                        Some(None) => (Op::Stats, None),
                        None => (generator.next_op(answer.as_ref()), None),
                    };
                    let r = r.or_else(|| answers.infer(&op));
                    if !batch.is_empty() && matches!(op, Op::Reset { .. }) {
                        carried = Some((op, r));
                        break;
                    }
                    (op, r)
                }
            };
            refs.push(r);
            batch.push(op);
            let op = batch.last().expect("just pushed");
            if rule.ends_after(op, batch.len(), run.ops.len() + batch.len()) {
                break;
            }
        });
        if batch.first().is_some_and(|op| cadence.before(op)) {
            if let Err(f) = target
                .check(run.ops.len().checked_sub(1), Depth::Incremental)
                .await
            {
                run.failure = Some(f);
                break;
            }
        }
        if let Some(w) = log.as_deref_mut() {
            for (op, r) in batch.iter().zip(&refs) {
                let mut e = Entry::from(op.clone());
                e.reference = r.map(|r| Ref {
                    op: r.op + base,
                    ..r
                });
                w.append(&e)?;
            }
            w.flush_batch()?;
        }
        let requests: Vec<Request> = batch.iter().map(Op::to_request).collect();
        let first = run.ops.len();
        run.batch_sizes.push(batch.len() as u32);
        let result = target.batch_ahead(first, &requests).await;
        if result.failure.is_none() {
            run.coverage.record(&batch, &result.answers);
        }
        for (i, (op, a)) in batch.iter().zip(&result.answers).enumerate() {
            answers.record(first + i, op, a);
        }
        run.ops.extend(batch);
        run.refs.extend(refs);
        if let Some(f) = result.failure {
            run.failure = Some(f);
            break;
        }
        last = result.answers.last().cloned();
        let end = run.ops.len();
        if spec
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            break;
        }
        if end < gen.ops && cadence.after_batch(requests.len()) {
            if let Err(f) = target.check(Some(end - 1), Depth::Incremental).await {
                run.failure = Some(f);
                break;
            }
        }
    }
    if run.failure.is_none() {
        let last = run.ops.len().checked_sub(1);
        run.failure = target.check(last, Depth::Full).await.err();
    }
    let generate = run.timings.generate;
    run.timings = target.timings().since(&before);
    run.timings.generate = generate;
    run.reached = target.take_coverage();
    if let (Some(w), Some(f)) = (log, &run.failure) {
        w.comment(&format!("failed: {f}"))?;
        w.flush_batch()?;
    }
    Ok(run)
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
