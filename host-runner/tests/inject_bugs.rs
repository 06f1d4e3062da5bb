//! Three VMM bugs, put back by cargo features of the guest, are caught
//! by their reproducers in `testcases/`: replayed with `host-runner replay`
//! as a user would, each fails on its injected build, the same way every
//! time, and passes on the normal guest.
//!
//! - `inject-heap-starve` (`testcases/bug-heap-starve.jsonl`): a host
//!   `Kmalloc` may take the kernel's half of the heap; one block of the
//!   whole heap then starves the kernel, whose next allocation panics the
//!   guest (shown here too, without the model).
//! - `inject-zero-need-oom` (`testcases/bug-zero-need-oom.jsonl`): a request
//!   that needs no frame answers `OutOfMemory` once the kernel's heap dipped
//!   into its reserve.
//! - `inject-unmap-skip-flush` (`testcases/bug-unmap-skip-flush.jsonl`):
//!   `unmap` changes leaf entries without a TLB flush; the stale-translation
//!   probe reports invariant 8 at the unmap.
//!
//! Needs `qemu-system-x86_64` and the guest's toolchain (the injected builds
//! are made here, each into its own target directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use host_runner::guest_image::build_guest;
use host_runner::{Accel, Error, QemuExit, RunnerOptions, Vm};
use protocol::{Privilege, Request, Response};

fn testcase(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testcases")
        .join(name)
}

/// `host-runner [--kernel K] replay PATH`, as a user runs it: whether it
/// passed, and its output.
fn replay_cli(kernel: Option<&Path>, path: &Path) -> (bool, String) {
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
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The line `replay` printed after `FAILED: `.
fn failed_line(output: &str) -> Option<&str> {
    let at = output.find("FAILED: ")?;
    output[at..].lines().next()
}

/// Replays `trace` twice on the build with `feature` (each must fail with
/// `failure` in its `FAILED:` line) and once on the normal guest (must
/// pass).
fn fails_only_on(feature: &str, trace: &str, failure: &str) {
    let injected = build_guest(&[feature]).expect("the injected guest builds");
    let path = testcase(trace);
    for i in 0..2 {
        let (passed, output) = replay_cli(Some(&injected), &path);
        assert!(!passed, "replay {i} on {feature} passed:\n{output}");
        let line = failed_line(&output).unwrap_or_else(|| panic!("no FAILED line:\n{output}"));
        assert!(
            line.contains(failure),
            "replay {i} on {feature} failed otherwise: {line}"
        );
    }
    let (passed, output) = replay_cli(None, &path);
    assert!(passed, "the normal guest fails {trace}:\n{output}");
}

#[test]
fn the_heap_starve_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-heap-starve",
        "bug-heap-starve.jsonl",
        r#"divergence at op 0: op 0 (kmalloc): expected {"error":"out_of_memory"}, got {"kmalloc":"#,
    );
}

#[test]
fn the_zero_need_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-zero-need-oom",
        "bug-zero-need-oom.jsonl",
        r#"(convert): expected "done", got {"error":"out_of_memory"}"#,
    );
}

#[test]
fn the_unmap_skip_flush_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-unmap-skip-flush",
        "bug-unmap-skip-flush.jsonl",
        "invariant at op 3: ",
    );
}

/// What the first bug did, without the model to stop it first: the whole
/// heap handed to the host, the kernel's next allocation fails and the
/// guest panics (QEMU exit 65).
#[tokio::test]
async fn a_starved_heap_panics_the_injected_guest() {
    let kernel = build_guest(&["inject-heap-starve"]).expect("the injected guest builds");
    let mut config = host_runner::base_config(&RunnerOptions {
        kernel: Some(kernel),
        ..RunnerOptions::default()
    })
    .expect("QEMU");
    config.accel = Accel::Tcg;
    let mut vm = Vm::boot(&config).await.expect("boot");
    let max = vm.hello().await.expect("hello").heap_max_bytes;
    let whole = Request::Kmalloc {
        size: max,
        align: 16,
        privilege: Privilege::Kernel,
    };
    match vm.call(whole).await.expect("kmalloc answered") {
        Response::Kmalloc { .. } => {}
        other => panic!("the injected guest refused the whole heap: {other:?}"),
    }
    let query = Request::Query {
        addr: 0x1234_5000,
        pages: 1,
        privilege: Privilege::User,
    };
    match vm.call(query).await {
        Err(Error::GuestPanic { report, exit }) => {
            assert!(report.message.contains("memory allocation"), "{report:?}");
            assert_eq!(exit, QemuExit::Panic);
        }
        other => panic!("the starved kernel answered: {other:?}"),
    }
}
