//! The fuzz JSON document's shape.

use std::path::PathBuf;
use std::time::Duration;

use trace::{Failure, FailureKind, Minimized as Shrunk, Op, Rate, Trace, TraceHeader};

use super::*;
use crate::minimize::MinimizeReport;

/// A summary of made-up figures with `failures`.
pub(crate) fn summary(failures: Vec<FoundFailure>) -> Summary {
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
        reset_parts: None,
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
        timeline: vec![
            Sample::default(),
            Sample {
                seconds: 10.0,
                sequences: 5,
                ops: 800,
                failures: 0,
            },
        ],
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

#[test]
fn the_document_reads_back_and_old_ones_without_new_fields_too() {
    let s = summary(Vec::new());
    let doc = document(&s);
    let back: Document = serde_json::from_str(&doc.to_json()).unwrap();
    assert_eq!(back, doc);
    assert_eq!(back.timeline[1].ops, 800);
    assert_eq!(back.fresh_state, ["boot not measured, reset not measured"]);
    assert_eq!(back.time_split.len(), 1);
    assert!(back.corpus.is_empty(), "no corpus line, none written");
    // A document written before the timeline existed.
    let mut v: serde_json::Value = serde_json::from_str(&doc.to_json()).unwrap();
    v.as_object_mut().unwrap().remove("timeline");
    let old: Document = serde_json::from_value(v).unwrap();
    assert!(old.timeline.is_empty());
}

#[test]
fn the_fresh_state_line_gives_the_resets_parts_and_extra_resets() {
    let ms = Duration::from_millis;
    let mut s = summary(Vec::new());
    s.boot = Some((ms(60), 2));
    s.reset = Some((Duration::from_micros(1800), 40));
    let parts = crate::judge::ResetParts {
        guest: Duration::from_micros(1100),
        model: Duration::from_micros(40),
        check: Duration::from_micros(620),
        resets: 1,
    };
    s.reset_parts = Some(parts);
    assert_eq!(
        s.fresh_line(),
        "boot 60.0 ms (median of 2), reset 1.8 ms (median of 40), of which (each part's \
         median) the guest's Reset and Stats 1.10 ms, judging them 0.04 ms, the check of the \
         fresh state 0.62 ms"
    );
    s.reset_parts = Some(crate::judge::ResetParts { resets: 3, ..parts });
    assert!(
        s.fresh_line()
            .ends_with("; up to 3 Resets in one (a reset gave back many heap pages)"),
        "{}",
        s.fresh_line()
    );
}
