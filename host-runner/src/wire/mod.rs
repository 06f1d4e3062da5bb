//! `host-runner fuzz --wire`: the guest's receiving side under hostile
//! bytes. Seeded bursts ([`burst`]) of random bytes, cut and damaged
//! frames, lying lengths, oversize frames, unknown tags, deep nesting,
//! maximal batches and valid frames of absurd requests ([`absurd`]) go raw
//! onto the serial line, and then, when the guest serves the ring, into
//! the ring's slots, one frame per slot, among slots whose headers lie
//! ([`slots`]); after each burst:
//!
//! 1. the guest answers a `Ping` sent right behind the burst (its replies to
//!    the burst's frames come first, whatever they are), every ring slot
//!    (`BadFrame` for each slot whose header lies), and a `Ping` through the
//!    runner's transport (the ring by default);
//! 2. a judged `Reset` (free frames plus heap pages back to the boot count)
//!    and the full memory check pass;
//! 3. `Stats` shows the frames and the heap as they were before the burst.
//!
//! A failure names its burst, saves the burst's bytes to `--out`, and says
//! how to run the same campaign again (a burst depends only on the seed and
//! its index).

pub mod absurd;
pub mod burst;
mod report;
pub mod slots;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use protocol::{Request, Response, Stats};
use trace::{Failure, FailureKind};

use crate::judge::{failure_from, JudgeOptions, JudgedVm};
use crate::session::VmConfig;
pub use report::{Tally, WireFailure, WireReport};

/// The CI job's wire fuzzing time (less when its fuzz budget is less).
pub const CI_BUDGET: Duration = Duration::from_secs(5);

/// What a wire campaign runs.
#[derive(Clone, Debug)]
pub struct WirePlan {
    pub seed: u64,
    /// Bursts to send (at most).
    pub bursts: u64,
    /// Stop starting bursts after this long.
    pub duration: Option<Duration>,
    /// Where a failing burst's bytes go.
    pub out: PathBuf,
    /// The command line that runs this campaign again (with its seed).
    pub again: String,
}

/// The nonce of the `Ping` that closes burst `k` (never an edge value, so
/// no `Ping` inside a burst answers it).
fn closing_nonce(k: u64) -> u64 {
    0x5eed_c105_0000_0000 | (k & 0xffff_ffff)
}

/// The numbers that must come back after every burst: the frames (free,
/// plus heap pages, which hold frames), the live heap, and what the VMM
/// holds.
fn footprint(s: &Stats) -> [(&'static str, u64); 7] {
    [
        ("free_frames + heap_pages", s.free_frames + s.heap_pages),
        ("heap_bytes_live", s.heap_bytes_live),
        ("host_frames", s.host_frames),
        ("valloc_pages", s.valloc_pages),
        ("present_pages", s.present_pages),
        ("page_table_frames", s.page_table_frames),
        ("swap_slots_used", s.swap_slots_used),
    ]
}

/// What differs between the footprints of `before` and `after`:
/// `heap_bytes_live 0 → 64`, one entry per number.
fn footprint_changes(before: &Stats, after: &Stats) -> Vec<String> {
    footprint(before)
        .iter()
        .zip(footprint(after))
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, a)| format!("{} {} → {}", b.0, b.1, a.1))
        .collect()
}

async fn stats(vm: &mut JudgedVm) -> Result<Stats, Failure> {
    match vm.vm().call(Request::Stats).await {
        Ok(Response::Stats(s)) => Ok(s),
        Ok(other) => Err(Failure::new(
            FailureKind::Divergence,
            format!("Stats answered {other:?}"),
            None,
        )),
        Err(e) => Err(failure_from(e)),
    }
}

/// A reset to the boot state, judged, and the full memory check.
async fn clean(vm: &mut JudgedVm) -> Result<(), Failure> {
    vm.reset().await?;
    vm.check().await.map(drop)
}

/// One burst and the checks after it.
async fn one(
    vm: &mut JudgedVm,
    seed: u64,
    burst: &burst::Burst,
    before: &Stats,
    tally: &mut Tally,
) -> Result<Stats, Failure> {
    let k = burst.index;
    let timeout = vm.vm().config().request_timeout * 4;
    let replies = vm
        .vm()
        .burst_then_ping(&burst.bytes, closing_nonce(k), timeout)
        .await
        .map_err(failure_from)?;
    if replies.restarts > 0 {
        return Err(Failure::new(
            FailureKind::GuestDied,
            format!(
                "the guest restarted ({} Ready) during the burst",
                replies.restarts
            ),
            None,
        ));
    }
    tally.add(&replies);
    if vm.vm().uses_ring() {
        in_ring(vm, burst, seed, timeout, tally).await?;
    }
    let nonce = closing_nonce(k) ^ 0xffff_0000_0000;
    match vm.vm().call(Request::Ping { nonce }).await {
        Ok(Response::Pong { nonce: n }) if n == nonce => {}
        Ok(other) => {
            return Err(Failure::new(
                FailureKind::Divergence,
                format!("Ping {nonce:#x} through the transport answered {other:?}"),
                None,
            ))
        }
        Err(e) => return Err(failure_from(e)),
    }
    clean(vm).await?;
    let after = stats(vm).await?;
    let changed = footprint_changes(before, &after);
    if !changed.is_empty() {
        return Err(Failure::new(
            FailureKind::Invariant,
            format!(
                "after the burst and a Reset, Stats differ: {}",
                changed.join(", ")
            ),
            None,
        ));
    }
    Ok(after)
}

