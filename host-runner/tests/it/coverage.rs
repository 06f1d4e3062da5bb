//! Coverage on the real guest: the counters of `Vmm::map` move when a
//! `Map` runs and stay still while the guest only answers pings; the PC
//! table maps them to `guest/core/src/vmm/ops.rs`; the model counts the same
//! request's transition; a `Reset` needs no care. The same for both
//! counters: the kernel's own (SanitizerCoverage) and QEMU's plugin over
//! its plain twin. Needs `qemu-system-x86_64` and the kernels and plugin
//! the build script makes.
//! No wall-clock assertions.

use host_runner::coverage::report::GuestReport;
use host_runner::coverage::symbols::{KernelSymbols, Origin};
use host_runner::coverage::EdgeHits;
use host_runner::edge_counts::EdgeCounts;
use host_runner::judge::{JudgeOptions, JudgedVm};
use host_runner::{Accel, RunnerOptions, VmConfig};
use oracle::coverage::{AnswerClass, Caller, RequestKind, StateKind, Transition};
use protocol::{Privilege, Request};

/// A TCG guest whose edges `counts` counts: its own counters, or QEMU's
/// plugin over the kernel's plain twin.
async fn config(counts: EdgeCounts) -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions::default())
        .expect("QEMU and the built guest kernel");
    c.accel = Accel::Tcg;
    c.edge_counts = counts;
    host_runner::edge_counts::settle(&mut c)
        .await
        .expect("the built kernels and plugin");
    assert_eq!(c.block_counter.is_some(), counts == EdgeCounts::Qemu);
    c
}

fn map(addr: u64) -> Request {
    Request::map_writable(addr, 2, Privilege::User)
}

/// The counters of `Vmm::map` in `guest/core/src/vmm/ops.rs`, and its entry's.
fn map_counters(symbols: &KernelSymbols) -> (Vec<usize>, usize) {
    let edges: Vec<usize> = symbols
        .sites
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.origin == Origin::Core
                && s.file == "guest/core/src/vmm/ops.rs"
                && s.function.ends_with(">::map")
        })
        .map(|(i, _)| i)
        .collect();
    let entry = *edges
        .iter()
        .find(|&&i| symbols.sites[i].entry)
        .expect("Vmm::map has an entry counter");
    (edges, entry)
}

fn hits_of(hits: &EdgeHits, edges: &[usize]) -> u64 {
    edges.iter().map(|&i| hits.hits(i)).sum()
}

#[tokio::test]
async fn the_kernels_counters_move_when_map_runs_and_name_its_source() {
    counters_move_when_map_runs_and_name_its_source(EdgeCounts::Sancov).await;
}

#[tokio::test]
async fn qemus_block_counts_move_when_map_runs_and_name_its_source() {
    counters_move_when_map_runs_and_name_its_source(EdgeCounts::Qemu).await;
}

async fn counters_move_when_map_runs_and_name_its_source(counts: EdgeCounts) {
    let config = config(counts).await;
    let symbols = KernelSymbols::load(&config.kernel).expect("the kernel's PC table and DWARF");
    let (map_edges, entry) = map_counters(&symbols);

    let mut vm = JudgedVm::start(&config, JudgeOptions::default())
        .await
        .expect("boot");
    let boot = vm.take_coverage();
    let boot_edges = boot
        .edges
        .clone()
        .expect("an instrumented guest on shared RAM");
    symbols.check(boot_edges.kernel).expect("the same build");
    assert!(boot_edges.reached() > 0, "boot and Hello ran code");
    assert_eq!(hits_of(&boot_edges, &map_edges), 0, "no Map yet");

    vm.steps(vec![map(0x4000_0000), map(0x4010_0000), map(0x4000_0000)])
        .await
        .expect("judged");
    let mapped = vm.take_coverage();
    let edges = mapped.edges.clone().expect("read");
    assert_eq!(edges.hits(entry), 3, "Vmm::map entered once per Map");
    assert!(hits_of(&edges, &map_edges) > 3);
    let t = |answer| Transition {
        request: RequestKind::Map,
        caller: Caller::User,
        from: Some(StateKind::Unusable),
        answer,
        reclaimed: false,
    };
    assert_eq!(mapped.model.count(&t(AnswerClass::Ok)), 2);
    let refused = Transition {
        from: Some(StateKind::PresentRamWritable),
        ..t(AnswerClass::Refused(
            oracle::coverage::Refusal::InvalidState,
        ))
    };
    assert_eq!(mapped.model.count(&refused), 1);

    // Pings and a reset: Vmm::map does not run, its counters stay still.
    vm.steps(vec![Request::Ping { nonce: 1 }, Request::Ping { nonce: 2 }])
        .await
        .expect("judged");
    vm.reset().await.expect("reset");
    let idle = vm.take_coverage();
    assert_eq!(hits_of(idle.edges.as_ref().expect("read"), &map_edges), 0);
    assert!(
        idle.edges.as_ref().expect("read").reached() > 0,
        "the reset ran"
    );
    assert!(idle.model.transitions_reached() > 0);

    // The report names the function and its file.
    let mut all = boot;
    for c in [&mapped, &idle] {
        all.merge(c).expect("one kernel");
    }
    let report = GuestReport::build(all.edges.as_ref().expect("read"), &symbols).expect("report");
    let f = report
        .functions
        .iter()
        .find(|f| f.function.ends_with(">::map") && f.file == "guest/core/src/vmm/ops.rs")
        .expect("Vmm::map in the report");
    assert_eq!(f.origin, Origin::Core);
    assert!(f.line > 0 && f.edges_hit > 0);
    assert_eq!(f.hits, 3);
    // QEMU's exact block counts say what ran; the kernel's edges cannot.
    if counts == EdgeCounts::Qemu {
        let total = report.ran.expect("QEMU's counts: what the guest ran");
        assert!(f.ran.instructions > 0 && f.ran.accesses > 0, "{:?}", f.ran);
        assert!(total.instructions > f.ran.instructions, "{total:?}");
        assert!(
            total.accesses > 0 && total.accesses < total.instructions,
            "{total:?}"
        );
    } else {
        assert_eq!(report.ran, None);
    }
    vm.finish().await.expect("exit 33");
}

