//! The judge on the real guest: a clean guest and a workload pass the model
//! and the memory check (both memory sources), reset returns to the boot
//! state, and a hidden change the model did not see is caught. Needs
//! `qemu-system-x86_64`. No wall-clock assertions.

use host_runner::judge::{JudgeOptions, JudgedVm, MemorySource};
use host_runner::{Accel, RunnerOptions, VmConfig};
use protocol::{AreaType, Privilege, Request, Response, Stats};
use trace::FailureKind;

const USER: Privilege = Privilege::User;

fn config() -> VmConfig {
    let mut c = host_runner::base_config(&RunnerOptions::default())
        .expect("QEMU and the built guest kernel");
    c.accel = Accel::Tcg;
    c
}

fn workload() -> Vec<Request> {
    vec![
        Request::map_writable(0x4000_0000, 3, USER),
        Request::Write {
            addr: 0x4000_0ff0,
            len: 0x2000,
            seed: 7,
            privilege: USER,
        },
        Request::Convert {
            addr: 0x1234_5000,
            pages: 600,
            to: AreaType::UsableRam,
            privilege: USER,
        },
        Request::Write {
            addr: 0x1234_5000 + 511 * 4096,
            len: 3 * 4096,
            seed: 9,
            privilege: USER,
        },
        Request::Read {
            addr: 0x4000_0000,
            len: 3 * 4096,
            privilege: USER,
        },
        Request::Stats,
    ]
}

async fn clean_run(memory: MemorySource) {
    let opts = JudgeOptions {
        memory,
        ..JudgeOptions::default()
    };
    let mut vm = JudgedVm::start(&config(), opts).await.expect("boot");
    let report = vm.check().await.expect("a fresh guest is clean");
    assert!(report.is_clean());
    let answers = vm.steps(workload()).await.expect("judged workload");
    assert_eq!(answers[0], Response::Done);
    assert_eq!(vm.index(), 6);
    let report = vm.check().await.expect("clean after the workload");
    assert!(report.walk.translations.len() >= 3 + 3, "{report}");
    let one = vm
        .step(Request::Unmap {
            addr: 0x4000_0000,
            pages: 3,
            privilege: USER,
        })
        .await
        .unwrap();
    assert_eq!(one, Response::Done);
    vm.reset().await.expect("reset");
    assert_eq!(vm.index(), 0);
    vm.check().await.expect("clean after reset");
    vm.finish().await.expect("exit 33");
}

#[tokio::test]
async fn fresh_and_worked_guest_is_clean_through_pmemsave() {
    clean_run(MemorySource::Pmemsave).await;
}

#[tokio::test]
async fn fresh_and_worked_guest_is_clean_through_shared_ram() {
    clean_run(MemorySource::SharedRam).await;
}

/// Maps a user page at 0x7000_0000 straight on the guest: the model does
/// not know of it.
/// The judge's spin policy (`JudgeOptions::spin`, `protocol::ring` rule
/// 4): the guest gets the spin the options name at its start (its own
/// default without one), and a full check with QEMU's view, which puts the
/// guest to sleep while it runs, gives that spin back.
#[tokio::test]
async fn the_guest_spins_as_the_options_say_and_a_full_check_gives_its_spin_back() {
    let default = protocol::ring::SPIN_TICKS;
    for (spin, want) in [(Some(0), 0), (Some(1234), 1234), (None, default)] {
        let opts = JudgeOptions {
            spin,
            ..JudgeOptions::default()
        };
        let mut vm = JudgedVm::start(&config(), opts).await.expect("start");
        assert_eq!(vm.vm().guest_spin(), Some(want), "at the start, {spin:?}");
        vm.steps(workload()).await.expect("the workload");
        let check = vm.check_timed().await.expect("a clean check");
        assert!(check.tlb_checked, "a full check with QEMU's view");
        assert_eq!(
            vm.vm().guest_spin(),
            Some(want),
            "after the check, {spin:?}"
        );
        vm.finish().await.expect("shutdown");
    }
}

async fn map_behind_the_models_back(vm: &mut JudgedVm) {
    let hidden = Request::map_writable(0x7000_0000, 1, USER);
    assert_eq!(vm.vm().call(hidden).await.unwrap(), Response::Done);
}

#[tokio::test]
async fn change_behind_the_models_back_is_an_invariant_failure() {
    let mut vm = JudgedVm::start(&config(), JudgeOptions::default())
        .await
        .expect("boot");
    map_behind_the_models_back(&mut vm).await;
    vm.step(Request::Ping { nonce: 1 }).await.unwrap();
    let f = vm.check_at(Some(0), false).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::Invariant, "{f}");
    assert_eq!(f.op_index, Some(0));
    assert!(f.message.contains("0x70000000"), "{}", f.message);
}

