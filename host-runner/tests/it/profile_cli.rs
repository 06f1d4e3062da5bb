//! `host-runner profile` as a user runs it: a few seconds of campaign on
//! the frame-pointer kernel (built when out of date), sampled; most
//! running samples have the guest's own crates on their stack and a named
//! leaf; the folded stacks add up to the samples. A QEMU that does not
//! open the monitor is said. Needs `qemu-system-x86_64` and cargo (the
//! kernel build). No wall-clock assertions beyond "some samples".

use std::path::Path;
use std::process::{Command, Output};

/// `host-runner --accel tcg GLOBAL profile --duration 4s --seed 0x2a
/// --out OUT [--json JSON]`.
fn profile(global: &[&str], out: &Path, json: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-runner"));
    cmd.args(["--accel", "tcg"])
        .args(global)
        .args(["profile", "--duration", "4s", "--seed", "0x2a", "--out"])
        .arg(out);
    if let Some(json) = json {
        cmd.arg("--json").arg(json);
    }
    cmd.output().expect("host-runner runs")
}

#[test]
fn a_short_profile_names_the_guests_code() {
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("profile.json");
    let run = profile(&[], out.path(), Some(&json));
    let text = crate::common::output_text(&run);
    assert!(run.status.success(), "{text}");
    assert!(text.contains("halted: "), "{text}");
    assert!(text.contains("top functions by inclusive share"), "{text}");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["format"], "vmmfuzz-profile");
    let p = &doc["profile"];
    let count = |k: &str| p[k].as_u64().unwrap();
    let samples = count("samples");
    let running = samples - count("halted") - count("paused");
    assert!(samples >= 20 && running > 0, "{doc:#}");
    assert!(
        count("in_guest_crates") * 2 > running,
        "most running samples are in vmm_core or vmmfuzz_kernel: {doc:#}"
    );
    assert!(count("unknown_leaves") * 10 < running, "{doc:#}");
    let kernel = doc["kernel"].as_str().unwrap();
    assert!(kernel.contains("guest-frame-pointers"), "{kernel}");

    // `root;…;leaf count` lines that add up to the samples.
    let folded = std::fs::read_to_string(out.path().join("profile.folded")).unwrap();
    let mut total = 0;
    for line in folded.lines() {
        let (stack, n) = line.rsplit_once(' ').expect("`stack count`");
        assert!(!stack.is_empty(), "{line}");
        total += n.parse::<u64>().expect("a count");
    }
    assert_eq!(total, samples, "{folded}");
    assert!(
        folded.contains("vmmfuzz_kernel::rpc::serve;vmm_core::"),
        "{folded}"
    );
}

#[test]
fn a_qemu_without_the_monitor_is_said() {
    let dir = tempfile::tempdir().unwrap();
    // QEMU with every option but `-monitor VALUE`.
    let wrapper = dir.path().join("qemu-no-monitor");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\n\
         for a in \"$@\"; do shift\n\
           if [ \"$skip\" = 1 ]; then skip=0; continue; fi\n\
           if [ \"$a\" = -monitor ]; then skip=1; continue; fi\n\
           set -- \"$@\" \"$a\"\n\
         done\n\
         exec qemu-system-x86_64 \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let qemu = wrapper.to_str().unwrap();
    let run = profile(&["--qemu", qemu], &dir.path().join("out"), None);
    let text = crate::common::output_text(&run);
    assert_eq!(run.status.code(), Some(3), "{text}");
    assert!(
        text.contains("no guest opened the monitor socket"),
        "{text}"
    );
}
