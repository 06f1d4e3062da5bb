//! Bad input refused before anything starts: a trace header out of range
//! (through `replay`, `check` and `minimize`), `--ram` out of range, and the
//! small error-message faults of issue 12 (a `--qemu` that is a directory,
//! an error's text said once). A stand-in QEMU records any start, so the
//! tests show that none was made; no test here needs a real QEMU.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory with a stand-in `qemu-system-x86_64` that leaves
/// `started` beside it whenever it runs (a `--version` probe included).
struct FakeQemu {
    dir: tempfile::TempDir,
}

impl FakeQemu {
    fn new() -> FakeQemu {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("qemu-system-x86_64");
        let marker = dir.path().join("started");
        std::fs::write(
            &bin,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeQemu { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("qemu-system-x86_64")
    }

    fn started(&self) -> bool {
        self.dir.path().join("started").exists()
    }
}

fn runner(qemu: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.env_remove("VMMFUZZ_QEMU")
        .arg("--qemu")
        .arg(qemu)
        .args(["--accel", "tcg"]);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn trace_file(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("bad header.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_header_out_of_range_is_a_usage_error_before_qemu_starts() {
    let qemu = FakeQemu::new();
    let dir = tempfile::tempdir().unwrap();
    // The 4 TB file that aborted the runner, and the page count whose
    // blob size overflowed.
    for (pages, shown) in [
        ("1000000000", "1000000000"),
        ("0x4000000000000000", "4611686018427387904"),
    ] {
        let trace = trace_file(
            dir.path(),
            &format!(
                "{{\"format\":\"vmmfuzz-trace\",\"version\":4,\"files\":[{{\"pages\":\"{pages}\"}}]}}\n\
                 {{\"op\":\"stats\"}}\n"
            ),
        );
        for args in [
            vec!["replay"],
            vec!["check", "--trace"],
            vec!["minimize", "--reruns", "1"],
        ] {
            let out = runner(&qemu.bin())
                .args(&args)
                .arg(&trace)
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains(&format!(
                    "line 1: field \"files[0].pages\": {shown} pages: a file has from 1 to 65536 pages"
                )),
                "{args:?}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let trace = trace_file(
        dir.path(),
        "{\"format\":\"vmmfuzz-trace\",\"version\":4,\"ram_mib\":2}\n",
    );
    let out = runner(&qemu.bin())
        .arg("replay")
        .arg(&trace)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 1: field \"ram_mib\": guest RAM of 2 MiB is out of range: from 8 MiB"),
        "{err}"
    );
    assert!(!qemu.started(), "no QEMU may start for a bad header");
}

#[test]
fn files_that_do_not_fit_the_ram_and_a_ram_out_of_range_are_usage_errors() {
    let qemu = FakeQemu::new();
    let dir = tempfile::tempdir().unwrap();
    // No ram_mib in the header: --ram decides, and is too small for the files.
    let trace = trace_file(
        dir.path(),
        "{\"format\":\"vmmfuzz-trace\",\"version\":4,\"files\":[{\"pages\":2048}]}\n",
    );
    let out = runner(&qemu.bin())
        .args(["--ram", "12", "replay"])
        .arg(&trace)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--ram 12: the guest's files"), "{err}");
    assert!(err.contains("give it at least 17 MiB"), "{err}");
    for ram in ["0", "3", "61441"] {
        let out = runner(&qemu.bin())
            .args(["--ram", ram, "fuzz", "--sequences", "1"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "--ram {ram}: {err}");
        assert!(
            err.contains(&format!("guest RAM of {ram} MiB is out of range")),
            "{err}"
        );
    }
    assert!(!qemu.started(), "no QEMU may start for a bad --ram");
}

#[test]
fn a_line_that_is_not_utf8_is_named_by_every_command() {
    let qemu = FakeQemu::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.jsonl");
    let mut bytes = b"{\"format\":\"vmmfuzz-trace\",\"version\":4}\n".to_vec();
    bytes.extend_from_slice(b"{\"op\":\"stats\"}\n# caf\xe9\n");
    std::fs::write(&path, bytes).unwrap();
    for args in [vec!["replay"], vec!["check", "--trace"], vec!["minimize"]] {
        let out = runner(&qemu.bin()).args(&args).arg(&path).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("line 3: not UTF-8 text (the byte at column 6 is not)"),
            "{args:?}: {err}"
        );
        assert_eq!(err.matches("not UTF-8").count(), 1, "said once: {err}");
    }
    assert!(!qemu.started());
}
