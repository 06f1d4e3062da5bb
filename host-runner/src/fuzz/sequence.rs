//! One fuzz sequence: operations generated from its seed, sent in batches
//! to a judged guest, recorded write-ahead, and checked at the end.

use std::future::Future;
use std::io;

use protocol::{Request, Response};
use trace::{Failure, GenConfig, Generator, Op, Trace, TraceHeader, TraceWriter};

use super::coverage::Coverage;
use super::plan::BatchRule;
use crate::coverage::Coverage as Reached;
use crate::judge::JudgedVm;

/// What a sequence runs on: a guest whose every answer is judged (model,
/// and the memory check every `check_every` operations), from a fresh
/// state. [`JudgedVm`] in the runner; a fake in tests. (Its futures need
/// not be `Send`: a campaign's jobs are local tasks, as a [`JudgedVm`]'s
/// memory check holds a `&Vm` across awaits.)
pub trait Target {
    /// Sends `reqs` as one batch; every answer judged in order. A failure's
    /// `op_index` counts from the sequence's first operation.
    fn steps(&mut self, reqs: Vec<Request>)
        -> impl Future<Output = Result<Vec<Response>, Failure>>;
    /// The memory check now.
    fn check(&mut self) -> impl Future<Output = Result<(), Failure>>;
    /// What the guest's code and the model reached since the last call
    /// (`crate::coverage`): none unless the target can tell.
    fn take_coverage(&mut self) -> Reached {
        Reached::default()
    }
}

impl Target for JudgedVm {
    fn steps(
        &mut self,
        reqs: Vec<Request>,
    ) -> impl Future<Output = Result<Vec<Response>, Failure>> {
        JudgedVm::steps(self, reqs)
    }

    async fn check(&mut self) -> Result<(), Failure> {
        JudgedVm::check(self).await.map(drop)
    }

    fn take_coverage(&mut self) -> Reached {
        JudgedVm::take_coverage(self)
    }
}

/// What one sequence is.
#[derive(Debug, Clone)]
pub struct SequenceSpec {
    pub seed: u64,
    pub gen: GenConfig,
    /// Most operations in one batch.
    pub batch: usize,
    /// The memory check every this many operations (the target does it;
    /// batches end at its multiples).
    pub check_every: usize,
}

/// A finished sequence: what was sent and how it ended.
#[derive(Debug, Clone)]
pub struct SequenceRun {
    pub header: TraceHeader,
    /// Every operation sent, in order.
    pub ops: Vec<Op>,
    /// Batches sent.
    pub batches: usize,
    pub failure: Option<Failure>,
    /// How the guest answered each kind of operation (the batches answered
    /// in full).
    pub coverage: Coverage,
    /// Guest edges and model transitions reached, read at the end (and
    /// since the previous sequence's end on the same guest: its reset).
    pub reached: Reached,
}

impl SequenceRun {
    /// The trace to save for the failure: the operations up to and
    /// including the failing one, the failure in the header.
    pub fn failing_trace(&self) -> Option<Trace> {
        let failure = self.failure.clone()?;
        let end = failure
            .op_index
            .map_or(self.ops.len(), |i| (i + 1).min(self.ops.len()));
        let header = TraceHeader {
            failure: Some(failure),
            ..self.header.clone()
        };
        Some(Trace::from_ops(header, self.ops[..end].iter().cloned()))
    }
}

/// Runs sequence `spec` on `target` (already in a fresh state). Each batch
/// is appended to `log` and flushed before it is sent (write-ahead: a
/// killed runner leaves what the guest received). The batch is generated
/// ahead of its answers; it ends after any operation whose answer the
/// generator learns from ([`super::plan::needs_answer`]), so the trace
/// depends only on the seed and the guest's answers, never on timing or
/// `--jobs`. A failure ends the sequence; a passing one ends with a memory
/// check. `Err` only for the log's I/O.
pub async fn run_sequence<T: Target>(
    target: &mut T,
    spec: &SequenceSpec,
    mut log: Option<&mut TraceWriter>,
) -> io::Result<SequenceRun> {
    let mut generator = Generator::new(spec.seed, spec.gen.clone());
    let rule = BatchRule {
        max: spec.batch,
        check_every: spec.check_every,
        ops: spec.gen.ops,
    };
    let mut run = SequenceRun {
        header: generator.header(),
        ops: Vec::with_capacity(spec.gen.ops),
        batches: 0,
        failure: None,
        coverage: Coverage::default(),
        reached: Reached::default(),
    };
    let mut last: Option<Response> = None;
    while run.ops.len() < spec.gen.ops {
        let mut batch = Vec::new();
        loop {
            let answer = if batch.is_empty() { last.take() } else { None };
            let op = generator.next_op(answer.as_ref());
            batch.push(op);
            let op = batch.last().expect("just pushed");
            if rule.ends_after(op, batch.len(), run.ops.len() + batch.len()) {
                break;
            }
        }
        if let Some(w) = log.as_deref_mut() {
            for op in &batch {
                w.append(&op.clone().into())?;
            }
            w.flush_batch()?;
        }
        let requests = batch.iter().map(Op::to_request).collect();
        run.batches += 1;
        let result = target.steps(requests).await;
        if let Ok(answers) = &result {
            run.coverage.record(&batch, answers);
        }
        run.ops.extend(batch);
        match result {
            Ok(answers) => last = answers.last().cloned(),
            Err(f) => {
                run.failure = Some(f);
                break;
            }
        }
    }
    if run.failure.is_none() {
        run.failure = target.check().await.err();
    }
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
