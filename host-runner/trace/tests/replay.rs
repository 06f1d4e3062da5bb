//! Replay through a fake session, the step table, recording and atomic
//! saving: no QEMU.

use futures::executor::block_on;
use protocol::{Error, Request, Response};
use trace::recorder::{failure_path, minimized_path, short_hash};
use trace::replay::{format_table, BatchRun, Depth, Verdict};
use trace::{
    parse, parse_str, run, run_outcome, save_atomically, Expect, Failure, FailureKind, Outcome,
    RunOptions, Target, Trace, TraceWriter,
};

/// A model's verdict on an answer: its own answer, or why the guest's is
/// wrong.
type JudgeFn = fn(usize, &Response) -> Result<Response, String>;

/// A toy guest: every map of an address mapped before answers
/// `InvalidState`, reads answer a checksum, a `panic` kills it. `judge`
/// plays the model: it sees every answer and may call it a divergence.
#[derive(Default)]
struct FakeGuest {
    mapped: Vec<u64>,
    sent: Vec<Vec<Request>>,
    checks: Vec<(Option<usize>, Depth)>,
    judge: Option<JudgeFn>,
}

impl FakeGuest {
    fn answer(&mut self, index: usize, request: &Request) -> Result<Response, Failure> {
        Ok(match *request {
            Request::Map { addr, .. } if self.mapped.contains(&addr) => {
                Response::Error(Error::InvalidState { addr })
            }
            Request::Map { addr, .. } => {
                self.mapped.push(addr);
                Response::Done
            }
            Request::Read { .. } => Response::Checksum { checksum: 0x1234 },
            Request::Panic { .. } => {
                return Err(Failure::new(
                    FailureKind::GuestPanic,
                    "panicked at src/main.rs:3:1: panic requested by host",
                    Some(index),
                ))
            }
            _ => Response::Done,
        })
    }
}

impl Target for FakeGuest {
    async fn batch(&mut self, first: usize, requests: &[Request], predict: bool) -> BatchRun {
        self.sent.push(requests.to_vec());
        let mut out = BatchRun::default();
        for (i, r) in requests.iter().enumerate() {
            match self.answer(first + i, r) {
                Ok(a) => {
                    let verdict = self.judge.map(|j| j(first + i, &a));
                    out.answers.push(a);
                    match verdict {
                        Some(Err(m)) => {
                            out.predicted.push(None);
                            out.failure =
                                Some(Failure::new(FailureKind::Divergence, m, Some(first + i)));
                            return out;
                        }
                        Some(Ok(p)) if predict => out.predicted.push(Some(p)),
                        _ => out.predicted.push(None),
                    }
                }
                Err(f) => {
                    out.failure = Some(f);
                    return out;
                }
            }
        }
        out
    }

    async fn check(&mut self, last: Option<usize>, depth: Depth) -> Result<(), Failure> {
        self.checks.push((last, depth));
        Ok(())
    }
}

const SCENARIO: &str = r#"{"format":"vmmfuzz-trace","version":9,"ram_mib":64}
{"op":"map","addr":"0x1000","pages":1,"as":"user","expect":"done"}
{"op":"read","addr":"0x1000","len":8,"as":"user","expect":{"checksum":"0x1234"}}
{"op":"map","addr":"0x1000","pages":1,"as":"user","expect":{"error":"invalid_state","addr":"0x1000"}}
{"op":"stats"}
"#;

fn replay(t: &Trace, guest: &mut FakeGuest, seen: &mut Vec<usize>) -> trace::ReplayReport {
    let opts = RunOptions {
        predict: true,
        ..RunOptions::default()
    };
    block_on(run(t, guest, opts, &mut |s| seen.push(s.index)))
}

#[test]
fn a_trace_whose_expectations_hold_passes() {
    let t = parse_str(SCENARIO).unwrap();
    let mut guest = FakeGuest::default();
    let mut seen = Vec::new();
    let report = replay(&t, &mut guest, &mut seen);
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(seen, vec![0, 1, 2, 3]);
    // A trace without `batches` sends its operations one by one.
    let sent: Vec<Vec<Request>> = t.entries.iter().map(|e| vec![e.op.to_request()]).collect();
    assert_eq!(guest.sent, sent);
    assert_eq!(guest.checks, vec![(Some(3), Depth::Full)]);
    let table = format_table(&report);
    assert!(table.contains("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1,\"writable\":true,\"contiguous\":false,\"as\":\"user\"}"), "{table}");
    assert!(table.contains("→ {\"error\":\"invalid_state\",\"addr\":\"0x1000\"}  (expect {\"error\":\"invalid_state\",\"addr\":\"0x1000\"})"), "{table}");
    assert!(table.ends_with("passed: 4 ops\n"), "{table}");
}

