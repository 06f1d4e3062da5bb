//! A campaign's summary as one JSON document (`fuzz --json FILE`), for CI
//! systems and scripts: the same figures as the printed summary, with
//! stable field names and a version (documented in the README).

use serde::Serialize;
use std::collections::BTreeMap;

use super::summary::{FoundFailure, Summary};

/// The `"format"` of the document.
pub const FORMAT: &str = "vmmfuzz-fuzz";
/// Its version: a reader refuses versions it does not know.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    format: &'static str,
    version: u32,
    seed: String,
    shard: String,
    jobs: usize,
    seconds: f64,
    /// Less the time spent saving and minimizing failures: what the rates
    /// are over.
    fuzzing_seconds: f64,
    sequences: u64,
    ops: u64,
    batches: u64,
    pages_touched: u64,
    ops_per_second: f64,
    pages_touched_per_second: f64,
    /// Guest edges reached and instrumented (0 and 0 when not read),
    /// model transitions and events reached.
    reached: Reached,
    /// Per operation kind, how many answers of each class.
    answers: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// Faults of the machine met and retried: never VMM failures.
    environment_faults: &'a [String],
    /// `null`, or the signal that stopped the campaign early.
    interrupted: Option<String>,
    in_flight: Vec<String>,
    failures: Vec<FailureEntry>,
    /// The command line that replays a trace with this guest.
    replay: &'a str,
}

#[derive(Serialize)]
struct Reached {
    guest_edges: usize,
    guest_edges_total: usize,
    model_transitions: usize,
    model_events: usize,
    model_events_total: usize,
}

#[derive(Serialize)]
struct FailureEntry {
    kind: String,
    /// What deduplicates failures (`merge` keeps one per signature).
    signature: String,
    message: String,
    op: Option<usize>,
    trace: String,
    ops: usize,
    /// The minimized reproducer, or why there is none (`null`: the same
    /// signature was minimized already, or `--no-minimize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    minimized: Option<Minimized>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_minimized: Option<String>,
}

#[derive(Serialize)]
struct Minimized {
    trace: String,
    ops: usize,
    seconds: f64,
    /// Runs that reproduced the failure, of runs made (`null`: none made).
    reproduced: Option<[u32; 2]>,
    flaky: bool,
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
    FailureEntry {
        kind: found.failure.kind.to_string(),
        signature: found.failure.signature().to_string(),
        message: found.failure.message.clone(),
        op: found.failure.op_index,
        trace: found.path.display().to_string(),
        ops: found.ops,
        minimized,
        not_minimized,
    }
}

/// The summary as the JSON document.
pub fn json(s: &Summary) -> String {
    let (edges, edges_total) = s.reached.edges_reached();
    let doc = Document {
        format: FORMAT,
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
        answers: s.coverage.table(),
        environment_faults: &s.environment,
        interrupted: s.interrupted.map(|sig| sig.to_string()),
        in_flight: s
            .in_flight
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        failures: s.failures.iter().map(failure_entry).collect(),
        replay: &s.replay,
    };
    serde_json::to_string_pretty(&doc).expect("plain data always serializes")
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use trace::{Failure, FailureKind, Minimized as Shrunk, Op, Rate, Trace, TraceHeader};

    use super::*;
    use crate::minimize::MinimizeReport;

    fn summary(failures: Vec<FoundFailure>) -> Summary {
        Summary {
            seed: 0x2a,
            shard: "2/4".parse().unwrap(),
            jobs: 2,
            elapsed: Duration::from_secs(10),
            capturing: Duration::from_secs(4),
            sequences: 5,
            ops: 800,
            pages: 8000,
            batches: 100,
            boot: None,
            reset: None,
            fresh: Vec::new(),
            environment: vec!["QEMU killed by signal 9; retried".into()],
            failures,
            replay: "host-runner replay".into(),
            coverage: Default::default(),
            timings: Default::default(),
            reached: Default::default(),
            corpus: String::new(),
            interrupted: None,
            in_flight: Vec::new(),
        }
    }

    #[test]
    fn the_document_has_the_documented_shape() {
        let failure = Failure::new(FailureKind::Invariant, "invariant 3: leak", Some(7));
        let minimized = MinimizeReport {
            reproduced: failure.clone(),
            original_ops: 8,
            result: Shrunk {
                trace: Trace::from_ops(TraceHeader::default(), [Op::Stats, Op::Stats]),
                attempts: 9,
                steps: Vec::new(),
                timed_out: false,
            },
            path: PathBuf::from("out/x-min.jsonl"),
            elapsed: Duration::from_millis(2500),
            rate: Some(Rate {
                reproduced: 2,
                runs: 3,
            }),
        };
        let found = |minimized| FoundFailure {
            failure: failure.clone(),
            path: PathBuf::from("out/x.jsonl"),
            ops: 8,
            minimized,
        };
        let s = summary(vec![
            found(Some(Ok(minimized))),
            found(Some(Err("no budget".into()))),
        ]);
        let v: serde_json::Value = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(
            (v["format"].as_str(), v["version"].as_u64()),
            (Some(FORMAT), Some(1))
        );
        assert_eq!(
            (v["seed"].as_str(), v["shard"].as_str()),
            (Some("0x2a"), Some("2/4"))
        );
        // Rates over the fuzzing time: 10 s less 4 s of capturing over 2 jobs.
        assert_eq!(v["fuzzing_seconds"], 8.0);
        assert_eq!(v["ops_per_second"], 100.0);
        assert_eq!(
            v["environment_faults"][0],
            "QEMU killed by signal 9; retried"
        );
        let f = &v["failures"][0];
        assert_eq!(f["kind"], "invariant");
        assert_eq!(f["signature"], failure.signature().to_string());
        assert_eq!((f["op"].as_u64(), f["ops"].as_u64()), (Some(7), Some(8)));
        assert_eq!(f["minimized"]["trace"], "out/x-min.jsonl");
        assert_eq!(f["minimized"]["ops"], 2);
        assert_eq!(f["minimized"]["reproduced"], serde_json::json!([2, 3]));
        assert_eq!(f["minimized"]["flaky"], true);
        assert!(f.get("not_minimized").is_none());
        assert_eq!(v["failures"][1]["not_minimized"], "no budget");
        assert!(v["failures"][1].get("minimized").is_none());
    }
}
