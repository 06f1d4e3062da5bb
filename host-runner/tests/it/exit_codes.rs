//! The exit codes as a user or a script sees them: 0 passed, 1 the VMM
//! failed, 2 usage error, 3 environment or tool error; and an environment
//! fault (QEMU killed from outside during a campaign) that is neither
//! saved as a failure nor turns the run red. Needs `qemu-system-x86_64`
//! and the built guest for the tests that boot one.

use crate::common::{qemu_children, trace_file};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn runner() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.env_remove("VMMFUZZ_QEMU");
    cmd
}

fn text(out: &Output) -> String {
    crate::common::output_text(out)
}

#[test]
fn help_lists_the_exit_codes() {
    let out = runner().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status"), "{help}");
    for line in [
        "0  passed",
        "1  the VMM failed",
        "2  usage error",
        "3  environment",
    ] {
        assert!(help.contains(line), "{line:?} missing:\n{help}");
    }
}

#[test]
fn a_malformed_trace_is_a_usage_error() {
    let bad = trace_file(
        "{\"format\":\"vmmfuzz-trace\",\"version\":4}\n{\"op\":\"map\",\"addr\":\"0x1000\"}\n",
    );
    for cmd in ["replay", "check"] {
        let mut c = runner();
        c.args(["--accel", "tcg", cmd]);
        if cmd == "check" {
            c.arg("--trace");
        }
        let out = c.arg(bad.path()).output().unwrap();
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {t}");
        assert!(t.contains("line 2") && t.contains("pages"), "{cmd}: {t}");
    }
    let missing = runner()
        .args(["--accel", "tcg", "replay", "/nonexistent/trace.jsonl"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    let bad_option = runner().args(["fuzz", "--ops", "many"]).output().unwrap();
    assert_eq!(bad_option.status.code(), Some(2), "{}", text(&bad_option));
}

#[test]
fn a_missing_qemu_is_an_environment_error_that_says_what_to_install() {
    // --qemu naming a binary that is not there.
    let named = runner()
        .args(["--qemu", "/nonexistent/qemu-system-x86_64", "smoke"])
        .output()
        .unwrap();
    // No QEMU in PATH.
    let empty = tempfile::tempdir().unwrap();
    let path = runner()
        .env("PATH", empty.path())
        .args(["fuzz", "--sequences", "1"])
        .output()
        .unwrap();
    for out in [named, path] {
        let t = text(&out);
        assert_eq!(out.status.code(), Some(3), "{t}");
        assert!(t.contains("apt-get install qemu-system-x86"), "{t}");
    }
}

/// Whether the in-flight trace of job 0 holds an operation: the guest is
/// being driven (not booting).
fn driving(out: &Path) -> bool {
    std::fs::read_to_string(out.join("running-job0.jsonl"))
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("{\"op\"")))
}

#[test]
fn qemu_killed_from_outside_is_retried_and_never_saved_as_a_failure() {
    let out = tempfile::tempdir().unwrap();
    let mut child = runner()
        .args(["--accel", "tcg", "fuzz", "--seed", "7", "--sequences", "4"])
        .args(["--ops", "200", "--fresh", "boot", "--out"])
        .arg(out.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut killed = None;
    while killed.is_none() && started.elapsed() < Duration::from_secs(120) {
        if let Some(&q) = qemu_children(pid).first() {
            if driving(out.path()) {
                // A pid we just read as our runner's QEMU child; at worst
                // it is already gone (ESRCH).
                let pid = rustix::process::Pid::from_raw(q as i32).expect("a pid");
                if rustix::process::kill_process(pid, rustix::process::Signal::KILL).is_ok() {
                    killed = Some(q);
                }
            }
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = child.wait_with_output().unwrap();
    let t = text(&run);
    let Some(q) = killed else {
        panic!("never saw the runner's QEMU drive a sequence to kill it:\n{t}");
    };
    // The sequence ran again on a fresh boot and passed: the campaign
    // passes, says what happened, and saved nothing.
    assert_eq!(run.status.code(), Some(0), "QEMU {q} killed: {t}");
    assert!(
        t.contains("environment fault (not a VMM bug)") && t.contains("SIGKILL (9)"),
        "{t}"
    );
    assert!(t.contains("environment faults, retried"), "{t}");
    assert!(t.contains("0 failure(s)"), "{t}");
    crate::common::assert_left_nothing(out.path());
}