#[test]
fn batches_and_the_check_cadence_come_from_the_header() {
    let mut t = parse_str(SCENARIO).unwrap();
    t.header.batches = vec![3, 1];
    t.header.check_every = Some(2);
    let mut guest = FakeGuest::default();
    let report = replay(&t, &mut guest, &mut Vec::new());
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(
        guest.sent.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![3, 1]
    );
    // After the first batch (3 ops since the last check), and the full one.
    assert_eq!(
        guest.checks,
        vec![(Some(2), Depth::Incremental), (Some(3), Depth::Full)]
    );
    // The header round-trips, and removing operations keeps it consistent.
    let text = t.to_text();
    let want = format!(
        "{{\"format\":\"vmmfuzz-trace\",\"version\":{},\"ram_mib\":64,\"check_every\":2,\"batches\":[3,1]}}",
        trace::format::FORMAT_VERSION
    );
    assert!(text.starts_with(&want), "{text}");
    assert_eq!(parse_str(&text).unwrap(), t);
    t.remove_ops(1..3);
    assert_eq!(t.header.batches, vec![1, 1]);
    t.remove_ops(0..1);
    assert_eq!(t.header.batches, vec![1]);
    let bad = text.replace("[3,1]", "[3,2]");
    let e = parse_str(&bad).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("batches"), "{e}");
}

/// A `Reset` returns every frame and drops every translation at once: the
/// state before it is checked first (a leak or a missed flush would leave
/// no trace after it), when checks are on and something ran unchecked;
/// a `Reset` inside a batch starts a batch of its own for that.
#[test]
fn the_state_a_reset_ends_is_checked_first() {
    let text = r#"{"format":"vmmfuzz-trace","version":1,"ram_mib":64,"check_every":50,"batches":[4,2]}
{"op":"map","addr":"0x1000","pages":1,"as":"user"}
{"op":"read","addr":"0x1000","len":8,"as":"user"}
{"op":"reset","as":"kernel"}
{"op":"reset","as":"kernel"}
{"op":"map","addr":"0x2000","pages":1,"as":"user"}
{"op":"stats"}
"#;
    let t = parse_str(text).unwrap();
    let mut guest = FakeGuest::default();
    let report = replay(&t, &mut guest, &mut Vec::new());
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(
        guest.sent.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 1, 1, 2],
        "each reset starts a batch"
    );
    // Before each reset (the operations before it, then the first reset,
    // unchecked), and the full one at the end.
    assert_eq!(
        guest.checks,
        vec![
            (Some(1), Depth::Incremental),
            (Some(2), Depth::Incremental),
            (Some(5), Depth::Full)
        ]
    );
    // Nothing unchecked before a reset that opens the trace.
    let mut first = parse_str(text).unwrap();
    first.remove_ops(0..2);
    let mut guest = FakeGuest::default();
    let _ = replay(&first, &mut guest, &mut Vec::new());
    assert_eq!(
        guest.checks,
        vec![(Some(0), Depth::Incremental), (Some(3), Depth::Full)]
    );
    // Checks off between operations: none but the last.
    let mut t = t;
    t.header.check_every = None;
    let mut guest = FakeGuest::default();
    let _ = replay(&t, &mut guest, &mut Vec::new());
    assert_eq!(guest.checks, vec![(Some(5), Depth::Full)]);
}

#[test]
fn a_wrong_answer_is_a_divergence_and_stops_the_replay() {
    let text = SCENARIO.replace("\"checksum\":\"0x1234\"", "\"checksum\":\"0x9999\"");
    let t = parse_str(&text).unwrap();
    let report = replay(&t, &mut FakeGuest::default(), &mut Vec::new());
    let f = report.outcome.failure().unwrap().clone();
    assert_eq!((f.kind, f.op_index), (FailureKind::Divergence, Some(1)));
    assert_eq!(
        f.message,
        "op 1 (read): expected {\"checksum\":\"0x9999\"}, got {\"checksum\":\"0x1234\"}"
    );
    assert_eq!(report.steps.len(), 2);
    assert_eq!(report.steps[1].verdict, Verdict::Failed);
    assert!(format_table(&report).contains("FAILED: divergence at op 1"));
}

