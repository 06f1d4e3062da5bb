//! What the integration tests share: running `host-runner replay` as a
//! user does, and finding the runner's QEMU processes in `/proc`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A trace of `testcases/`.
pub fn testcase(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testcases")
        .join(name)
}

/// `host-runner --accel tcg [--kernel K] replay PATH`, as a user runs it:
/// its exit code, and its output (stdout, then stderr after a
/// `--- stderr` line).
pub fn replay_cli(kernel: Option<&Path>, path: &Path) -> (Option<i32>, String) {
    replay_cli_with(kernel, path, &[])
}

/// [`replay_cli`] with more runner options (`--transport serial`).
pub fn replay_cli_with(
    kernel: Option<&Path>,
    path: &Path,
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["--accel", "tcg"]).args(extra);
    if let Some(k) = kernel {
        cmd.arg("--kernel").arg(k);
    }
    let out = cmd
        .arg("replay")
        .arg(path)
        .output()
        .expect("host-runner runs");
    let text = output_text(&out);
    (out.status.code(), text)
}

/// A finished command's output as one text for assertion messages: its
/// stdout, then its stderr after a `--- stderr` line.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Checks that a run left nothing in `dir` (a passing campaign saves no
/// failure).
pub fn assert_left_nothing(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `text` in a temporary `.jsonl` file (removed when dropped).
pub fn trace_file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .expect("a temporary file");
    std::fs::write(f.path(), text).expect("the trace is written");
    f
}

/// The QEMU processes among `pid`'s children (`/proc/PID/task/*/children`).
pub fn qemu_children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            if comm.starts_with("qemu") {
                out.push(child);
            }
        }
    }
    out
}

/// Whether `pid` runs (a zombie does not count).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The configuration of a guest built with the injected bug `feature`
/// (into its own target directory), under TCG.
pub fn injected_config(feature: &str) -> host_runner::VmConfig {
    let kernel =
        host_runner::guest_image::build_guest(&[feature]).expect("the injected guest builds");
    let mut config = host_runner::base_config(&host_runner::RunnerOptions {
        kernel: Some(kernel),
        ..host_runner::RunnerOptions::default()
    })
    .expect("QEMU");
    config.accel = host_runner::Accel::Tcg;
    config
}
