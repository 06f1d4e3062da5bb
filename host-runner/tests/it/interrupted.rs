//! Runs that do not end as planned lose nothing: a campaign stopped by
//! SIGINT prints its summary, marked interrupted, with the trace in flight,
//! and leaves no QEMU; a hang is on disk (unconfirmed) before its rerun
//! with twice the timeout starts, and is settled after it (removed when the
//! rerun passes, saved as a hang when it hangs again). The hangs are made
//! by stopping the runner's QEMU from outside (SIGSTOP): a machine that
//! stalls. Needs `qemu-system-x86_64` and the built guest. No wall-clock
//! assertions: the waits only bound a test that would otherwise hang.

use crate::common::{alive, qemu_children};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn fuzz(out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg"])
        .args(extra)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("host-runner runs")
}

/// The child's stdout and stderr, line by line, on one channel.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    rx
}

/// Everything the child said until it ended.
fn rest(rx: &mpsc::Receiver<String>, seen: &mut String) {
    for l in rx.iter() {
        seen.push_str(&l);
        seen.push('\n');
    }
}

fn gone(pid: u32) -> bool {
    (0..200).any(|_| {
        let dead = !alive(pid);
        if !dead {
            std::thread::sleep(Duration::from_millis(50));
        }
        dead
    })
}

/// Operations in job 0's in-flight trace.
fn ops_in_flight(out: &Path) -> usize {
    std::fs::read_to_string(out.join("running-job0.jsonl"))
        .map(|t| t.lines().filter(|l| l.starts_with("{\"op\"")).count())
        .unwrap_or(0)
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    // A process this test started (or its QEMU child, read from /proc just
    // before); at worst it is gone already (ESRCH).
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, sig);
}