/// `host-runner coverage` as a user runs it: a short campaign's report
/// names guest/core's functions and the model's table; saved, it reads
/// back into the same report without running anything (symbolized with
/// the build it was read from: under TCG, QEMU's counts of the plain one).
#[test]
fn the_coverage_command_reports_and_reads_back_what_it_saved() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("coverage.json");
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-runner"))
            .args(["--accel", "tcg", "coverage", "--out"])
            .arg(dir.path().join("failures"))
            .args(extra)
            .output()
            .expect("host-runner runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}\n{stderr}");
        stdout
    };
    let first = run(&[
        "--seed",
        "0x2a",
        "--sequences",
        "2",
        "--ops",
        "60",
        "--save",
        saved.to_str().unwrap(),
    ]);
    let guest_line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("guest edges: "))
            .unwrap_or_else(|| panic!("no guest line in:\n{text}"))
            .to_string()
    };
    assert!(first.contains("reached: guest edges "), "{first}");
    assert!(
        first.contains("  guest/core/src/vmm/ops.rs") && first.contains("vmm_core::vmm::ops::"),
        "{first}"
    );
    assert!(first.contains("model transitions: "), "{first}");
    // QEMU counted: the report says what the guest ran, busiest first.
    assert!(
        first.contains("guest code run (QEMU's block counts times the blocks' contents): "),
        "{first}"
    );
    let again = run(&["--data", saved.to_str().unwrap()]);
    assert!(
        !again.contains("fuzz: seed"),
        "--data alone runs no campaign"
    );
    assert_eq!(guest_line(&again), guest_line(&first));
    // What ran, derived again from the saved counts and the ELF.
    let ran_line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("guest code run "))
            .unwrap_or_else(|| panic!("no guest code run in:\n{text}"))
            .to_string()
    };
    assert_eq!(ran_line(&again), ran_line(&first));
    // At the defaults under TCG, QEMU counted: the blocks of the plain
    // build, whose table (the kernel's id) the saved coverage names.
    let plain = host_runner::guest_image::built_plain_kernel().expect("the plain build");
    let table = host_runner::coverage::symbols::pc_table(&std::fs::read(plain).unwrap()).unwrap();
    let coverage = host_runner::coverage::Coverage::load(&saved).unwrap();
    assert_eq!(
        coverage.edges.expect("guest edges").kernel,
        host_runner::coverage::KernelId::of_pc_table(&table),
        "QEMU's block counts of the plain build"
    );
}

/// The same requests on two fresh guests count the same hits, from boot
/// until the guest is idle, on every edge the corpus looks at (all but
/// those that follow the host's timing: the transport's waits, the
/// interrupt entry), with either counter: what lets a campaign keep the
/// same sequences from one run to the next. Idle: the guest drops an
/// answer after sending it, so a read right after the answer may come
/// before or after that drop's edges (a window's edge is then counted in
/// the next window instead: see `host_runner::coverage`).
#[tokio::test]
async fn the_same_requests_count_the_same_on_two_guests() {
    for counts in [EdgeCounts::Qemu, EdgeCounts::Sancov] {
        let config = config(counts).await;
        let symbols = KernelSymbols::load(&config.kernel).expect("symbols");
        let guidance = symbols.guidance();
        let mut runs = Vec::new();
        for _ in 0..2 {
            let mut vm = JudgedVm::start(&config, JudgeOptions::default())
                .await
                .expect("boot");
            let mut since_boot = vm.take_coverage();
            vm.steps(vec![
                map(0x4000_0000),
                Request::Ping { nonce: 1 },
                map(0x4010_0000),
                map(0x4000_0000),
            ])
            .await
            .expect("judged");
            vm.reset().await.expect("reset");
            // Until the guest drops its last answer and waits: reads until
            // one finds nothing new on the edges the corpus looks at.
            for _ in 0..250 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let more = vm.take_coverage();
                let hits = more.edges.as_ref().expect("read");
                let quiet = (0..hits.len()).all(|i| guidance.ignored[i] || hits.hits(i) == 0);
                since_boot.merge(&more).expect("one kernel");
                if quiet {
                    break;
                }
            }
            runs.push(since_boot.edges.expect("read"));
            vm.finish().await.expect("exit 33");
        }
        assert!(runs[0].reached() > 0, "{counts}");
        // Every edge the corpus looks at that counted otherwise, by site.
        let differ: Vec<String> = (0..runs[0].len())
            .filter(|&i| !guidance.ignored[i] && runs[0].hits(i) != runs[1].hits(i))
            .map(|i| {
                let s = &symbols.sites[i];
                format!(
                    "{:#x} {} {}:{}: {} vs {}",
                    s.pc,
                    s.function,
                    s.file,
                    s.line,
                    runs[0].hits(i),
                    runs[1].hits(i)
                )
            })
            .collect();
        assert!(differ.is_empty(), "{counts}:\n{}", differ.join("\n"));
    }
}
