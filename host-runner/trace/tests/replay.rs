//! Replay through a fake session, the step table, recording and atomic
//! saving: no QEMU.

use protocol::{Error, Request, Response};
use trace::recorder::{failure_path, minimized_path, short_hash};
use trace::replay::{format_table, run_trace, Verdict};
use trace::{
    parse, parse_str, replay, save_atomically, Failure, FailureKind, Judge, Outcome, Session,
    Trace, TraceWriter,
};

/// A toy guest: every map of an address mapped before answers
/// `InvalidState`, reads answer a checksum, a `panic` kills it.
#[derive(Default)]
struct FakeGuest {
    mapped: Vec<u64>,
    sent: Vec<Request>,
}

impl Session for FakeGuest {
    fn request(&mut self, index: usize, request: &Request) -> Result<Response, Failure> {
        self.sent.push(request.clone());
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

const SCENARIO: &str = r#"{"format":"vmmfuzz-trace","version":1,"ram_mib":64}
{"op":"map","addr":"0x1000","pages":1,"as":"user","expect":"done"}
{"op":"read","addr":"0x1000","len":8,"as":"user","expect":{"checksum":"0x1234"}}
{"op":"map","addr":"0x1000","pages":1,"as":"user","expect":{"error":"invalid_state","addr":"0x1000"}}
{"op":"stats"}
"#;

#[test]
fn a_trace_whose_expectations_hold_passes() {
    let t = parse_str(SCENARIO).unwrap();
    let mut guest = FakeGuest::default();
    let mut seen = Vec::new();
    let report = replay(&t, &mut guest, None, &mut |s| seen.push(s.index));
    assert_eq!(report.outcome, Outcome::Passed);
    assert_eq!(seen, vec![0, 1, 2, 3]);
    let sent: Vec<Request> = t.entries.iter().map(|e| e.op.to_request()).collect();
    assert_eq!(guest.sent, sent);
    let table = format_table(&report);
    assert!(table.contains("{\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1,\"writable\":true,\"contiguous\":false,\"as\":\"user\"}"), "{table}");
    assert!(table.contains("→ {\"error\":\"invalid_state\",\"addr\":\"0x1000\"}  (expect {\"error\":\"invalid_state\",\"addr\":\"0x1000\"})"), "{table}");
    assert!(table.ends_with("passed: 4 ops\n"), "{table}");
}

#[test]
fn a_wrong_answer_is_a_divergence_and_stops_the_replay() {
    let text = SCENARIO.replace("\"checksum\":\"0x1234\"", "\"checksum\":\"0x9999\"");
    let t = parse_str(&text).unwrap();
    let report = replay(&t, &mut FakeGuest::default(), None, &mut |_| {});
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
    let f = run_trace(&t, &mut FakeGuest::default(), None);
    assert_eq!(
        f.failure().map(|f| (f.kind, f.op_index)),
        Some((FailureKind::GuestPanic, Some(4)))
    );

    /// A model that predicts `Done` for everything and calls any other
    /// answer a divergence from op 2 on.
    struct Strict;
    impl Judge for Strict {
        fn judge(
            &mut self,
            index: usize,
            _: &Request,
            got: &Response,
        ) -> Result<Option<Response>, Failure> {
            if index >= 2 && *got != Response::Done {
                return Err(Failure::new(
                    FailureKind::Divergence,
                    format!("model says done, guest {got:?}"),
                    None,
                ));
            }
            Ok(Some(Response::Done))
        }
    }
    let report = replay(
        &t,
        &mut FakeGuest::default(),
        Some(&mut Strict),
        &mut |_| {},
    );
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
    let min = minimized_path(&out);
    assert_eq!(
        min.file_name().unwrap().to_string_lossy(),
        name.replace(".jsonl", "-min.jsonl")
    );
    assert_eq!(min.parent(), out.parent());
}
