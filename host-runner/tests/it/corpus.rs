//! Every trace of `testcases/` on the real guest: the seed's scenarios,
//! every bad-input class (the right error, the guest still serving, state
//! unchanged), the convert transitions, frames and valloc — each judged by
//! its `expect` lines, the model, and a memory check every 4 operations
//! and at its end. Needs `qemu-system-x86_64`.

use host_runner::ci_job::{corpus, default_testcases, replay_file};
use host_runner::{Accel, RunnerOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_testcase_passes() {
    let mut config = host_runner::base_config(&RunnerOptions::default())
        .expect("QEMU and the built guest kernel");
    config.accel = Accel::Tcg;
    let files = corpus(&default_testcases()).expect("testcases/");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in [
        "seed-convert-33mib-usable.jsonl",
        "seed-convert-512mib-unusable.jsonl",
        "bad-misaligned.jsonl",
        "bad-zero-count.jsonl",
        "bad-overflow.jsonl",
        "bad-non-canonical.jsonl",
        "bad-canonical-hole.jsonl",
        "bad-user-names-kernel.jsonl",
        "bad-reserved.jsonl",
        "bad-invalid-state.jsonl",
        "bad-out-of-memory.jsonl",
    ] {
        assert!(names.iter().any(|n| n == required), "{required} is missing");
    }
    let mut failed = Vec::new();
    for path in &files {
        let row = replay_file(&config, path, 4).await;
        assert!(row.ops > 0, "{} holds no operation", row.name);
        if let Some(f) = row.failure {
            failed.push(format!("--- {}\n{f}", row.name));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
