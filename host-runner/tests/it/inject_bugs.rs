//! VMM bugs, put back or injected by cargo features of the guest, are
//! caught by their reproducers in `testcases/`: replayed with `host-runner replay`
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
//! - `inject-unmap-skip-flush` (`testcases/tlb-unmap-invalidates.jsonl`):
//!   `unmap` changes its leaf entries without invalidating them; the
//!   guest's stale-translation probe reads the page again and it does not
//!   fault (invariant 8).
//!
//! - `inject-skip-flush` (`testcases/tlb-reset-scavenge-invalidates.jsonl`),
//!   `inject-leak` (`testcases/leak-unmap-frees-its-frame.jsonl`) and
//!   `inject-wild-frame` (`testcases/wild-frame-first-table.jsonl`): the
//!   reproducers `fuzz --seed 1` found and minimized on those builds.
//! - `inject-count-skip` (`testcases/count-reset-scavenge-lowers-count.jsonl`):
//!   a page table's present count is never lowered; `fuzz --seed 1` found
//!   it at the first memory check (a reset's heap scavenge) and minimized
//!   it to that reset (invariant 4).
//! - `inject-exec-data` (`testcases/bug-exec-data.jsonl`): a fault maps
//!   the page it fills writable and executable; `fuzz --seed 1` found it
//!   at the first memory check after a touch (invariant 4, W^X).
//! - `inject-evict-pinned` (`testcases/bug-evict-pinned.jsonl`): `Evict`
//!   sends pinned (never-swap) RAM to swap; the model refuses the event.
//! - `inject-destroy-leak` (`testcases/bug-destroy-leak.jsonl`):
//!   `DestroySpace` leaves the space's PML4 marked in use; the stats
//!   identity is a frame short.
//! - `inject-switch-no-cr3` (`testcases/bug-switch-no-cr3.jsonl`):
//!   `SwitchSpace` does not load CR3; the probe after the switch reads a
//!   page of the previous space (invariant 8).
//! - `inject-kernel-half-unsynced` (`testcases/bug-kernel-half-unsynced.jsonl`):
//!   a new kernel PDPT goes into the current space's PML4 only; the memory
//!   check finds another space's kernel half not space 0's (invariant 4).
//! - `inject-shared-unmap-frees` (`testcases/bug-shared-unmap-frees.jsonl`):
//!   dropping a shared mapping frees the frame whatever its count; the
//!   memory check finds the frame free while another space maps it
//!   (invariant 1).
//! - `inject-share-no-count` (`testcases/bug-share-no-count.jsonl`):
//!   sharing a shared page leaves its frame's count one short; `Query`'s
//!   count differs from the model's, and the memory check finds the record
//!   short of the entries (invariant 5).
//!
//! A default campaign finds the first, the third, `inject-exec-data`,
//! `inject-evict-pinned` and the three space bugs by itself, and minimizes
//! each to a few operations (`inject-evict-pinned` to a map, a convert to
//! pinned RAM and an evict; `inject-exec-data` to a kernel heap block and
//! a read that faults its page in W+X, named by the memory check), and so
//! do the two shared-memory bugs.
//!
//! Needs `qemu-system-x86_64` and the guest's toolchain (the injected builds
//! are made here, each into its own target directory).

use crate::common::{replay_cli, replay_cli_with, testcase};
use host_runner::fuzz::FuzzArgs;
use host_runner::guest_image::build_guest;
use host_runner::rpc::RpcError;
use host_runner::{Accel, QemuExit, RunnerOptions, Vm};
use protocol::{Privilege, Request, Response};
use trace::{FailureKind, OpKind};

/// The line `replay` printed after `FAILED: `.
fn failed_line(output: &str) -> Option<&str> {
    let at = output.find("FAILED: ")?;
    output[at..].lines().next()
}

/// Replays `trace` twice on the build with `feature`, through the ring and
/// on the serial line (each must fail with `failure` in its `FAILED:`
/// line), and once on the normal guest (must pass).
fn fails_only_on(feature: &str, trace: &str, failure: &str) {
    let injected = build_guest(&[feature]).expect("the injected guest builds");
    let path = testcase(trace);
    for (i, transport) in ["ring", "serial"].into_iter().enumerate() {
        let (code, output) = replay_cli_with(Some(&injected), &path, &["--transport", transport]);
        assert_eq!(
            code,
            Some(1),
            "replay {i} ({transport}) on {feature}: the VMM fails:\n{output}"
        );
        let line = failed_line(&output).unwrap_or_else(|| panic!("no FAILED line:\n{output}"));
        assert!(
            line.contains(failure),
            "replay {i} on {feature} failed otherwise: {line}"
        );
    }
    let (code, output) = replay_cli(None, &path);
    assert_eq!(code, Some(0), "the normal guest passes {trace}:\n{output}");
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
fn the_unmap_flush_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-unmap-skip-flush",
        "tlb-unmap-invalidates.jsonl",
        "invariant at op 1: invariant 8: stale TLB entry: page 0xfffffe8000000000",
    );
}

