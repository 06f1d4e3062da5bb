//! Running a trace without knowing what runs it: its batches sent through
//! a [`Target`] (the runner's judged guest, or a fake), each answer
//! checked against the line's `expect`, the memory checked at the trace's
//! cadence and at its end, and the step table the runner prints.
//!
//! This is the one way a trace is run: `replay`, `check`, the minimizer's
//! attempts and the CI job's corpus all go through [`run`], with the
//! batches and the check cadence the trace records (a fuzzed trace keeps
//! the ones it ran with), so a failure shows where it showed before.
//!
//! Here: the [`Target`] a run drives and the run itself; when it checks
//! memory in `cadence`, the step table in `table`.

use std::future::Future;

use protocol::{Request, Response};

use crate::executor::Outcome;
use crate::expect::Expect;
use crate::failure::{Failure, FailureKind};
use crate::format::{Entry, Trace};
use crate::op::Op;
use crate::refs::Answers;

mod cadence;
mod table;

pub use cadence::Cadence;
pub use table::{
    answer_text, format_step, format_step_in, format_table, CurrentSpace, ReplayReport, StepRecord,
    Verdict,
};

/// What a batch did: an answer for each request up to the first failure
/// (all of them when none), the model's predictions when they were asked
/// for, and the failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchRun {
    pub answers: Vec<Response>,
    /// One per answer (`None`: the model predicts no exact answer, or
    /// predictions were not asked for).
    pub predicted: Vec<Option<Response>>,
    /// Its `op_index` is the index (in the whole trace) of the operation
    /// that failed, or after which the failing check ran.
    pub failure: Option<Failure>,
}

/// How deep a memory check goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// What the operations since the last check could have changed.
    Incremental,
    /// Everything, QEMU's view included.
    Full,
}

/// A guest in a fresh state that runs requests and judges them: a batch
/// at a time, every answer judged in order by the model, and memory
/// checks on demand.
pub trait Target {
    /// Sends `requests` (operations `first..`) as one batch and judges
    /// every answer; `predict`: also answer the model's predictions.
    fn batch(
        &mut self,
        first: usize,
        requests: &[Request],
        predict: bool,
    ) -> impl Future<Output = BatchRun>;

    /// The memory check after operation `last` (`None`: before any).
    fn check(
        &mut self,
        last: Option<usize>,
        depth: Depth,
    ) -> impl Future<Output = Result<(), Failure>>;
}

/// How to run a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// The check cadence: `None` takes the trace's (`check_every` in its
    /// header); `Some(0)` checks only at the end.
    pub check_every: Option<usize>,
    /// A full check after the last operation.
    pub final_check: bool,
    /// Ask the model's predictions (for the step table).
    pub predict: bool,
}

impl Default for RunOptions {
    /// The trace's cadence, a final check, no predictions.
    fn default() -> Self {
        RunOptions {
            check_every: None,
            final_check: true,
            predict: false,
        }
    }
}

/// The divergence failure of an answer that does not meet `expect`. The
/// message holds the op's name and both answers, so its class tells
/// divergences apart.
pub fn expect_failure(index: usize, entry: &Entry, expect: &Expect, got: &Response) -> Failure {
    Failure::new(
        FailureKind::Divergence,
        format!(
            "op {index} ({}): expected {}, got {}",
            entry.op.kind().name(),
            expect.to_json(),
            answer_text(Some(got))
        ),
        Some(index),
    )
    .with_class(crate::failure_class::FailureClass::Answer {
        op: entry.op.kind().name().to_string(),
        expected: crate::failure_class::expect_class(expect),
        actual: crate::failure_class::answer_class(got),
    })
}

