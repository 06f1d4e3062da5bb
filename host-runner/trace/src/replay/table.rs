//! The step table a run records and the runner prints: a row per
//! operation (its request, the guest's answer, what was expected or
//! predicted) and the outcome last.

use protocol::Response;

use crate::executor::Outcome;
use crate::expect::Expect;
use crate::format::{write_entry, Entry};

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

/// An answer in `expect` syntax; a `Reclaimed` answer is its plain answer
/// (what `expect` matches) and the number of reclaim events.
pub fn answer_text(r: Option<&Response>) -> String {
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
/// `expect`; a reference's address as it resolved), the guest's answer,
/// and what was expected or predicted.
pub fn format_step(s: &StepRecord) -> String {
    let mark = match s.verdict {
        Verdict::Ok => " ",
        Verdict::Failed => "✗",
    };
    let request = write_entry(&Entry {
        expect: None,
        ..s.entry.clone()
    });
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
