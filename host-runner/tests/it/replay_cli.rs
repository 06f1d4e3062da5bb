//! The `replay` and `check` subcommands as a user runs them: a trace with
//! a wrong expectation fails with the step table and the decoded walk; a
//! malformed trace is refused with its line and field; `check` prints every
//! invariant's verdict. Needs `qemu-system-x86_64`.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::trace_file;

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg"])
        .args(args)
        .output()
        .expect("host-runner runs")
}

const HEADER: &str = r#"{"format":"vmmfuzz-trace","version":9}"#;

#[test]
fn wrong_expectation_fails_with_the_table_and_the_walk() {
    let trace = trace_file(&format!(
        "{HEADER}\n\
         {{\"op\":\"map\",\"addr\":\"0x12345000\",\"pages\":2,\"as\":\"user\",\"expect\":\"done\"}}\n\
         {{\"op\":\"write\",\"addr\":\"0x12345ff0\",\"len\":32,\"seed\":\"0x1\",\"as\":\"user\"}}\n\
         # Wrong on purpose: the page after the map is unusable, the read faults.\n\
         {{\"op\":\"read\",\"addr\":\"0x12346ff8\",\"len\":16,\"as\":\"user\",\"expect\":\"checksum\"}}\n\
         {{\"op\":\"stats\"}}\n"
    ));
    let out = runner(&["replay", trace.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}");
    // The step table: every step up to the failing one, marked.
    assert!(stdout.contains("    0   {\"op\":\"map\""), "{stdout}");
    assert!(stdout.contains("    2 ✗ {\"op\":\"read\""), "{stdout}");
    assert!(
        !stdout.contains("\"op\":\"stats\""),
        "replay stops at the failure: {stdout}"
    );
    assert!(
        stdout.contains("FAILED: divergence at op 2")
            && stdout
                .contains(r#"{"fault":{"addr":"0x12347000","write":false,"reason":"unusable"}}"#),
        "{stdout}"
    );
    // The decoded walk of the failing address and its neighbours.
    assert!(stdout.contains("walk of 0x12347000"), "{stdout}");
    assert!(stdout.contains("walk of 0x12346000") && stdout.contains("walk of 0x12348000"));
    assert!(
        stdout.contains("PT[327]") && stdout.contains("-> Unusable"),
        "{stdout}"
    );
    assert!(stdout.contains("page 0x12346000: PresentRam"), "{stdout}");
    assert!(stderr.contains("replay of"), "{stderr}");
}

#[test]
fn passing_trace_exits_zero_with_a_clean_check() {
    let trace = trace_file(&format!(
        "{HEADER}\n\
         {{\"op\":\"convert\",\"addr\":\"0x12345000\",\"pages\":3,\"to\":\"usable_ram\",\"as\":\"user\",\"expect\":\"done\"}}\n\
         {{\"op\":\"write\",\"addr\":\"0x12345ff0\",\"len\":32,\"seed\":\"0x1\",\"as\":\"user\",\"expect\":\"done\"}}\n\
         {{\"op\":\"read\",\"addr\":\"0x12345ff0\",\"len\":32,\"as\":\"user\",\"expect\":{{\"checksum\":\"0x07bc7f3e\"}}}}\n"
    ));
    let out = runner(&[
        "replay",
        "--check-every",
        "1",
        trace.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("passed: 3 ops, memory check clean"),
        "{stdout}"
    );
}

#[test]
fn malformed_trace_names_line_and_field() {
    let trace = trace_file(&format!(
        "{HEADER}\n# a comment\n{{\"op\":\"map\",\"addr\":\"0x12g\",\"pages\":1,\"as\":\"user\"}}\n"
    ));
    let out = runner(&["replay", trace.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 3") && stderr.contains("field \"addr\""),
        "{stderr}"
    );
}

#[test]
fn check_prints_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("check.json");
    let out = runner(&["check", "--json", json.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for n in 1..=8 {
        assert!(
            stdout.contains(&format!("  {n}. ")),
            "invariant {n}: {stdout}"
        );
    }
    assert!(!stdout.contains("VIOLATED"), "{stdout}");
    assert!(stdout.contains("timing (shared-ram)") && stdout.contains("timing (pmemsave)"));
    // The same verdicts as JSON.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (v["format"].as_str(), v["version"].as_u64()),
        (Some("vmmfuzz-check"), Some(1))
    );
    assert_eq!(v["passed"], true);
    let verdicts: Vec<(u64, &str)> = v["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["number"].as_u64().unwrap(),
                i["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(verdicts, (1..=8).map(|n| (n, "ok")).collect::<Vec<_>>());
    assert!(v["counts"]["present_pages"].as_u64().unwrap() > 0);
    let sources: Vec<&str> = v["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["shared-ram", "pmemsave"]);
}

/// A trace whose last operation fails (a read of an unusable page expected
/// to answer a checksum).
fn failing_trace() -> tempfile::NamedTempFile {
    trace_file(&format!(
        "{HEADER}\n\
         {{\"op\":\"map\",\"addr\":\"0x12345000\",\"pages\":1,\"as\":\"user\"}}\n\
         {{\"op\":\"read\",\"addr\":\"0x12346000\",\"len\":8,\"as\":\"user\",\"expect\":\"checksum\"}}\n"
    ))
}

#[test]
fn dump_writes_an_elf_core_at_the_failure() {
    let trace = failing_trace();
    let dir = tempfile::tempdir().unwrap();
    // Spaces in the path: it travels as a QMP string, not an HMP line.
    let sub = dir.path().join("a folder");
    std::fs::create_dir(&sub).unwrap();
    let core = sub.join("guest core.elf");
    let out = runner(&[
        "replay",
        "--dump",
        core.to_str().unwrap(),
        trace.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("guest core written to"), "{stdout}");
    let bytes = std::fs::read(&core).expect("the core file");
    assert_eq!(&bytes[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([bytes[16], bytes[17]]), 4, "ET_CORE");
    assert!(
        stdout.contains(&format!(
            "guest core written to {} ({} bytes",
            core.display(),
            bytes.len()
        )),
        "{stdout}"
    );
}

#[test]
fn dump_says_why_no_core_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("never written.elf");
    // `replay --dump CORE TRACE`: its exit code and stdout.
    let replay_dumping = |trace: &Path| {
        let out = runner(&[
            "replay",
            "--dump",
            core.to_str().unwrap(),
            trace.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    let passing = trace_file(&format!("{HEADER}\n{{\"op\":\"stats\"}}\n"));
    let (code, stdout) = replay_dumping(passing.path());
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "no guest core written to {}: the trace passed",
            core.display()
        )),
        "{stdout}"
    );
    assert!(!core.exists());
    // The guest gone at the failure (a panic requested by the host).
    let panics = trace_file(&format!(
        "{HEADER}\n{{\"op\":\"panic\",\"as\":\"kernel\"}}\n"
    ));
    let (code, stdout) = replay_dumping(panics.path());
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("no guest core written to") && stdout.contains("the guest is gone"),
        "{stdout}"
    );
    assert!(!core.exists());
}

/// `--gdb` leaves QEMU paused before the failing operation with a gdb stub
/// on a unix socket; gdb attaches with the printed command and sees the
/// kernel's symbols. Ctrl-C (SIGINT) ends the runner and QEMU.
#[test]
fn gdb_attaches_to_the_paused_guest() {
    use std::io::{BufRead, BufReader};
    if Command::new("gdb").arg("--version").output().is_err() {
        eprintln!("gdb_attaches_to_the_paused_guest: no gdb here, not run (apt-get install gdb)");
        return;
    }
    let trace = failing_trace();
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg", "replay", "--gdb"])
        .arg(trace.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = String::new();
    let command = loop {
        let line = lines
            .next()
            .expect("the runner prints the gdb command")
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.trim_start().starts_with("gdb ") {
            break line;
        }
    };
    assert!(seen.contains("paused before operation 1"), "{seen}");
    let socket = command
        .split("target remote ")
        .nth(1)
        .and_then(|s| s.strip_suffix('\''))
        .expect("target remote SOCKET")
        .to_string();
    let kernel = command.split_whitespace().nth(1).unwrap().to_string();
    let gdb = Command::new("gdb")
        .args(["-batch", "-nx", &kernel, "-ex"])
        .arg(format!("target remote {socket}"))
        .args(["-ex", "info symbol $pc"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&gdb.stdout);
    // The runner this test spawned.
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
    let status = child.wait().unwrap();
    assert!(
        text.contains("vmmfuzz_kernel::") || text.contains("in section .text"),
        "{text}"
    );
    assert!(!status.success());
}

#[test]
fn json_says_whether_the_saved_failure_reproduced_and_every_step() {
    // Saved for the divergence it shows (the failure as replay makes it),
    // so the replay reproduces it.
    let mut t = trace::parse_str(&format!(
        "{HEADER}\n\
         {{\"op\":\"map\",\"addr\":\"0x12345000\",\"pages\":1,\"as\":\"user\",\"expect\":\"done\"}}\n\
         {{\"op\":\"read\",\"addr\":\"0x12346000\",\"len\":8,\"as\":\"user\",\"expect\":\"checksum\"}}\n"
    ))
    .unwrap();
    let got = protocol::Response::Fault {
        addr: 0x12346000,
        write: false,
        reason: protocol::FaultReason::Unusable,
    };
    let read = &t.entries[1];
    t.header.failure = Some(trace::replay::expect_failure(
        1,
        read,
        read.expect.as_ref().unwrap(),
        &got,
    ));
    let trace = trace_file(&t.to_text());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("replay.json");
    let out = runner(&[
        "replay",
        trace.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (v["format"].as_str(), v["version"].as_u64()),
        (Some("vmmfuzz-replay"), Some(1))
    );
    assert_eq!(v["outcome"], "divergence");
    assert_eq!(v["failure"]["op"], 1);
    assert_eq!(v["reproduction"], "reproduced", "{stdout}");
    assert_eq!(v["saved_failure"]["signature"], v["failure"]["signature"]);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["request"]["op"], "map");
    assert_eq!(
        (steps[0]["ok"].as_bool(), steps[1]["ok"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(steps[1]["answer"]
        .as_str()
        .unwrap()
        .contains("\"unusable\""));
}