#[test]
fn the_reset_flush_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-skip-flush",
        "tlb-reset-scavenge-invalidates.jsonl",
        "invariant at op 2: invariant 8: stale TLB entry: page 0xffffc00000200000",
    );
}

#[test]
fn the_leak_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-leak",
        "leak-unmap-frees-its-frame.jsonl",
        "invariant at op 1: memory check after operation 1: 1 violation(s)",
    );
}

#[test]
fn the_present_count_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-count-skip",
        "count-reset-scavenge-lowers-count.jsonl",
        "invariant at op 0: memory check after operation 0: 1 violation(s)",
    );
}

#[test]
fn the_exec_data_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-exec-data",
        "bug-exec-data.jsonl",
        "invariant at op 1: memory check after operation 1",
    );
}

#[test]
fn the_wild_frame_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-wild-frame",
        "wild-frame-first-table.jsonl",
        "guest_panic at op 0: guest panicked at",
    );
}

#[test]
fn the_evict_pinned_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-evict-pinned",
        "bug-evict-pinned.jsonl",
        r#"divergence at op 2: op 2 (evict): expected {"evicted":{"swapped":0,"dropped":0}}, got {"evicted":{"swapped":1,"dropped":0}}"#,
    );
}

#[test]
fn the_destroy_leak_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-destroy-leak",
        "bug-destroy-leak.jsonl",
        "free + tables + present + host + heap_pages is",
    );
}

#[test]
fn the_switch_without_cr3_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-switch-no-cr3",
        "bug-switch-no-cr3.jsonl",
        "invariant at op 3: invariant 8: stale TLB entry: page 0x0 is not present in space 1",
    );
}

#[test]
fn the_kernel_half_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-kernel-half-unsynced",
        "bug-kernel-half-unsynced.jsonl",
        "invariant at op 1: memory check after operation 1: 1 violation(s)",
    );
    // The FAILED line names only the count; the violation under it is the
    // kernel half's.
    let injected =
        build_guest(&["inject-kernel-half-unsynced"]).expect("the injected guest builds");
    let (_, output) = replay_cli_with(
        Some(&injected),
        &testcase("bug-kernel-half-unsynced.jsonl"),
        &[],
    );
    assert!(
        output.contains("the kernel half of space 1's PML4") && output.contains("is not space 0's"),
        "{output}"
    );
}

#[test]
fn the_shared_unmap_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-shared-unmap-frees",
        "bug-shared-unmap-frees.jsonl",
        "invariant at op 5: memory check after operation 5: 1 violation(s)",
    );
    let injected = build_guest(&["inject-shared-unmap-frees"]).expect("the injected guest builds");
    let (_, output) = replay_cli_with(
        Some(&injected),
        &testcase("bug-shared-unmap-frees.jsonl"),
        &[],
    );
    assert!(
        output.contains("is free in the frame bitmap, but is still mapped at 0x0"),
        "{output}"
    );
}

#[test]
fn the_share_count_reproducer_fails_on_its_injected_build_only() {
    fails_only_on(
        "inject-share-no-count",
        "bug-share-no-count.jsonl",
        "expected Pages[1x Shared { writable: false, mappings: 3 }]",
    );
}

/// A default campaign (only the seed and the number of sequences fixed)
/// on the build with `feature` finds a failure of `kind` whose message
/// holds `message`, and minimizes it to operations of `kinds` that
/// reproduce every time.
async fn a_default_campaign_finds(
    feature: &str,
    sequences: u64,
    kind: FailureKind,
    message: &str,
    kinds: &[OpKind],
) {
    let kernel = build_guest(&[feature]).expect("the injected guest builds");
    let mut config = host_runner::base_config(&RunnerOptions {
        kernel: Some(kernel),
        ..RunnerOptions::default()
    })
    .expect("QEMU");
    config.accel = Accel::Tcg;
    let out = tempfile::tempdir().unwrap();
    let args = FuzzArgs {
        seed: Some(1),
        sequences: Some(sequences),
        out: out.path().to_owned(),
        max_failures: 1,
        ..FuzzArgs::default()
    };
    let summary = host_runner::fuzz::run(&config, &args, "replay".into())
        .await
        .expect("the campaign runs");
    eprint!("{summary}");
    let found = summary.failures.first().expect("the bug is found");
    assert_eq!(found.failure.kind, kind, "{}", found.failure);
    assert!(found.failure.message.contains(message), "{}", found.failure);
    let min = match &found.minimized {
        Some(Ok(m)) => m,
        other => panic!("not minimized: {other:?}"),
    };
    let minimized = trace::parse_str(&std::fs::read_to_string(&min.path).unwrap()).unwrap();
    let got: Vec<_> = minimized.entries.iter().map(|e| e.op.kind()).collect();
    assert_eq!(got, kinds, "{}", min.path.display());
    assert_eq!(
        minimized
            .header
            .reproduced
            .map(|r| r.to_string())
            .as_deref(),
        Some("3/3")
    );
}

