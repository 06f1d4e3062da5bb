//! The campaign: `--jobs` tasks, each with its own judged guest, taking
//! sequence numbers from one [`SequenceSource`]; a fresh state per
//! sequence; failures saved first, then minimized.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use trace::{Failure, FailureKind, GenConfig, Generator};

use super::corpus::Corpus;
use super::error::FuzzError;
use super::fresh::Fresh;
use super::plan::{sequence_seed, SequenceSource};
use super::progress::{median, Goal, Progress};
use super::sequence::{run_sequence, SequenceSpec};
use super::summary::Summary;
use crate::args::fuzz::{FreshState, FuzzArgs};
use crate::judge::is_runner_failure;
use crate::session::VmConfig;
use shared::Shared;

mod capture;
mod interrupted;
pub(super) mod shared;

/// One job: sequences until the source, the deadline or the failure limit
/// says stop.
async fn job(s: Arc<Shared>, index: usize) -> Result<(), FuzzError> {
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
    let mut recent: Vec<(u64, Option<super::corpus::Mutant>)> = Vec::new();
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

/// The campaign seed when none is given: from the clock.
fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs a campaign on guests configured by `config`; `replay` is the
/// command line that replays a trace with this guest (shown with each
/// failure).
/// The guests boot with `args.files` (the trace headers name them).
pub async fn run(config: &VmConfig, args: &FuzzArgs, replay: String) -> Result<Summary, FuzzError> {
    let config = &VmConfig {
        files: args.files.0.clone(),
        ..config.clone()
    };
    let seed = args.seed.unwrap_or_else(clock_seed);
    let limit = args.sequences.or(if args.duration.is_none() {
        Some(100)
    } else {
        None
    });
    let goal = match (limit, args.duration) {
        (Some(n), _) => Goal::Sequences(n),
        (None, Some(d)) => Goal::Time(d),
        (None, None) => Goal::Sequences(100),
    };
    std::fs::create_dir_all(&args.out).map_err(|source| FuzzError::Io {
        path: args.out.clone(),
        source,
    })?;
    tracing::info!(
        "fuzz: seed {seed:#x}, shard {}, {} job(s), {} ops per sequence, memory check every {}, \
         files of {} pages; in-flight traces in {}",
        args.shard,
        args.jobs,
        args.ops,
        args.check_every,
        args.files,
        args.out.display()
    );
    let corpus = Corpus::open(
        args.corpus.as_deref(),
        &args.corpus_from,
        config.ram_mib,
        &config.files,
    )
    .map_err(|source| FuzzError::Io {
        path: args.corpus.clone().unwrap_or_default(),
        source,
    })?;
    let guidance = guidance(&config.kernel);
    let shared = Arc::new(Shared {
        guidance,
        config: config.clone(),
        args: args.clone(),
        seed,
        source: SequenceSource::new(args.shard, limit),
        progress: Progress::new(goal),
        deadline: args.duration.map(|d| Instant::now() + d),
        stop: AtomicBool::new(false),
        found: Mutex::new(Vec::new()),
        minimized: Mutex::new(HashSet::new()),
        replay,
        fresh_notes: Mutex::new(Vec::new()),
        corpus: Mutex::new(corpus),
        mutants: AtomicU64::new(0),
        environment: Mutex::new(Vec::new()),
        pending: Mutex::new(Vec::new()),
    });
    // One local task per job: a judged guest's futures are not `Send`.
    // The guests run in their own QEMU processes and the minimizer on
    // blocking threads, so one thread drives them all.
    let local = tokio::task::LocalSet::new();
    let jobs: Vec<_> = (0..args.jobs.max(1))
        .map(|i| local.spawn_local(job(shared.clone(), i)))
        .collect();
    let mut results = None;
    // A signal stops the jobs where they are (their guests killed) and the
    // campaign reports what it did, naming the traces in flight.
    let (mut listener, _claim) = (crate::interrupt::Listener::new(), crate::interrupt::claim());
    let interrupted = local
        .run_until(async {
            tokio::select! {
                _ = shared.progress.tick(goal, async {
                    results = Some(futures::future::join_all(jobs).await);
                }) => None,
                signal = listener.recv() => Some(signal),
            }
        })
        .await;
    drop(local);
    if interrupted.is_none() {
        for r in results.unwrap_or_default() {
            r.expect("a fuzz job does not panic")?;
        }
    }
    let p = &shared.progress;
    p.record_sample(true);
    let timeline = p.timeline.lock().expect("not poisoned").samples().to_vec();
    let (boots, resets) = (
        p.boots.lock().expect("not poisoned").clone(),
        p.resets.lock().expect("not poisoned").clone(),
    );
    let fresh = match args.fresh {
        FreshState::Boot => vec!["boot (--fresh boot)".to_string()],
        FreshState::Reset => vec!["reset (--fresh reset)".to_string()],
        FreshState::Auto => shared.fresh_notes.lock().expect("not poisoned").clone(),
    };
    let found = shared.found.lock().expect("not poisoned").clone();
    let coverage = p.coverage.lock().expect("not poisoned").clone();
    let timings = *p.timings.lock().expect("not poisoned");
    let capturing = *p.capturing.lock().expect("not poisoned");
    let reached = p.reached.lock().expect("not poisoned").clone();
    let corpus = {
        let c = shared.corpus.lock().expect("not poisoned");
        format!(
            "corpus: {} sequence(s) kept ({} read at the start, {} skipped, {} new{}); \
             {} mutant(s) run",
            c.len(),
            c.loaded,
            c.skipped,
            c.added,
            args.corpus
                .as_ref()
                .map_or(String::new(), |d| format!(", in {}", d.display())),
            shared.mutants.load(Ordering::Relaxed)
        )
    };
    let environment = shared.environment.lock().expect("not poisoned").clone();
    let in_flight = interrupted.map_or_else(Vec::new, |_| interrupted::in_flight(args, &shared));
    Ok(Summary {
        interrupted,
        in_flight,
        corpus,
        seed,
        shard: args.shard,
        jobs: args.jobs.max(1),
        elapsed: p.elapsed(),
        capturing,
        sequences: p.sequences.load(Ordering::Relaxed),
        ops: p.ops.load(Ordering::Relaxed),
        pages: p.pages.load(Ordering::Relaxed),
        batches: p.batches.load(Ordering::Relaxed),
        boot: median(&boots).map(|m| (m, boots.len())),
        reset: median(&resets).map(|m| (m, resets.len())),
        fresh,
        environment,
        failures: found,
        replay: shared.replay.clone(),
        coverage,
        timings,
        reached,
        timeline,
    })
}

/// The edges the corpus leaves out of what is new (the transport's waits,
/// whose counts follow the host's timing: `coverage::symbols`), read from
/// the kernel's ELF; without them (an ELF without a PC table or DWARF),
/// every edge counts, and the corpus may keep other sequences from one
/// run to the next.
fn guidance(kernel: &std::path::Path) -> Option<crate::coverage::Guidance> {
    match crate::coverage::symbols::KernelSymbols::load(kernel) {
        Ok(symbols) => Some(symbols.guidance()),
        Err(e) => {
            tracing::warn!(
                "fuzz: every guest edge guides the corpus, the transport's timing included \
                 (the kernel's symbols: {e})"
            );
            None
        }
    }
}
