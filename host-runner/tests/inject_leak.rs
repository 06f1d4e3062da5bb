//! The harness catches bugs: a guest built with `inject-leak` (unmap does
//! not free the last page's frame) is fuzzed with a fixed seed; the fuzzer
//! must find the leak, minimize it to a handful of operations, and the
//! minimized trace must fail the same way on every fresh guest — and pass
//! on the normal guest. Needs `qemu-system-x86_64` and the guest's
//! toolchain (the injected build is made here, into its own target
//! directory).

use std::path::PathBuf;
use std::time::Duration;

use host_runner::fuzz::{FreshState, FuzzArgs};
use host_runner::guest_image::build_guest;
use host_runner::judge::glue::{JudgedExecutor, Reuse};
use host_runner::judge::JudgeOptions;
use host_runner::{Accel, RunnerOptions, VmConfig};
use tokio::runtime::Handle;
use trace::{Executor, FailureKind, Outcome, Shard, Trace};

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
        check_every: 50,
        jobs: 1,
        shard: Shard::ALL,
        out,
        batch: 32,
        fresh: FreshState::Auto,
        max_failures: 1,
        minimize_duration: Duration::from_secs(300),
        no_minimize: false,
    }
}

/// Runs `trace` `n` times, each on a freshly booted guest.
async fn run_fresh(config: &VmConfig, trace: &Trace, n: usize) -> Vec<Outcome> {
    let (config, trace) = (config.clone(), trace.clone());
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || {
        let opts = JudgeOptions::default();
        let mut exec = JudgedExecutor::new(config, opts, Reuse::FreshBoot, handle);
        (0..n).map(|_| exec.run(&trace)).collect()
    })
    .await
    .expect("the executor thread does not panic")
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

    let min = match &found.minimized {
        Some(Ok(m)) => m,
        other => panic!("not minimized: {other:?}"),
    };
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

    for (i, outcome) in run_fresh(&leaky, &minimized, 3)
        .await
        .into_iter()
        .enumerate()
    {
        let f = outcome
            .failure()
            .unwrap_or_else(|| panic!("replay {i} passed"));
        assert_eq!(f.signature(), target, "replay {i}: {f}");
    }
    let normal = run_fresh(&config(None), &minimized, 1).await;
    assert_eq!(normal, vec![Outcome::Passed], "the normal guest passes it");
}
