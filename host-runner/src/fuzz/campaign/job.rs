//! One job of a campaign: its judged guest in a fresh state per
//! sequence, each sequence's run counted and offered to the corpus, a
//! hang run again before it counts, and every failure captured.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use trace::{Failure, FailureKind, GenConfig, Generator};

use super::shared::Shared;
use crate::fuzz::corpus::Mutant;
use crate::fuzz::error::FuzzError;
use crate::fuzz::fresh::Fresh;
use crate::fuzz::plan::sequence_seed;
use crate::fuzz::sequence::{run_sequence, SequenceSpec};
use crate::judge::is_runner_failure;

/// One job: sequences until the source, the deadline or the failure limit
/// says stop.
pub(super) async fn job(s: Arc<Shared>, index: usize) -> Result<(), FuzzError> {
    let log_path = s.args.out.join(format!("running-job{index}.jsonl"));
    let gen = GenConfig {
        ops: s.args.ops,
        ram_mib: s.config.ram_mib,
        files: s.config.files.clone(),
        swarm: !s.args.no_swarm,
        ..GenConfig::default()
    };
    let mut log_header = Generator::new(s.seed, gen.clone()).header();
    log_header.seed = None;
    log_header.note = Some(format!(
        "in flight: what job {index} of campaign seed {:#x} sent its guest since it booted; \
         batches and check points are comments, so it replays one operation at a time",
        s.seed
    ));
    let mut job = Fresh::new(s.args.fresh, log_path.clone(), log_header);
    let mut retry = None;
    // The mutants of the latest sequences, so that a sequence run again
    // (a retry, the fresh-state probe) is the same sequence.
    let mut recent: Vec<(u64, Option<Mutant>)> = Vec::new();
    // A sequence that hung, running again with twice the timeout, and
    // where its first run's trace waits for the verdict.
    let mut hung: Option<(Failure, PathBuf)> = None;
    while !s.stopping() {
        // A sequence run again (a retry, the fresh-state probe) is work
        // done, but not another sequence.
        let again = retry.or(job.probe_due());
        let Some(k) = again.or_else(|| s.source.take()) else {
            break;
        };
        let seed = sequence_seed(s.seed, k);
        let mutant = match recent.iter().find(|r| r.0 == k) {
            Some((_, m)) => m.clone(),
            None => {
                let m = s.mutant(seed, &gen);
                if recent.len() == 8 {
                    recent.remove(0);
                }
                recent.push((k, m.clone()));
                m
            }
        };
        let spec = SequenceSpec {
            seed,
            gen: gen.clone(),
            batch: s.args.batch,
            check_every: s.args.check_every,
            mutant,
            deadline: s.deadline,
        };
        if spec.mutant.is_some() {
            s.mutants.fetch_add(1, Ordering::Relaxed);
        }
        let fresh_started = Instant::now();
        let mut target = job.guest(&s).await?;
        let fresh = fresh_started.elapsed();
        let log = job.since_boot().log();
        log.comment(&format!("sequence {k}, seed {:#x}", spec.seed))
            .map_err(s.io(log_path.clone()))?;
        let run = run_sequence(&mut target, &spec, Some(log))
            .await
            .map_err(s.io(log_path.clone()))?;
        s.progress
            .ops
            .fetch_add(run.ops.len() as u64, Ordering::Relaxed);
        s.progress
            .pages
            .fetch_add(run.coverage.pages(), Ordering::Relaxed);
        s.progress
            .batches
            .fetch_add(run.batches() as u64, Ordering::Relaxed);
        if again.is_none() {
            s.progress.sequences.fetch_add(1, Ordering::Relaxed);
        }
        s.progress
            .coverage
            .lock()
            .expect("not poisoned")
            .merge(&run.coverage);
        {
            let mut t = s.progress.timings.lock().expect("not poisoned");
            *t += run.timings;
            t.fresh += fresh;
        }
        let (novelty, merged) = {
            let mut seen = s.progress.reached.lock().expect("not poisoned");
            (
                run.reached.novelty(&seen, s.guidance.as_ref()),
                seen.merge(&run.reached),
            )
        };
        if let Err(e) = merged {
            tracing::warn!("sequence {k}: coverage not counted: {e}");
        }
        if let Some((first, unconfirmed)) = hung.take() {
            // Whatever the rerun shows, the next sequence boots afresh with
            // the usual timeout.
            job.timeout_scale = 1;
            job.vm = None;
            retry = None;
            match &run.failure {
                None => {
                    s.settle_unconfirmed(&unconfirmed);
                    s.environment_fault(format!(
                        "sequence {k}: {first}; it passed on a fresh boot with twice the \
                         timeout: the machine was slow, not the guest stuck"
                    ));
                    continue;
                }
                Some(f) if is_runner_failure(f) => {
                    s.progress.println(format!(
                        "sequence {k}: the hang stays unconfirmed: {}",
                        unconfirmed.display()
                    ));
                    return Err(FuzzError::Runner {
                        k,
                        failure: f.clone(),
                    });
                }
                Some(_) => {
                    // Confirmed: the rerun's failure is saved below, then
                    // the unconfirmed copy goes.
                    let trace = run.failing_trace().expect("failed");
                    let since_boot = job.since_boot().with(&trace);
                    s.capture(trace, since_boot).await?;
                    s.settle_unconfirmed(&unconfirmed);
                    continue;
                }
            }
        }
        match &run.failure {
            Some(f) if f.kind == FailureKind::Hang && retry.is_none() => {
                let path = s.save_unconfirmed(run.failing_trace().expect("failed"))?;
                s.progress.println(format!(
                    "sequence {k}: {f}; saved as unconfirmed: {}; running it again on a fresh \
                     boot with twice the timeout (a slow machine, or a hang?)",
                    path.display()
                ));
                hung = Some((f.clone(), path));
                job.timeout_scale = 2;
                retry = Some(k);
            }
            None => {
                let kept = s.corpus.lock().expect("not poisoned").offer(
                    &run.trace(),
                    novelty,
                    format!("sequence {k}"),
                );
                if let Err(e) = kept {
                    tracing::warn!("sequence {k}: not written to the corpus: {e}");
                }
                if let Some(note) = job.passed(k, &run) {
                    s.progress.println(format!(
                        "fuzz job {index}: fresh state per sequence: {note}"
                    ));
                    s.fresh_notes
                        .lock()
                        .expect("not poisoned")
                        .push(format!("job {index}: {note}"));
                }
                job.vm = Some(target);
                job.prev = Some(run);
                retry = None;
            }
            Some(f) if is_runner_failure(f) => {
                if retry.is_some() {
                    return Err(FuzzError::Runner {
                        k,
                        failure: f.clone(),
                    });
                }
                s.environment_fault(format!(
                    "sequence {k}: {f}; running it again on a fresh boot"
                ));
                retry = Some(k);
            }
            Some(_) => {
                let trace = run.failing_trace().expect("failed");
                let since_boot = job.since_boot().with(&trace);
                s.capture(trace, since_boot).await?;
                drop(target);
                retry = None;
            }
        }
    }
    if let Some(vm) = job.vm.take() {
        if let Err(f) = vm.finish().await {
            if let Some(prev) = job.prev.take().filter(|_| !is_runner_failure(&f)) {
                let mut t = prev.trace();
                t.header.failure = Some(f);
                s.capture(t, None).await?;
            }
        }
    }
    let _ = std::fs::remove_file(&log_path);
    Ok(())
}