#[test]
fn session_failures_and_the_judge_end_the_replay() {
    let t = parse_str(&format!(
        "{SCENARIO}{{\"op\":\"panic\"}}\n{{\"op\":\"stats\"}}\n"
    ))
    .unwrap();
    let f = block_on(run_outcome(
        &t,
        &mut FakeGuest::default(),
        RunOptions::default(),
    ));
    assert_eq!(
        f.failure().map(|f| (f.kind, f.op_index)),
        Some((FailureKind::GuestPanic, Some(4)))
    );

    // A model that predicts `Done` for everything and calls any other
    // answer a divergence from op 2 on.
    let mut strict = FakeGuest {
        judge: Some(|index, got| {
            if index >= 2 && *got != Response::Done {
                return Err(format!("model says done, guest {got:?}"));
            }
            Ok(Response::Done)
        }),
        ..FakeGuest::default()
    };
    let report = replay(&t, &mut strict, &mut Vec::new());
    let f = report.outcome.failure().unwrap();
    assert_eq!((f.kind, f.op_index), (FailureKind::Divergence, Some(2)));
    assert_eq!(report.steps[0].predicted, Some(Response::Done));
    assert!(format_table(&report).contains("(expect \"done\", model \"done\")"));
}

#[test]
fn the_write_ahead_trace_survives_and_failures_are_saved_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace::generate(
        77,
        &trace::GenConfig {
            ops: 30,
            ..Default::default()
        },
    );
    let path = dir.path().join("campaign/seed-77.jsonl");
    let mut w = TraceWriter::create(&path, &t.header, true).unwrap();
    for batch in t.entries.chunks(8) {
        w.comment("batch").unwrap();
        for e in batch {
            w.append(e).unwrap();
        }
        w.flush_batch().unwrap();
        // After each flush the file alone is a readable trace of what was sent.
        let on_disk = parse(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
        assert_eq!(on_disk.entries[..], t.entries[..w.ops()]);
    }
    // Killed here: nothing else needed.
    drop(w);

    let failure = Failure::new(FailureKind::GuestDied, "triple fault", Some(12));
    let mut saved = t.clone();
    saved.header.failure = Some(failure.clone());
    let out = failure_path(dir.path().join("failures"), &failure, &saved);
    let name = out.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("guest_died-77-{}.jsonl", short_hash(&saved)));
    save_atomically(&out, &saved).unwrap();
    assert_eq!(
        parse_str(&std::fs::read_to_string(&out).unwrap()).unwrap(),
        saved
    );
    assert!(!out.with_file_name(format!("{name}.tmp")).exists());
    // Saving again replaces the file whole.
    save_atomically(&out, &Trace::default()).unwrap();
    assert_eq!(
        parse_str(&std::fs::read_to_string(&out).unwrap()).unwrap(),
        Trace::default()
    );
    let min = minimized_path(&out, false);
    assert_eq!(
        min.file_name().unwrap().to_string_lossy(),
        name.replace(".jsonl", "-min.jsonl")
    );
    assert_eq!(min.parent(), out.parent());
}

/// A trace older than version 9 holds CRC-32C checksums (protocol
/// version 6 and before): its `{"checksum":"0x…"}` reads as `"checksum"`,
/// so the value of today's function passes it; from version 9 on the value
/// is compared.
#[test]
fn an_older_traces_checksum_value_is_not_compared() {
    let old = SCENARIO
        .replace("\"version\":9", "\"version\":8")
        .replace("\"checksum\":\"0x1234\"", "\"checksum\":\"0x9999\"");
    let t = parse_str(&old).unwrap();
    assert_eq!(
        t.entries[1].expect,
        Some(Expect::Kind(trace::expect::AnswerKind::Checksum))
    );
    let report = replay(&t, &mut FakeGuest::default(), &mut Vec::new());
    assert!(report.outcome.failure().is_none(), "{:?}", report.outcome);
    // Written again, it is a version-9 trace that expects any checksum.
    let again = parse_str(&t.to_text()).unwrap();
    assert_eq!(again.entries[1].expect, t.entries[1].expect);
    assert!(t
        .to_text()
        .starts_with("{\"format\":\"vmmfuzz-trace\",\"version\":9"));
    let new = SCENARIO.replace("\"checksum\":\"0x1234\"", "\"checksum\":\"0x9999\"");
    let t = parse_str(&new).unwrap();
    assert_eq!(t.entries[1].expect, Some(Expect::Checksum(0x9999)));
}