/// Runs every operation of `trace` on `target` (which the caller has
/// freshly booted or reset), batch by batch as the trace records them,
/// checks each answer against the line's `expect`, checks memory at the
/// cadence and at the end, tells `on_step` about every step, and stops at
/// the first failure.
pub async fn run(
    trace: &Trace,
    target: &mut impl Target,
    opts: RunOptions,
    on_step: &mut dyn FnMut(&StepRecord),
) -> ReplayReport {
    let every = opts
        .check_every
        .or(trace.header.check_every.map(|n| n as usize))
        .unwrap_or(0);
    let mut cadence = Cadence::new(every);
    let mut steps = Vec::with_capacity(trace.len());
    let fail = |steps: Vec<StepRecord>, failure: Failure| ReplayReport {
        steps,
        outcome: Outcome::Failed(failure),
    };
    let mut answers = Answers::new();
    for range in trace.batch_ranges() {
        for part in split_at_refs(&trace.entries, range.clone()) {
            if cadence.before(&trace.entries[part.start].op) {
                if let Err(f) = target
                    .check(part.start.checked_sub(1), Depth::Incremental)
                    .await
                {
                    return fail(steps, f);
                }
            }
            // References resolve from the answers before this batch.
            let entries: Vec<Entry> = trace.entries[part.clone()]
                .iter()
                .map(|e| Entry {
                    op: answers.resolve(&e.op, e.reference.as_ref()),
                    ..e.clone()
                })
                .collect();
            let requests: Vec<Request> = entries.iter().map(|e| e.op.to_request()).collect();
            let run = target.batch(part.start, &requests, opts.predict).await;
            for (i, a) in run.answers.iter().enumerate() {
                if let Some(e) = entries.get(i) {
                    answers.record(part.start + i, &e.op, a);
                }
            }
            if let Err(f) = judge_batch(&part, &entries, run, &mut steps, on_step) {
                return fail(steps, f);
            }
            cadence.ran(part.len());
        }
        if range.end < trace.len() && cadence.due() {
            if let Err(f) = target.check(Some(range.end - 1), Depth::Incremental).await {
                return fail(steps, f);
            }
        }
    }
    if opts.final_check && !trace.is_empty() {
        if let Err(f) = target.check(trace.len().checked_sub(1), Depth::Full).await {
            return fail(steps, f);
        }
    }
    ReplayReport {
        steps,
        outcome: Outcome::Passed,
    }
}

/// Judges one batch's answers against the lines' `expect`, records its
/// steps, and answers its failure (the failing step is the last recorded).
fn judge_batch(
    range: &std::ops::Range<usize>,
    entries: &[Entry],
    run: BatchRun,
    steps: &mut Vec<StepRecord>,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<(), Failure> {
    let mut failure = run.failure;
    let failing = failure.as_ref().and_then(|f| f.op_index);
    if failure.is_none() && run.answers.len() < entries.len() {
        failure = Some(Failure::new(
            FailureKind::Divergence,
            format!(
                "the batch of operations {}..{} got {} answers",
                range.start,
                range.end,
                run.answers.len()
            ),
            Some(range.start + run.answers.len()),
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        let index = range.start + i;
        let answer = run.answers.get(i).cloned();
        let mut verdict = Verdict::Ok;
        if let Some(a) = &answer {
            if let Some(x) = entry.expect.as_ref().filter(|x| !x.matches(a)) {
                // The expectation names the first difference; a model
                // failure at a later operation comes after it.
                if failing.is_none_or(|f| f >= index) {
                    failure = Some(expect_failure(index, entry, x, a));
                }
            }
        }
        let done = failure
            .as_ref()
            .is_some_and(|f| f.op_index.is_none_or(|f| f <= index));
        if done {
            verdict = Verdict::Failed;
        }
        if answer.is_none() && !done {
            break;
        }
        let record = StepRecord {
            index,
            entry: entry.clone(),
            answer,
            predicted: run.predicted.get(i).cloned().flatten(),
            verdict,
        };
        on_step(&record);
        steps.push(record);
        if done {
            let mut f = failure.take().expect("a failure");
            f.op_index = f.op_index.or(Some(index));
            return Err(f);
        }
    }
    match failure {
        Some(mut f) => {
            f.op_index = f.op_index.or(Some(range.end - 1));
            Err(f)
        }
        None => Ok(()),
    }
}

/// `range` cut before every operation that refers to an answer of the same
/// batch, which must be known before that operation is sent.
fn split_at_refs(entries: &[Entry], range: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let mut parts = Vec::new();
    let mut start = range.start;
    for i in range.clone() {
        let reset = matches!(entries[i].op, Op::Reset { .. });
        if i > start && (reset || entries[i].reference.is_some_and(|r| r.op >= start)) {
            parts.push(start..i);
            start = i;
        }
    }
    parts.push(start..range.end);
    parts
}

/// Runs a trace and answers only its outcome.
pub async fn run_outcome(trace: &Trace, target: &mut impl Target, opts: RunOptions) -> Outcome {
    run(trace, target, opts, &mut |_| {}).await.outcome
}