/// A missing invalidation in `unmap`: a map and an unmap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_a_missing_unmap_flush() {
    a_default_campaign_finds(
        "inject-unmap-skip-flush",
        8,
        FailureKind::Invariant,
        "invariant 8: stale TLB entry",
        &[OpKind::Map, OpKind::Unmap],
    )
    .await;
}

/// A fault that maps its page executable as well as writable (W^X): a
/// kernel heap block and a read that faults its heap page in, W+X; the
/// memory check names the entry (invariant 4; seed 1 finds it in its
/// second sequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_a_writable_executable_page() {
    a_default_campaign_finds(
        "inject-exec-data",
        4,
        FailureKind::Invariant,
        "present entry writable and executable (W^X)",
        &[OpKind::Kmalloc, OpKind::Read],
    )
    .await;
}

/// A host block allowed into the kernel's half of the heap: two
/// `kmalloc`s, the first taking room in the host's half so that the second
/// fits only in the kernel's (seed 1 finds it at its eighth sequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_a_heap_starving_kmalloc() {
    a_default_campaign_finds(
        "inject-heap-starve",
        16,
        FailureKind::Divergence,
        "expected Error(OutOfMemory), got Kmalloc",
        &[OpKind::Kmalloc, OpKind::Kmalloc],
    )
    .await;
}

/// `Evict` sending pinned RAM to swap: the model refuses the event of a
/// pinned page; a map, a convert of the mapped page to pinned RAM, and
/// the evict (seed 1 finds it at its eighteenth sequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_an_evicted_pinned_page() {
    a_default_campaign_finds(
        "inject-evict-pinned",
        21,
        FailureKind::Divergence,
        "the page is PinnedRam",
        &[OpKind::Map, OpKind::Convert, OpKind::Evict],
    )
    .await;
}

/// What the first bug did, without the model to stop it first: the whole
/// heap handed to the host, the kernel's next allocation fails and the
/// guest panics (QEMU exit 65).
#[tokio::test]
async fn a_starved_heap_panics_the_injected_guest() {
    let config = crate::common::injected_config("inject-heap-starve");
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
        Err(RpcError::GuestPanic { report, exit }) => {
            assert!(report.message.contains("memory allocation"), "{report:?}");
            assert_eq!(exit, QemuExit::Panic);
        }
        other => panic!("the starved kernel answered: {other:?}"),
    }
}

/// A destroy that leaks the space's PML4: a create and the destroy; the
/// memory check names the destroyed space's frame, in use and owned by
/// nothing (invariant 3; seed 1 finds it at its fourth sequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_a_leaking_destroy() {
    a_default_campaign_finds(
        "inject-destroy-leak",
        8,
        FailureKind::Invariant,
        "still used but owned by nothing",
        &[OpKind::CreateSpace, OpKind::DestroySpace],
    )
    .await;
}

/// A switch that leaves CR3 alone: the guest's probe after the switch
/// reads a page of the previous space (seed 1 finds it at its fourth
/// sequence; minimized to a page mapped in space 0, a convert of it that
/// makes it one the probe reads, the space, and the switch to it, after
/// which the page must fault).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_a_switch_without_cr3() {
    a_default_campaign_finds(
        "inject-switch-no-cr3",
        8,
        FailureKind::Invariant,
        "a translation of the previous space survived the switch",
        &[
            OpKind::Map,
            OpKind::Convert,
            OpKind::CreateSpace,
            OpKind::SwitchSpace,
        ],
    )
    .await;
}

/// A kernel PDPT written into one space's PML4 only: a space, then a
/// kernel request that makes the PDPT; the memory check compares every
/// space's kernel half with space 0's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_an_unsynced_kernel_half() {
    a_default_campaign_finds(
        "inject-kernel-half-unsynced",
        8,
        FailureKind::Invariant,
        "is not space 0's",
        &[OpKind::CreateSpace, OpKind::Map],
    )
    .await;
}

/// An unmap of a shared page that frees the frame whatever its count: a
/// page, a space, the share into it and the destroy of that space, after
/// which space 0 maps a free frame (seed 1 finds it at its fourth
/// sequence, in space 3; the minimizer renumbers it to space 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_a_shared_frame_freed_early() {
    a_default_campaign_finds(
        "inject-shared-unmap-frees",
        8,
        FailureKind::Invariant,
        "is free in the frame bitmap, but is still mapped",
        &[
            OpKind::Map,
            OpKind::CreateSpace,
            OpKind::Share,
            OpKind::DestroySpace,
        ],
    )
    .await;
}

/// A share that does not count a shared page's new mapping: a space, a
/// page, and two shares of it (seed 1 finds it at its ninth sequence).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_campaign_finds_and_minimizes_an_uncounted_share() {
    a_default_campaign_finds(
        "inject-share-no-count",
        10,
        FailureKind::Invariant,
        "its frame-info record counts",
        &[
            OpKind::CreateSpace,
            OpKind::Map,
            OpKind::Share,
            OpKind::Share,
        ],
    )
    .await;
}
