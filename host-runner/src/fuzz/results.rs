//! A campaign's summary as one JSON document (`fuzz --json FILE`, and
//! `summary.json` of a result directory), for CI systems, scripts and
//! `host-runner merge`: the same figures as the printed summary, with
//! stable field names and a version (documented in the README). Fields
//! may be added within a version; readers ignore those they do not know.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::summary::{FoundFailure, Summary};
use super::timeline::Sample;

/// The `"format"` of the document.
pub const FORMAT: &str = "vmmfuzz-fuzz";
/// Its version: a reader refuses versions it does not know.
pub const VERSION: u32 = 1;

/// The document.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Document {
    pub format: String,
    pub version: u32,
    pub seed: String,
    pub shard: String,
    pub jobs: usize,
    pub seconds: f64,
    /// Less the time spent saving and minimizing failures: what the rates
    /// are over.
    pub fuzzing_seconds: f64,
    pub sequences: u64,
    pub ops: u64,
    pub batches: u64,
    pub pages_touched: u64,
    pub ops_per_second: f64,
    pub pages_touched_per_second: f64,
    /// Guest edges reached and instrumented (0 and 0 when not read),
    /// model transitions and events reached.
    pub reached: Reached,
    /// Per operation kind, how many answers of each class.
    pub answers: BTreeMap<String, BTreeMap<String, u64>>,
    /// Faults of the machine met and retried: never VMM failures.
    pub environment_faults: Vec<String>,
    /// `null`, or the signal that stopped the campaign early.
    pub interrupted: Option<String>,
    pub in_flight: Vec<String>,
    pub failures: Vec<FailureEntry>,
    /// The command line that replays a trace with this guest.
    pub replay: String,
    /// How each sequence got a fresh state: the median boot and reset
    /// times, then the notes of how it was chosen.
    #[serde(default)]
    pub fresh_state: Vec<String>,
    /// Where the jobs' time went (one line; one per shard when merged).
    #[serde(default)]
    pub time_split: Vec<String>,
    /// What the corpus kept (one line; one per shard when merged).
    #[serde(default)]
    pub corpus: Vec<String>,
    /// The counters over time.
    #[serde(default)]
    pub timeline: Vec<Sample>,
    /// For a merged document: the shards' `shard` fields, in merge order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    pub guest_edges: usize,
    pub guest_edges_total: usize,
    pub model_transitions: usize,
    pub model_events: usize,
    pub model_events_total: usize,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FailureEntry {
    pub kind: String,
    /// What deduplicates failures (`merge` keeps one per signature).
    pub signature: String,
    pub message: String,
    pub op: Option<usize>,
    pub trace: String,
    pub ops: usize,
    /// The minimized reproducer, or why there is none (`null`: the same
    /// signature was minimized already, or `--no-minimize`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimized: Option<Minimized>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_minimized: Option<String>,
    /// The HTML report beside the trace, when it was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// How many times the campaign (or the merged shards) found this
    /// failure: 1, or more in a merged document.
    #[serde(default = "one")]
    pub occurrences: u64,
}

fn one() -> u64 {
    1
}

impl FailureEntry {
    /// Operations of its shortest reproducer: the minimized trace's, else
    /// the saved trace's.
    pub fn reproducer_ops(&self) -> usize {
        self.minimized.as_ref().map_or(self.ops, |m| m.ops)
    }

    /// The path of its shortest reproducer.
    pub fn reproducer(&self) -> &str {
        self.minimized.as_ref().map_or(&self.trace, |m| &m.trace)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Minimized {
    pub trace: String,
    pub ops: usize,
    pub seconds: f64,
    /// Runs that reproduced the failure, of runs made (`null`: none made).
    pub reproduced: Option<[u32; 2]>,
    pub flaky: bool,
}

fn failure_entry(found: &FoundFailure) -> FailureEntry {
    let (minimized, not_minimized) = match &found.minimized {
        Some(Ok(m)) => (
            Some(Minimized {
                trace: m.path.display().to_string(),
                ops: m.result.trace.len(),
                seconds: m.elapsed.as_secs_f64(),
                reproduced: m.rate.map(|r| [r.reproduced, r.runs]),
                flaky: m.is_flaky(),
            }),
            None,
        ),
        Some(Err(e)) => (None, Some(e.clone())),
        None => (None, None),
    };
    let report = crate::report::path_beside(&found.path);
    FailureEntry {
        kind: found.failure.kind.to_string(),
        signature: found.failure.signature().to_string(),
        message: found.failure.message.clone(),
        op: found.failure.op_index,
        trace: found.path.display().to_string(),
        ops: found.ops,
        minimized,
        not_minimized,
        report: report.is_file().then(|| report.display().to_string()),
        occurrences: 1,
    }
}

/// The summary as the document.
pub fn document(s: &Summary) -> Document {
    let (edges, edges_total) = s.reached.edges_reached();
    Document {
        format: FORMAT.into(),
        version: VERSION,
        seed: format!("{:#x}", s.seed),
        shard: s.shard.to_string(),
        jobs: s.jobs,
        seconds: s.elapsed.as_secs_f64(),
        fuzzing_seconds: s.fuzzing_secs(),
        sequences: s.sequences,
        ops: s.ops,
        batches: s.batches,
        pages_touched: s.pages,
        ops_per_second: s.ops_per_sec(),
        pages_touched_per_second: s.pages_per_sec(),
        reached: Reached {
            guest_edges: edges,
            guest_edges_total: edges_total,
            model_transitions: s.reached.model.transitions_reached(),
            model_events: s.reached.model.events_reached(),
            model_events_total: oracle::coverage::Event::ALL.len(),
        },
        answers: s
            .coverage
            .table()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        environment_faults: s.environment.clone(),
        interrupted: s.interrupted.map(|sig| sig.to_string()),
        in_flight: s
            .in_flight
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        failures: s.failures.iter().map(failure_entry).collect(),
        replay: s.replay.clone(),
        fresh_state: std::iter::once(s.fresh_line())
            .chain(s.fresh.iter().cloned())
            .collect(),
        time_split: vec![s.time_line()],
        corpus: (!s.corpus.is_empty())
            .then(|| s.corpus.clone())
            .into_iter()
            .collect(),
        timeline: s.timeline.clone(),
        merged_from: Vec::new(),
    }
}

impl Document {
    /// The document as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data always serializes")
    }
}

/// The summary as the JSON document.
pub fn json(s: &Summary) -> String {
    document(s).to_json()
}

#[cfg(test)]
#[path = "results_tests.rs"]
pub(crate) mod tests;
