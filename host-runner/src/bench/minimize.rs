//! Minimization: the runner's minimizer (`crate::minimize`, as `fuzz` and
//! `minimize` run it) on a long trace that fails on an injected-bug guest.
//!
//! Injected bugs are cargo features of the guest build, so this needs such
//! a build, named at run time (`bench --minimize-kernel PATH`, e.g. the one
//! `guest_image::build_guest(&["inject-leak"])` makes). The trace is the
//! fuzzer's mix ([`Mix`], generated against `vmm-core` in-process) without
//! its `Stats` and `Reset` requests, so that a leak shows at the end rather
//! than at the first `Stats`, and no `Reset` (which gives every frame back
//! to the allocator) wipes it out before; in the fuzzer's batches
//! (`fuzz::plan::BatchRule`), the memory checked at its end.

use std::path::Path;

use super::mix::Mix;
use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::fuzz::plan::BatchRule;
use crate::judge::target::Reuse;
use crate::judge::JudgeOptions;
use crate::minimize::{minimize_trace, MinimizeOptions};
use crate::session::VmConfig;

/// The long trace: `ops` operations of the mix of `seed` but `Stats` and
/// `Reset`.
pub fn long_trace(config: &VmConfig, ops: usize, seed: u64) -> trace::Trace {
    let mix = Mix::record(config, ops + ops / 4, seed);
    let ops: Vec<trace::Op> = mix
        .requests
        .iter()
        .filter(|r| {
            !matches!(
                r,
                protocol::Request::Stats | protocol::Request::Reset { .. }
            )
        })
        .filter_map(trace::Op::from_request)
        .take(ops)
        .collect();
    let gen = trace::GenConfig {
        ops: ops.len(),
        ram_mib: config.ram_mib,
        files: config.files.clone(),
        ..trace::GenConfig::default()
    };
    let mut header = trace::Generator::new(seed, gen).header();
    header.seed = None;
    header.note = Some(format!(
        "bench: the fuzzer's mix of seed {seed:#x} without Stats and Reset, for minimization"
    ));
    let rule = BatchRule {
        max: crate::fuzz::FuzzArgs::default().batch,
        ops: ops.len(),
    };
    let mut in_batch = 0u32;
    for (i, op) in ops.iter().enumerate() {
        in_batch += 1;
        if rule.ends_after(op, in_batch as usize, i + 1) {
            header.batches.push(in_batch);
            in_batch = 0;
        }
    }
    trace::Trace::from_ops(header, ops)
}

/// Minimizes [`long_trace`] of `plan.minimize_ops` on the guest `kernel`
/// for at most `plan.minimize_secs`: the time, the lengths before and
/// after; whether the time ran out goes into `notes`.
pub async fn figures(
    config: &VmConfig,
    kernel: &Path,
    plan: &BenchPlan,
    notes: &mut Vec<String>,
) -> Result<Vec<Figure>, BenchError> {
    let mut config = VmConfig {
        kernel: kernel.to_owned(),
        ..config.clone()
    };
    // Its own edge counter: the injected build has counters of its own.
    crate::edge_counts::settle(&mut config).await?;
    let trace = long_trace(&config, plan.minimize_ops, plan.seed);
    let dir = tempfile::tempdir().map_err(|e| crate::Error::io("a temporary folder", e))?;
    let path = dir.path().join("long.jsonl");
    let opts = MinimizeOptions {
        judge: JudgeOptions::default(),
        reuse: Reuse::ResetBetween,
        duration: super::transport::secs(plan.minimize_secs),
        check_every: None,
        reruns: 0,
    };
    let report = match minimize_trace(&config, trace, &path, &opts, |_| {}).await {
        Err(crate::minimize::MinimizeError::Passes { .. }) => {
            return Err(BenchError::NothingFails(crate::exit_code::UsageError(
                format!(
                    "the long trace ({} operations) passes on the guest {}: give \
                     --minimize-kernel a guest built with an injected bug (inject-leak)",
                    plan.minimize_ops,
                    kernel.display()
                ),
            )))
        }
        result => result?,
    };
    if report.result.timed_out {
        notes.push(format!(
            "minimization: the {:.0} s budget ran out; the length is the best found by then",
            plan.minimize_secs
        ));
    }
    let tag = Tag::of(Section::Minimize, &config);
    Ok(vec![
        tag.value(
            "failing trace given",
            Unit::Ops,
            report.original_ops as f64,
            1,
        ),
        tag.value(
            "minimized trace",
            Unit::Ops,
            report.result.trace.len() as f64,
            1,
        ),
        tag.value(
            "runs of candidate traces",
            Unit::Runs,
            report.result.attempts as f64,
            1,
        ),
        tag.value(
            "time to minimize",
            Unit::Seconds,
            report.elapsed.as_secs_f64(),
            1,
        ),
    ])
}