#[test]
fn sigint_prints_the_summary_and_each_jobs_trace_in_flight_and_leaves_no_qemu() {
    // Two jobs, each on a thread of its own: the signal must stop both.
    let out = tempfile::tempdir().unwrap();
    let mut child = fuzz(
        out.path(),
        &[
            "fuzz",
            "--seed",
            "7",
            "--duration",
            "10m",
            "--ops",
            "100000",
            "--jobs",
            "2",
        ],
    );
    let rx = lines(&mut child);
    let started = Instant::now();
    let mut qemu = Vec::new();
    while ops_in_flight(out.path()) < 20 && started.elapsed() < Duration::from_secs(120) {
        qemu.extend(qemu_children(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
    qemu.extend(qemu_children(child.id()));
    assert!(
        ops_in_flight(out.path()) >= 20,
        "the campaign never got going"
    );
    assert!(!qemu.is_empty(), "no QEMU seen");
    signal(child.id(), rustix::process::Signal::INT);
    let mut seen = String::new();
    rest(&rx, &mut seen);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(
        seen.contains("fuzz: seed 0x7, shard 1/1, 2 job(s)"),
        "the summary: {seen}"
    );
    assert!(seen.contains("INTERRUPTED by SIGINT"), "{seen}");
    for job in 0..2 {
        let in_flight = out.path().join(format!("running-job{job}.jsonl"));
        assert!(
            seen.contains(&format!("in flight: {}", in_flight.display())),
            "{seen}"
        );
        let trace = trace::parse_str(&std::fs::read_to_string(&in_flight).unwrap())
            .expect("the in-flight trace reads back");
        if job == 0 {
            assert!(trace.len() >= 20, "{} ops", trace.len());
        }
    }
    for q in qemu {
        assert!(gone(q), "QEMU {q} survived the interrupted campaign");
    }
}

/// Stops (SIGSTOP) each QEMU of `runner` that drives a sequence, the first
/// `stops` of them; returns once the runner printed `until` (then stops
/// the runner itself, so that the disk is seen as it was then) or ended.
fn stall_qemu(
    runner: &mut Child,
    out: &Path,
    rx: &mpsc::Receiver<String>,
    stops: usize,
    until: &str,
    seen: &mut String,
) -> Option<String> {
    let mut stopped: Vec<u32> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        if stopped.len() < stops && ops_in_flight(out) > 0 {
            for q in qemu_children(runner.id()) {
                if !stopped.contains(&q) {
                    signal(q, rustix::process::Signal::STOP);
                    stopped.push(q);
                }
            }
        }
        while let Ok(l) = rx.try_recv() {
            seen.push_str(&l);
            seen.push('\n');
            if l.contains(until) {
                signal(runner.id(), rustix::process::Signal::STOP);
                return Some(l);
            }
        }
        if runner.try_wait().unwrap().is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The path after `saved as unconfirmed: ` in `line`.
fn unconfirmed_in(line: &str) -> PathBuf {
    let at = line.find("saved as unconfirmed: ").expect("a path") + 22;
    PathBuf::from(line[at..].split(';').next().unwrap())
}

/// The failing traces saved in `out` (not the in-flight logs, nor the
/// HTML report beside each trace).
fn saved(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("running-job") && !n.ends_with(".html"))
        .collect();
    v.sort();
    v
}

const HANG_ARGS: &[&str] = &[
    "--timeout-ms",
    "3000",
    "fuzz",
    "--seed",
    "9",
    "--sequences",
    "2",
    "--ops",
    "100",
    "--fresh",
    "boot",
    "--no-minimize",
];

#[test]
fn a_hang_is_on_disk_before_its_rerun_and_removed_when_the_rerun_passes() {
    let out = tempfile::tempdir().unwrap();
    let mut child = fuzz(out.path(), HANG_ARGS);
    let rx = lines(&mut child);
    let mut seen = String::new();
    let line = stall_qemu(
        &mut child,
        out.path(),
        &rx,
        1,
        "saved as unconfirmed: ",
        &mut seen,
    );
    let Some(line) = line else {
        rest(&rx, &mut seen);
        panic!("no unconfirmed hang saved:\n{seen}");
    };
    // The runner is stopped right after it said so: the rerun has not run.
    let path = unconfirmed_in(&line);
    let text = std::fs::read_to_string(&path).expect("on disk before the rerun");
    signal(child.id(), rustix::process::Signal::CONT);
    let t = trace::parse_str(&text).unwrap();
    assert_eq!(
        t.header.failure.as_ref().unwrap().kind,
        trace::FailureKind::Hang
    );
    assert!(t.header.note.as_deref().unwrap().starts_with("unconfirmed"));
    assert!(!t.is_empty());
    rest(&rx, &mut seen);
    let status = child.wait().unwrap();
    // The rerun on a fresh QEMU passed: a slow machine, nothing kept.
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("environment fault (not a VMM bug)"), "{seen}");
    assert!(!path.exists(), "the unconfirmed hang is settled");
    assert_eq!(saved(out.path()), Vec::<String>::new(), "{seen}");
}

#[test]
fn a_hang_that_hangs_again_is_saved_as_a_hang() {
    let out = tempfile::tempdir().unwrap();
    let mut child = fuzz(out.path(), HANG_ARGS);
    let rx = lines(&mut child);
    let mut seen = String::new();
    // Both the first run's QEMU and the rerun's are stalled.
    let line = stall_qemu(&mut child, out.path(), &rx, 2, "FAILED: ", &mut seen);
    signal(child.id(), rustix::process::Signal::CONT);
    rest(&rx, &mut seen);
    let status = child.wait().unwrap();
    assert!(line.is_some(), "no failure reported:\n{seen}");
    assert_eq!(status.code(), Some(1), "{seen}");
    let files = saved(out.path());
    assert_eq!(files.len(), 1, "{files:?}\n{seen}");
    assert!(
        files[0].starts_with("hang-") && !files[0].contains("unconfirmed"),
        "{files:?}"
    );
}

#[test]
fn sigterm_during_the_ci_jobs_campaign_prints_its_summary_marked_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-testcases");
    std::fs::create_dir(&empty).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .current_dir(dir.path())
        .args(["--accel", "tcg", "ci", "--fuzz-secs", "600", "--testcases"])
        .arg(&empty)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    // The CI job's campaign writes its in-flight traces to ./failures.
    let failures = dir.path().join("failures");
    let started = Instant::now();
    while ops_in_flight(&failures) < 10 && started.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ops_in_flight(&failures) >= 10,
        "the campaign never got going"
    );
    let qemu = qemu_children(child.id());
    signal(child.id(), rustix::process::Signal::TERM);
    let mut seen = String::new();
    rest(&rx, &mut seen);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{seen}");
    assert!(seen.contains("--- fuzz INTERRUPTED"), "{seen}");
    assert!(seen.contains("INTERRUPTED by SIGTERM"), "{seen}");
    assert!(
        seen.contains("in flight: failures/running-job0.jsonl"),
        "{seen}"
    );
    assert!(seen.contains("STOPPED"), "the table: {seen}");
    // The wire fuzzing row ran before the campaign, and passed.
    let wire = seen.lines().find(|l| l.starts_with("wire fuzz (5s)"));
    assert!(
        wire.is_some_and(|l| l.contains(" ok ")),
        "the table: {seen}"
    );
    for q in qemu {
        assert!(gone(q), "QEMU {q} survived");
    }
}
