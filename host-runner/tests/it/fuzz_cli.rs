//! `host-runner fuzz` as a user runs it: a short campaign on the normal
//! guest passes and cleans up after itself; a runner killed mid-campaign
//! leaves, in `--out`, the trace of what the guest had received (written
//! ahead of every batch). Needs `qemu-system-x86_64` and the built guest.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn fuzz(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["--accel", "tcg", "fuzz", "--out"])
        .arg(out)
        .args(extra);
    cmd
}

#[test]
fn a_short_campaign_passes_and_leaves_nothing_behind() {
    let out = tempfile::tempdir().unwrap();
    let results = tempfile::tempdir().unwrap();
    let json = results.path().join("fuzz.json");
    let run = fuzz(
        out.path(),
        &[
            "--seed",
            "0x2a",
            "--sequences",
            "3",
            "--ops",
            "60",
            "--json",
        ],
    )
    .arg(&json)
    .output()
    .expect("host-runner runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("fuzz: seed 0x2a, shard 1/1, 1 job(s)") && stdout.contains("0 failure(s)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fresh state per sequence: boot "),
        "{stdout}"
    );
    crate::common::assert_left_nothing(out.path());
    // The same figures as one JSON document.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (v["format"].as_str(), v["version"].as_u64()),
        (Some("vmmfuzz-fuzz"), Some(1))
    );
    assert_eq!(v["seed"], "0x2a");
    assert_eq!(v["sequences"], 3);
    let ops = v["ops"].as_u64().unwrap();
    assert!(stdout.contains(&format!(" {ops} ops in ")), "{stdout}");
    assert!(v["answers"]["map"]
        .as_object()
        .is_some_and(|m| !m.is_empty()));
    assert!(v["reached"]["guest_edges"].as_u64().unwrap() > 0);
    assert_eq!(v["failures"], serde_json::json!([]));
    assert!(v["interrupted"].is_null());
}

#[test]
fn a_killed_runner_leaves_the_in_flight_trace() {
    let out = tempfile::tempdir().unwrap();
    let mut child = fuzz(
        out.path(),
        &["--seed", "7", "--duration", "10m", "--ops", "100000"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("host-runner runs");
    let path = out.path().join("running-job0.jsonl");
    // Wait until some batches have gone out (generous: QEMU under load).
    let mut ops = 0;
    for _ in 0..600 {
        std::thread::sleep(Duration::from_millis(100));
        ops = std::fs::read_to_string(&path)
            .map(|t| t.lines().filter(|l| l.starts_with("{\"op\"")).count())
            .unwrap_or(0);
        if ops >= 20 {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    assert!(ops >= 20, "only {ops} ops written ahead");
    let text = std::fs::read_to_string(&path).expect("the in-flight trace is left");
    let trace = trace::parse_str(&text).expect("a whole trace, line by line");
    assert!(trace.len() >= ops, "{} ops in the file", trace.len());
    // The log spans every sequence since the guest booted, so it carries no
    // single sequence's seed: its note names the campaign's.
    assert_eq!(
        trace.header.seed, None,
        "a log since boot, not one sequence"
    );
    let note = trace.header.note.as_deref().unwrap_or("");
    assert!(
        note.contains("in flight") && note.contains("campaign seed 0x7"),
        "{note:?}"
    );
}

#[test]
fn one_sequence_is_reported_as_one_when_auto_runs_it_again() {
    let out = tempfile::tempdir().unwrap();
    let run = fuzz(
        out.path(),
        &[
            "--seed",
            "0x2b",
            "--sequences",
            "1",
            "--ops",
            "20",
            "--fresh",
            "auto",
        ],
    )
    .output()
    .expect("host-runner runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}");
    // `auto` runs the first sequence again after a reset to decide.
    assert!(stdout.contains("fresh state per sequence: "), "{stdout}");
    assert!(stdout.contains(": 1 sequences, "), "{stdout}");
}
