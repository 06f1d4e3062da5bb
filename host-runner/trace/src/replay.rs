//! Replay without QEMU: walking a trace through a [`Session`], checking each
//! answer against the line's `expect` and an optional model ([`Judge`]),
//! and the step table the runner prints.

use protocol::{Request, Response};

use crate::executor::Outcome;
use crate::expect::Expect;
use crate::failure::{Failure, FailureKind};
use crate::format::{write_entry, Entry, Trace};

/// A live guest, one request at a time. An error is a failure the session
/// itself saw: panic, death, hang.
pub trait Session {
    fn request(&mut self, index: usize, request: &Request) -> Result<Response, Failure>;
}

/// A model that predicts answers and checks what it can (the oracle and
/// memory checker behind one face).
pub trait Judge {
    /// Judges the guest's answer `got` to `request`: the model's own answer
    /// (shown in the table), or a divergence or invariant failure.
    fn judge(
        &mut self,
        index: usize,
        request: &Request,
        got: &Response,
    ) -> Result<Option<Response>, Failure>;
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answered as expected (or nothing was expected).
    Ok,
    /// The step failed (see the report's outcome).
    Failed,
}

/// One row of the step table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub index: usize,
    pub entry: Entry,
    /// The guest's answer (`None` when the guest gave none).
    pub answer: Option<Response>,
    /// The model's answer, when a judge gave one.
    pub predicted: Option<Response>,
    pub verdict: Verdict,
}

/// Everything a replay saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    pub steps: Vec<StepRecord>,
    /// `Failed` at the first failing step; replay stops there.
    pub outcome: Outcome,
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
}

/// Sends every operation of `trace` in order through `session` (which the
/// caller has freshly booted or reset), checks each answer against the
/// line's `expect` and then `judge`, tells `on_step` about every step, and
/// stops at the first failure.
pub fn replay(
    trace: &Trace,
    session: &mut dyn Session,
    mut judge: Option<&mut dyn Judge>,
    on_step: &mut dyn FnMut(&StepRecord),
) -> ReplayReport {
    let mut steps = Vec::with_capacity(trace.len());
    for (index, entry) in trace.entries.iter().enumerate() {
        let request = entry.op.to_request();
        let mut record = StepRecord {
            index,
            entry: entry.clone(),
            answer: None,
            predicted: None,
            verdict: Verdict::Ok,
        };
        let failure = match session.request(index, &request) {
            Err(failure) => Some(failure),
            Ok(answer) => {
                let mut failure = None;
                if let Some(x) = entry.expect.as_ref().filter(|x| !x.matches(&answer)) {
                    failure = Some(expect_failure(index, entry, x, &answer));
                }
                if let Some(j) = judge.as_deref_mut() {
                    match j.judge(index, &request, &answer) {
                        Ok(p) => record.predicted = p,
                        Err(f) => failure = failure.or(Some(f)),
                    }
                }
                record.answer = Some(answer);
                failure
            }
        };
        if let Some(mut failure) = failure {
            failure.op_index = failure.op_index.or(Some(index));
            record.verdict = Verdict::Failed;
            on_step(&record);
            steps.push(record);
            return ReplayReport {
                steps,
                outcome: Outcome::Failed(failure),
            };
        }
        on_step(&record);
        steps.push(record);
    }
    ReplayReport {
        steps,
        outcome: Outcome::Passed,
    }
}

/// Replays and answers only the outcome: the body of an
/// [`crate::Executor`] over a live session.
pub fn run_trace(
    trace: &Trace,
    session: &mut dyn Session,
    judge: Option<&mut dyn Judge>,
) -> Outcome {
    replay(trace, session, judge, &mut |_| {}).outcome
}

/// An answer in `expect` syntax; a `Reclaimed` answer is its plain answer
/// (what `expect` matches) and the number of reclaim events.
fn answer_text(r: Option<&Response>) -> String {
    match r {
        None => "-".to_string(),
        Some(Response::Reclaimed { events, response }) => {
            format!(
                "{} +{} reclaimed",
                Expect::exact(response).to_json(),
                events.len()
            )
        }
        Some(r) => Expect::exact(r).to_json(),
    }
}

/// One row: index, verdict mark, request (as its trace line, without
/// `expect`), the guest's answer, and what was expected or predicted.
pub fn format_step(s: &StepRecord) -> String {
    let mark = match s.verdict {
        Verdict::Ok => " ",
        Verdict::Failed => "✗",
    };
    let request = write_entry(&Entry::from(s.entry.op.clone()));
    let mut want = Vec::new();
    if let Some(x) = &s.entry.expect {
        want.push(format!("expect {}", x.to_json()));
    }
    if let Some(p) = &s.predicted {
        want.push(format!("model {}", answer_text(Some(p))));
    }
    let want = if want.is_empty() {
        String::new()
    } else {
        format!("  ({})", want.join(", "))
    };
    format!(
        "{:>5} {mark} {request}\n        → {}{want}",
        s.index,
        answer_text(s.answer.as_ref())
    )
}

/// The step table of a replay, with the outcome last.
pub fn format_table(report: &ReplayReport) -> String {
    let mut out = String::new();
    for s in &report.steps {
        out.push_str(&format_step(s));
        out.push('\n');
    }
    match &report.outcome {
        Outcome::Passed => out.push_str(&format!("passed: {} ops\n", report.steps.len())),
        Outcome::Failed(f) => out.push_str(&format!("FAILED: {f}\n")),
    }
    out
}
