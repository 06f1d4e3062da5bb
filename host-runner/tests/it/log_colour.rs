//! Log lines fit where they go: with stderr piped (not a terminal) they
//! carry no ANSI escapes unless `--color always` asks for them, and each
//! event is one line. Needs `qemu-system-x86_64` and the built guest (a
//! short replay logs the accelerator's choice).

use std::path::Path;
use std::process::Command;

/// `host-runner --accel tcg [args] replay <a short passing trace>` with
/// stderr piped: its stderr.
fn stderr_of(args: &[&str], no_color: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["--accel", "tcg"]).args(args);
    match no_color {
        Some(v) => cmd.env("NO_COLOR", v),
        None => cmd.env_remove("NO_COLOR"),
    };
    let out = cmd
        .arg("replay")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testcases/bad-zero-count.jsonl"))
        .output()
        .expect("host-runner runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "the trace passes:\n{err}");
    assert!(err.contains("accel: tcg"), "an event was logged:\n{err}");
    err
}

#[test]
fn piped_logs_have_no_escapes_unless_asked_for() {
    for (args, no_color) in [
        (&[][..], None),
        (&["--color", "auto"][..], None),
        (&["--color", "never"][..], None),
        (&[][..], Some("1")),
    ] {
        let err = stderr_of(args, no_color);
        assert!(
            !err.contains('\x1b'),
            "ESC in {args:?}, NO_COLOR={no_color:?}:\n{err}"
        );
        for line in err.lines() {
            assert!(
                [" INFO ", " WARN ", " ERROR ", " DEBUG ", " TRACE "]
                    .iter()
                    .any(|l| line.contains(l)),
                "not one line per event: {line:?}\n{err}"
            );
        }
    }
    // The flag is honoured the other way too: the same run, coloured.
    let err = stderr_of(&["--color", "always"], Some("1"));
    assert!(err.contains("\x1b["), "--color always colours:\n{err}");
}
