//! The harness catches bugs: a guest built with `inject-leak` (unmap does
//! not free the last page's frame) is fuzzed with a fixed seed; the fuzzer
//! must find the leak, minimize it to a handful of operations, and the
//! minimized trace, replayed with `host-runner replay` as a user would,
//! must fail the same way every time — and pass on the normal guest. Needs `qemu-system-x86_64` and the guest's
//! toolchain (the injected build is made here, into its own target
//! directory).

use std::path::PathBuf;
use std::time::Duration;

use crate::common::{replay_cli, replay_cli_with};
use host_runner::fuzz::{FreshState, FuzzArgs};
use host_runner::guest_image::build_guest;
use host_runner::{Accel, RunnerOptions, VmConfig};
use trace::failure::message_class;
use trace::{Failure, FailureKind, Shard};

fn config(kernel: Option<PathBuf>) -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions {
        kernel,
        ..RunnerOptions::default()
    })
    .expect("QEMU and the built guest kernel");
    c.accel = Accel::Tcg;
    c
}

fn args(out: PathBuf) -> FuzzArgs {
    FuzzArgs {
        seed: Some(1),
        sequences: Some(30),
        ops: 100,
        duration: None,
        jobs: 1,
        shard: Shard::ALL,
        out,
        fresh: FreshState::Auto,
        max_failures: 1,
        minimize_duration: Duration::from_secs(300),
        ..FuzzArgs::default()
    }
}

/// The last line `replay` printed on stdout (its output is stdout, then
/// stderr after a `--- stderr` line).
fn verdict(output: &str) -> &str {
    let stdout = output.split("\n--- stderr\n").next().unwrap_or_default();
    stdout
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or_default()
}

/// The failure `replay` printed (`FAILED: …`, as many lines as `like`
/// has), with its numbers taken out.
fn printed_failure_class(output: &str, like: &Failure) -> Option<String> {
    let at = output.find("FAILED: ")?;
    let lines = format!("{like}").lines().count();
    let text: Vec<&str> = output[at + "FAILED: ".len()..]
        .lines()
        .take(lines)
        .collect();
    Some(message_class(&text.join("\n")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_finds_minimizes_and_replays_an_injected_leak() {
    let leaky = config(Some(
        build_guest(&["inject-leak"]).expect("the inject-leak guest"),
    ));
    let out = tempfile::tempdir().unwrap();
    let summary = host_runner::fuzz::run(&leaky, &args(out.path().to_owned()), "replay".into())
        .await
        .expect("the campaign runs");
    eprint!("{summary}");
    assert_eq!(summary.failures.len(), 1, "the leak is found");
    let found = &summary.failures[0];
    assert!(
        matches!(
            found.failure.kind,
            FailureKind::Invariant | FailureKind::Divergence
        ),
        "{}",
        found.failure
    );
    assert!(found.path.is_file(), "the failing trace is saved");
    let saved = trace::parse_str(&std::fs::read_to_string(&found.path).unwrap()).unwrap();
    assert_eq!(saved.header.failure.as_ref(), Some(&found.failure));
    // Its HTML report beside it, from a replay that reproduced it.
    let html = host_runner::report::path_beside(&found.path);
    let report = std::fs::read_to_string(&html)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", html.display()));
    assert!(
        report.contains(r#"class="verdict failed">FAILED"#) && report.contains("reproduced"),
        "{}: the verdict",
        html.display()
    );
    assert!(
        report.contains(r#"<svg class="frames""#),
        "the frame map is drawn"
    );

    let min = match &found.minimized {
        Some(Ok(m)) => m,
        other => panic!("not minimized: {other:?}"),
    };
    // It replays the minimized trace: its replay command names that file.
    let min_name = min.path.file_name().unwrap().to_string_lossy();
    assert!(
        report.contains(&*min_name),
        "{}: the report is of {min_name}",
        html.display()
    );
    // The campaign report's row for it links that report and the
    // minimized trace (copied beside the page), and lists the injected
    // guest's own source lines.
    let pages = tempfile::tempdir().unwrap();
    let doc = host_runner::fuzz::results::document(&summary);
    let page = host_runner::report::campaign::write(
        pages.path(),
        &doc,
        &summary.reached,
        Some(&leaky.kernel),
    )
    .expect("the campaign report is written");
    let campaign = std::fs::read_to_string(&page).unwrap();
    let html_name = html.file_name().unwrap().to_string_lossy();
    assert!(
        campaign.contains(&format!(
            r#"<a href="failures/{html_name}">HTML report</a>"#
        )) && campaign.contains(&format!(r#"<a href="failures/{min_name}">"#)),
        "{}: the failure row's links",
        page.display()
    );
    assert!(pages.path().join("failures").join(&*html_name).is_file());
    assert!(
        campaign.contains(r#"data-file="guest/core/"#),
        "{}",
        page.display()
    );
    let text = std::fs::read_to_string(&min.path).unwrap();
    eprintln!("{}:\n{text}", min.path.display());
    let minimized = trace::parse_str(&text).unwrap();
    assert!(
        (1..=5).contains(&minimized.len()),
        "minimized to {} ops",
        minimized.len()
    );
    assert!(minimized
        .entries
        .iter()
        .any(|e| e.op.kind() == trace::OpKind::Unmap));
    let target = minimized
        .header
        .failure
        .clone()
        .expect("failure in header")
        .signature();
    assert_eq!(target, min.reproduced.signature());
    // Run again 3 times (the default --reruns): the rate is in the header.
    let rate = minimized.header.reproduced.expect("the reproduction rate");
    assert_eq!(rate.to_string(), "3/3", "{text}");
    assert_eq!(min.rate, Some(rate));
    assert!(!min.path.to_string_lossy().contains("flaky"));

    let kernel = leaky.kernel.clone();
    let expected = minimized.header.failure.clone().expect("failure in header");
    // The third replay on the serial line: the bug does not depend on
    // the transport.
    for i in 0..3 {
        let serial: &[&str] = if i == 2 {
            &["--transport", "serial"]
        } else {
            &[]
        };
        let (code, output) = replay_cli_with(Some(&kernel), &min.path, serial);
        assert_eq!(code, Some(1), "replay {i}: the VMM fails:\n{output}");
        assert_eq!(
            printed_failure_class(&output, &expected),
            Some(message_class(&expected.to_string())),
            "replay {i} failed otherwise:\n{output}"
        );
        assert!(
            verdict(&output).starts_with("reproduced: "),
            "replay {i} ends with its verdict:\n{output}"
        );
    }
    let (code, output) = replay_cli(None, &min.path);
    assert_eq!(code, Some(0), "the normal guest passes it:\n{output}");
    assert!(
        verdict(&output).starts_with("passed: the saved failure did not occur"),
        "{output}"
    );
}
