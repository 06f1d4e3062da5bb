//! A replay as one JSON document (`replay --json FILE`): the outcome, the
//! verdict against the failure the trace was saved for, and every step.

use serde::Serialize;
use trace::replay::{answer_text, Verdict};
use trace::{Failure, Reproduction};

use super::ReplayRun;

/// The `"format"` of the document.
pub const FORMAT: &str = "vmmfuzz-replay";
/// Its version: a reader refuses versions it does not know.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u32,
    trace: &'a str,
    /// `passed`, or the failure's kind.
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<FailureJson>,
    /// For a trace saved for a failure: `reproduced`, `reproduced_earlier`,
    /// `different`, `passed` or `environment`; `null` otherwise.
    reproduction: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    saved_failure: Option<FailureJson>,
    steps: Vec<Step>,
}

#[derive(Serialize)]
struct FailureJson {
    kind: String,
    signature: String,
    message: String,
    op: Option<usize>,
}

impl From<&Failure> for FailureJson {
    fn from(f: &Failure) -> Self {
        FailureJson {
            kind: f.kind.to_string(),
            signature: f.signature().to_string(),
            message: f.message.clone(),
            op: f.op_index,
        }
    }
}

#[derive(Serialize)]
struct Step {
    index: usize,
    /// The operation as its trace line (a reference's address as it
    /// resolved in this run), without `expect`.
    request: serde_json::Value,
    /// The guest's answer in `expect` syntax (`null`: none).
    answer: Option<String>,
    /// The model's answer when it predicts an exact one.
    model: Option<String>,
    ok: bool,
}

/// The replay as the JSON document.
pub fn json(trace_path: &std::path::Path, run: &ReplayRun) -> String {
    let outcome = run.report.outcome.failure();
    let (reproduction, saved) = match &run.reproduction {
        None => (None, None),
        Some(r) => {
            let (name, saved) = match r {
                Reproduction::Reproduced { saved, .. } => ("reproduced", saved),
                Reproduction::ReproducedEarlier { saved, .. } => ("reproduced_earlier", saved),
                Reproduction::Different { saved, .. } => ("different", saved),
                Reproduction::Passed { saved } => ("passed", saved),
                Reproduction::Environment { saved, .. } => ("environment", saved),
            };
            (Some(name), Some(FailureJson::from(saved)))
        }
    };
    let doc = Document {
        format: FORMAT,
        version: VERSION,
        trace: &trace_path.to_string_lossy(),
        outcome: outcome.map_or("passed".into(), |f| f.kind.to_string()),
        failure: outcome.map(FailureJson::from),
        reproduction,
        saved_failure: saved,
        steps: run
            .report
            .steps
            .iter()
            .map(|s| Step {
                index: s.index,
                request: serde_json::to_value(trace::Entry {
                    expect: None,
                    ..s.entry.clone()
                })
                .expect("an operation line always serializes"),
                answer: s.answer.as_ref().map(|a| answer_text(Some(a))),
                model: s.predicted.as_ref().map(|p| answer_text(Some(p))),
                ok: s.verdict == Verdict::Ok,
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).expect("plain data always serializes")
}
