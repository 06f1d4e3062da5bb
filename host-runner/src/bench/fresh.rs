//! Fresh-state cost as the fuzzer pays it: a judged guest (the campaign's
//! judge options) runs one fuzz sequence at the campaign defaults, then
//! the judged reset (`Reset` and `Stats` judged, again while a `Reset`
//! gave back many heap pages, a new model, the memory check after it) is
//! timed (the guest's row sums the rounds' round trips; its name is the
//! one earlier benches' JSON has); beside it, the judged start of a new guest
//! (boot, `Hello`, model), the other way to a fresh state.

use std::time::Instant;

use super::report::{Figure, Section, Tag, Unit};
use super::{BenchError, BenchPlan};
use crate::fuzz::sequence::{run_sequence, SequenceSpec};
use crate::fuzz::FuzzArgs;
use crate::judge::{JudgeOptions, JudgedVm};
use crate::session::VmConfig;

fn failed(what: &str, failure: trace::Failure) -> BenchError {
    BenchError::Failed {
        stage: format!("fresh state, {what}"),
        failure,
    }
}

/// `plan.runs` times: start a judged guest (timed), run sequence
/// `plan.seed + run` (the fuzzer's defaults: operations, batch, check
/// cadence), then the judged reset (timed).
pub async fn figures(config: &VmConfig, plan: &BenchPlan) -> Result<Vec<Figure>, BenchError> {
    let defaults = FuzzArgs::default();
    let (mut starts, mut resets, mut ops) = (Vec::new(), Vec::new(), Vec::new());
    let (mut guest, mut model, mut check) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..plan.runs.max(1) {
        let t = Instant::now();
        let mut vm = JudgedVm::start(config, JudgeOptions::campaign(defaults.jobs))
            .await
            .map_err(|f| failed("start", f))?;
        starts.push(t.elapsed().as_secs_f64() * 1e3);
        let spec = SequenceSpec {
            seed: plan.seed.wrapping_add(run as u64),
            gen: trace::GenConfig {
                ops: defaults.ops,
                ram_mib: config.ram_mib,
                files: config.files.clone(),
                ..trace::GenConfig::default()
            },
            batch: defaults.batch,
            check_every: defaults.check_every,
            mutant: None,
            deadline: None,
        };
        let seq = run_sequence(&mut vm, &spec, None)
            .await
            .map_err(|e| crate::Error::io("bench, fresh state: the sequence's log", e))?;
        if let Some(f) = seq.failure {
            return Err(failed(&format!("sequence of seed {:#x}", spec.seed), f));
        }
        ops.push(seq.ops.len() as f64);
        let t = Instant::now();
        vm.reset().await.map_err(|f| failed("reset", f))?;
        resets.push(t.elapsed().as_secs_f64() * 1e3);
        let parts = vm.last_reset();
        guest.push(parts.guest.as_secs_f64() * 1e3);
        model.push(parts.model.as_secs_f64() * 1e3);
        check.push(parts.check.as_secs_f64() * 1e3);
        vm.finish().await.map_err(|f| failed("shutdown", f))?;
    }
    let tag = Tag::of(Section::FreshState, config);
    let rows: [(&str, Unit, &[f64]); 6] = [
        (
            "judged reset after a fuzz sequence (reset, stats, check)",
            Unit::Millis,
            &resets,
        ),
        (
            "  of which the guest's Reset and Stats (one batch's round trip)",
            Unit::Millis,
            &guest,
        ),
        (
            "  of which judging them and the fresh model",
            Unit::Millis,
            &model,
        ),
        (
            "  of which the memory check of the fresh state",
            Unit::Millis,
            &check,
        ),
        (
            "judged start of a new guest (boot, hello, model)",
            Unit::Millis,
            &starts,
        ),
        (
            "operations in the sequence before the reset",
            Unit::Ops,
            &ops,
        ),
    ];
    let out = rows
        .into_iter()
        .filter_map(|(name, unit, samples)| tag.median(name, unit, samples))
        .collect();
    Ok(out)
}