/// The same change behind the model's back, after a clean check left a
/// record: the incremental check between batches compares the page tables
/// with the record's and catches the entry the model did not expect to
/// change; the failed check leaves no record, so the next one is full and
/// finds it too.
#[tokio::test]
async fn change_behind_the_models_back_is_caught_by_an_incremental_check() {
    let mut vm = JudgedVm::start(&config(), JudgeOptions::default())
        .await
        .expect("boot");
    vm.steps(workload()).await.expect("judged workload");
    let report = vm.check_at(Some(1), false).await.expect("clean");
    assert_eq!(report.scope, oracle::Scope::Full, "no record yet: {report}");
    vm.step(Request::Ping { nonce: 1 }).await.unwrap();
    let report = vm.check_at(Some(2), false).await.expect("clean");
    assert!(
        matches!(report.scope, oracle::Scope::Incremental { .. }),
        "{report:?}"
    );
    map_behind_the_models_back(&mut vm).await;
    vm.step(Request::Ping { nonce: 2 }).await.unwrap();
    let f = vm.check_at(Some(3), false).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::Invariant, "{f}");
    assert!(f.message.contains("0x70000000"), "{}", f.message);
    let again = vm.check_at(Some(3), false).await.unwrap_err();
    let lines = |m: &str| {
        let mut v: Vec<String> = m.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(lines(&again.message), lines(&f.message));
}

#[tokio::test]
async fn wrong_answer_is_a_divergence_at_its_index() {
    let mut vm = JudgedVm::start(&config(), JudgeOptions::default())
        .await
        .expect("boot");
    vm.step(Request::Stats).await.unwrap();
    let req = Request::Query {
        addr: 0x1000,
        pages: 1,
        privilege: USER,
    };
    vm.step(req).await.unwrap();
    // A query the model knows the answer of, answered behind its back
    // first: the same query now answers differently.
    let hidden = Request::map_writable(0x1000, 1, USER);
    assert_eq!(vm.vm().call(hidden).await.unwrap(), Response::Done);
    let req = Request::Query {
        addr: 0x1000,
        pages: 1,
        privilege: USER,
    };
    let f = vm.step(req).await.unwrap_err();
    assert_eq!(f.kind, FailureKind::Divergence);
    assert_eq!(f.op_index, Some(2));
    assert!(f.message.starts_with("operation 2: Query"), "{}", f.message);
}

/// The executor the minimizer drives: runs traces on a reused guest (reset
/// between them) or on fresh boots.
#[tokio::test]
async fn executor_runs_traces_reused_and_fresh() {
    use host_runner::judge::target::{JudgedExecutor, Reuse};
    use trace::{Executor, Outcome};

    let good = trace::parse_str(
        "{\"format\":\"vmmfuzz-trace\",\"version\":1}\n\
         {\"op\":\"map\",\"addr\":\"0x1000\",\"pages\":1,\"as\":\"user\",\"expect\":\"done\"}\n\
         {\"op\":\"write\",\"addr\":\"0x1000\",\"len\":8,\"seed\":\"0x1\",\"as\":\"user\"}\n",
    )
    .unwrap();
    // `good` passes only from a fresh state (run twice without a reset,
    // its map would find the page mapped); `bad` fails at op 1 (the page is
    // unusable: invalid_state, not done).
    let bad = trace::parse_str(
        "{\"format\":\"vmmfuzz-trace\",\"version\":1}\n\
         {\"op\":\"stats\"}\n\
         {\"op\":\"unmap\",\"addr\":\"0x1000\",\"pages\":1,\"as\":\"user\",\"expect\":\"done\"}\n",
    )
    .unwrap();
    let mut outcomes = Vec::new();
    for reuse in [Reuse::ResetBetween, Reuse::FreshBoot] {
        let mut exec = JudgedExecutor::new(config(), JudgeOptions::default(), reuse);
        outcomes.push(exec.run(&good).await);
        outcomes.push(exec.run(&good).await);
        outcomes.push(exec.run(&bad).await);
    }
    for chunk in outcomes.chunks(3) {
        assert_eq!(chunk[0], Outcome::Passed);
        assert_eq!(chunk[1], Outcome::Passed, "fresh state for every run");
        let f = chunk[2]
            .failure()
            .expect("the unmap of an unusable page diverges");
        assert_eq!(f.kind, FailureKind::Divergence);
        assert_eq!(f.op_index, Some(1), "{f}");
    }
}

