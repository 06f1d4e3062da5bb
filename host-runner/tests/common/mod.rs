//! What the injected-bug tests share: running `host-runner replay` as a
//! user does.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A trace of `testcases/`.
#[allow(dead_code, reason = "not every test binary replays a testcase")]
pub fn testcase(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testcases")
        .join(name)
}

/// `host-runner --accel tcg [--kernel K] replay PATH`, as a user runs it:
/// its exit code, and its output (stdout, then stderr after a
/// `--- stderr` line).
pub fn replay_cli(kernel: Option<&Path>, path: &Path) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["--accel", "tcg"]);
    if let Some(k) = kernel {
        cmd.arg("--kernel").arg(k);
    }
    let out = cmd
        .arg("replay")
        .arg(path)
        .output()
        .expect("host-runner runs");
    let text = format!(
        "{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}
