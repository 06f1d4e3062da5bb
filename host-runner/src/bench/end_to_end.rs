//! End to end: short fuzz campaigns through the fuzzer's own code
//! (`fuzz::run`, its defaults but the duration, the jobs and a fixed
//! seed): checked operations per second and pages touched per second
//! (the pages the operations' ranges name), per `--jobs`.

use super::report::{Figure, Section, Tag, Unit};
use super::transport::secs;
use super::{BenchError, BenchPlan};
use crate::fuzz::FuzzArgs;
use crate::session::VmConfig;

/// `plan.campaign_runs` campaigns of `plan.fuzz_secs` for each of
/// `plan.fuzz_jobs`; a failure a campaign finds goes into `notes` (the
/// campaign stops at it, so its figures cover the time until then).
pub async fn figures(
    config: &VmConfig,
    plan: &BenchPlan,
    notes: &mut Vec<String>,
) -> Result<Vec<Figure>, BenchError> {
    let tag = Tag::of(Section::EndToEnd, config);
    let out_dir = tempfile::tempdir().map_err(|e| crate::Error::io("a temporary folder", e))?;
    let mut out = Vec::new();
    let mut rates = Vec::new();
    for &jobs in &plan.fuzz_jobs {
        let (mut ops, mut pages) = (Vec::new(), Vec::new());
        for run in 0..plan.campaign_runs.max(1) {
            let args = FuzzArgs {
                seed: Some(plan.seed.wrapping_add(run as u64 * 1_000_000)),
                duration: Some(secs(plan.fuzz_secs)),
                jobs,
                out: out_dir.path().join(format!("jobs{jobs}-run{run}")),
                no_minimize: true,
                ..FuzzArgs::default()
            };
            let summary = crate::fuzz::run(config, &args, "host-runner replay".into()).await?;
            for f in &summary.failures {
                notes.push(format!(
                    "end to end: the campaign of seed {:#x} (--jobs {jobs}) found a failure and \
                     stopped there: {}",
                    summary.seed,
                    f.failure.to_string().lines().next().unwrap_or_default()
                ));
            }
            ops.push(summary.ops_per_sec());
            pages.push(summary.pages_per_sec());
        }
        let o = tag.median(
            format!("--jobs {jobs}: checked operations"),
            Unit::OpsPerSec,
            &ops,
        );
        rates.push((jobs, o.clone()));
        out.extend(o);
        out.extend(tag.median(
            format!("--jobs {jobs}: pages touched"),
            Unit::PagesPerSec,
            &pages,
        ));
    }
    if let [(1, Some(one)), .., (n, Some(many))] = rates.as_slice() {
        out.push(tag.value(
            format!("--jobs {n} / --jobs 1 (checked operations/s)"),
            Unit::Ratio,
            many.value / one.value.max(1e-9),
            one.samples.min(many.samples),
        ));
    }
    Ok(out)
}