/// A host heap block of `pages`, written (present), then the campaign's
/// judged reset with its log: the rounds it logged (each `Reset` and
/// `Stats`, and whether it came after the first), and the `Stats` at boot
/// and after the reset, without `bytes_freed_since_check` (it counts the
/// kernel's own blocks too, those that decode requests and build answers,
/// sized by them: no state a boot fixes).
async fn reset_after_a_block(pages: u64) -> (Vec<bool>, Stats, Stats) {
    let mut vm = JudgedVm::start(&config(), JudgeOptions::default())
        .await
        .expect("boot");
    let counters = |s: Response| match s {
        Response::Stats(s) => Stats {
            bytes_freed_since_check: 0,
            ..s
        },
        other => panic!("Stats, got {other:?}"),
    };
    let boot = counters(vm.step(Request::Stats).await.expect("stats"));
    let kernel = Privilege::Kernel;
    let Response::Kmalloc { addr } = vm
        .step(Request::Kmalloc {
            size: pages * 4096,
            align: 4096,
            privilege: kernel,
        })
        .await
        .expect("kmalloc")
    else {
        panic!("a host block of {pages} pages");
    };
    let written = vm
        .step(Request::Write {
            addr,
            len: pages * 4096,
            seed: 3,
            privilege: kernel,
        })
        .await
        .expect("write");
    assert_eq!(written.split_reclaimed().1, Response::Done);
    let mut rounds = Vec::new();
    vm.reset_logged(&mut |reqs, again| {
        assert!(
            matches!(reqs, [Request::Reset { .. }, Request::Stats]),
            "{reqs:?}"
        );
        rounds.push(again);
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .expect("reset");
    assert_eq!(vm.last_reset().resets as usize, rounds.len());
    let after = counters(vm.step(Request::Stats).await.expect("stats"));
    vm.finish().await.expect("exit 33");
    (rounds, boot, after)
}

/// The judged reset after a host heap block of more pages than the reclaim
/// ring holds: one `Reset` gives back a ring of them and leaves the rest
/// present, and the answer's 512 events take heap pages of their own; so
/// the judged reset resets again, each round logged before it is sent,
/// until a `Reset` gives back few pages, and the guest's counters are the
/// boot's again. Before, one reset left them, and a campaign's probe
/// (`fuzz --seed 49`) found its first sequence running differently after
/// the reset than after a boot, and booted a guest per sequence.
#[tokio::test]
async fn judged_reset_past_the_reclaim_ring_is_the_boot_state() {
    // The second reset gives back about 100 pages, then about 300: both
    // more than settle (the answer of 300 events takes a page of its own).
    for past in [100, 300] {
        let pages = protocol::RECLAIM_RING as u64 + past;
        let (rounds, boot, after) = reset_after_a_block(pages).await;
        assert_eq!(rounds, [false, true, true], "{pages} pages");
        assert_eq!(
            after, boot,
            "the counters after the judged reset ({pages} pages)"
        );
    }
}

/// A block of a few pages: one `Reset` gives them back, and its answer
/// fits where a boot's does: one round.
#[tokio::test]
async fn judged_reset_of_a_few_heap_pages_takes_one_round() {
    let (rounds, boot, after) = reset_after_a_block(40).await;
    assert_eq!(rounds, [false]);
    assert_eq!(after, boot);
}

/// A judge's fresh-state checks give the guest its spin back, with the
/// data thread (the guest sleeps through them: `judge::run::check`'s and
/// `judge::inspect`'s tests show that without a race) and without it (the
/// guest, told to spin without end, is never found asleep); and a guest
/// told to spin without end still shuts down.
#[tokio::test]
async fn a_fresh_states_check_gives_the_guest_its_spin_back() {
    for data_thread in [true, false] {
        let opts = JudgeOptions {
            check_after_reset: true,
            data_thread,
            spin: Some(u64::MAX),
            ..JudgeOptions::default()
        };
        let mut vm = JudgedVm::start(&config(), opts).await.expect("start");
        for _ in 0..10 {
            vm.steps(workload()).await.expect("the workload");
            vm.reset().await.expect("a judged reset and its check");
            assert_eq!(vm.vm().guest_spin(), Some(u64::MAX), "its spin back");
            if !data_thread {
                assert_eq!(
                    vm.vm().guest_sleeps(),
                    Some(false),
                    "asleep though told to spin"
                );
            }
        }
        vm.finish().await.expect("shutdown");
    }
}