/// The burst's frames in the ring's slots ([`slots::slots`]): each slot
/// answered, a slot whose header lies with `BadFrame`.
async fn in_ring(
    vm: &mut JudgedVm,
    burst: &burst::Burst,
    seed: u64,
    timeout: Duration,
    tally: &mut Tally,
) -> Result<(), Failure> {
    let slots = slots::slots(seed, burst);
    let posted: Vec<_> = slots.iter().map(|s| (s.bytes.clone(), s.header)).collect();
    let answers = vm
        .vm()
        .ring_burst(&posted, timeout)
        .await
        .map_err(failure_from)?;
    tally.ring(&answers);
    for (i, (slot, answer)) in slots.iter().zip(&answers).enumerate() {
        if slot.lies && !matches!(answer, Ok(Response::BadFrame(_))) {
            return Err(Failure::new(
                FailureKind::Divergence,
                format!(
                    "ring slot {i} of the burst, header {:?} over {} bytes: expected BadFrame, \
                     got {answer:?}",
                    slot.header,
                    slot.bytes.len()
                ),
                None,
            ));
        }
    }
    Ok(())
}

/// Runs the wire campaign on one guest (booted again after a failure is
/// not needed: the campaign stops at its first). `print` gets the
/// progress lines.
pub async fn run(config: &VmConfig, plan: &WirePlan, print: impl Fn(&str)) -> WireReport {
    let started = Instant::now();
    let mut report = WireReport::new(plan);
    let bound = match (plan.bursts, plan.duration) {
        (u64::MAX, Some(d)) => format!("bursts for {d:.0?}"),
        (n, Some(d)) => format!("up to {n} burst(s) or {d:.0?}"),
        (n, None) => format!("{n} burst(s)"),
    };
    print(&format!("wire: seed {:#x}, {bound}\n", plan.seed));
    let opts = JudgeOptions::default();
    let mut vm = match JudgedVm::start(config, opts).await {
        Ok(vm) => vm,
        Err(f) => {
            report.fail(None, f, plan);
            return report.finish(started);
        }
    };
    let mut before = match clean(&mut vm).await {
        Ok(()) => stats(&mut vm).await,
        Err(f) => Err(f),
    };
    for k in 0..plan.bursts {
        let prior = match &before {
            Ok(s) => *s,
            Err(f) => {
                report.fail(None, f.clone(), plan);
                return report.finish(started);
            }
        };
        if plan.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let b = burst::burst(plan.seed, k);
        report.tally.burst(&b);
        before = one(&mut vm, plan.seed, &b, &prior, &mut report.tally).await;
        if let Err(f) = &before {
            report.fail(Some(&b), f.clone(), plan);
            return report.finish(started);
        }
    }
    report.last_stats = before.ok();
    if let Err(f) = vm.finish().await {
        report.fail(None, f, plan);
    }
    report.finish(started)
}

/// The CI job's row: a wire campaign of `budget` from `seed`.
pub async fn ci_row(config: &VmConfig, seed: u64, budget: Duration) -> crate::ci_row::CiRow {
    let started = Instant::now();
    let plan = WirePlan {
        seed,
        bursts: u64::MAX,
        duration: Some(budget),
        out: PathBuf::from("failures"),
        again: format!(
            "host-runner fuzz --wire --seed {seed:#x} --duration {}s",
            budget.as_secs()
        ),
    };
    let report = run(config, &plan, |_| {}).await;
    crate::ci_row::CiRow {
        name: format!("wire fuzz ({}s)", budget.as_secs()),
        ops: usize::try_from(report.tally.bursts).unwrap_or(usize::MAX),
        class: report.exit_class(),
        failure: report.failure.is_some().then(|| report.to_string()),
        time: started.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leak the Reset and the memory check cannot see (a heap block or
    /// a frame the receiving side keeps) shows in the footprint; a counter
    /// that moves by design (faults resolved) does not.
    #[test]
    fn a_leak_shows_in_the_footprint_and_activity_does_not() {
        let before = Stats {
            free_frames: 27_000,
            heap_pages: 1,
            ..Stats::default()
        };
        let cases = [
            (before, vec![]),
            (
                Stats {
                    heap_bytes_live: 64,
                    ..before
                },
                vec!["heap_bytes_live 0 → 64"],
            ),
            (
                Stats {
                    free_frames: 26_999,
                    ..before
                },
                vec!["free_frames + heap_pages 27001 → 27000"],
            ),
            // A heap page taken from the free frames is no leak.
            (
                Stats {
                    free_frames: 26_999,
                    heap_pages: 2,
                    ..before
                },
                vec![],
            ),
            (
                Stats {
                    faults_resolved: 9,
                    ..before
                },
                vec![],
            ),
        ];
        for (after, changes) in cases {
            assert_eq!(footprint_changes(&before, &after), changes, "{after:?}");
        }
    }
}
