//! The `replay` and `check` subcommands as a user runs them: a trace with
//! a wrong expectation fails with the step table and the decoded walk; a
//! malformed trace is refused with its line and field; `check` prints every
//! invariant's verdict. Needs `qemu-system-x86_64`.

use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-runner"))
        .args(["--accel", "tcg"])
        .args(args)
        .output()
        .expect("host-runner runs")
}

fn trace_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

const HEADER: &str = r#"{"format":"vmmfuzz-trace","version":1}"#;

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
         {{\"op\":\"read\",\"addr\":\"0x12345ff0\",\"len\":32,\"as\":\"user\",\"expect\":{{\"checksum\":\"0xf0117a7e\"}}}}\n"
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
    let out = runner(&["check"]);
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
}
