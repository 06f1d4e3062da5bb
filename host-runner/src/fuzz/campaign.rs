//! The campaign: `--jobs` tasks, each with its own judged guest, taking
//! sequence numbers from one [`SequenceSource`]; a fresh state per
//! sequence; failures saved first, then minimized.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use trace::recorder::failure_path;
use trace::{Failure, GenConfig, Generator, Signature, Trace};

use super::fresh::Fresh;
use super::history::since_boot_path;
use super::plan::{sequence_seed, SequenceSource};
use super::progress::{median, Goal, Progress};
use super::sequence::{run_sequence, SequenceSpec};
use super::summary::{FoundFailure, FreshState, FuzzArgs, Summary};
use crate::judge::target::Reuse;
use crate::judge::{is_runner_failure, JudgeOptions};
use crate::minimize::{minimize_trace, step_line, MinimizeError, MinimizeOptions, MinimizeReport};
use crate::session::VmConfig;

/// Why a campaign could not go on (a guest bug is a failure in the
/// summary, not an error).
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("writing {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the guest did not start: {0}")]
    Boot(Failure),
    #[error("the runner failed twice on sequence {k}: {failure}")]
    Runner { k: u64, failure: Failure },
}

/// What the jobs share.
pub(super) struct Shared {
    pub config: VmConfig,
    args: FuzzArgs,
    seed: u64,
    source: SequenceSource,
    pub progress: Progress,
    deadline: Option<Instant>,
    stop: AtomicBool,
    found: Mutex<Vec<FoundFailure>>,
    minimized: Mutex<HashSet<Signature>>,
    replay: String,
    /// Each job's choice of fresh state, and why.
    fresh_notes: Mutex<Vec<String>>,
}

impl Shared {
    pub fn judge(&self) -> JudgeOptions {
        JudgeOptions {
            check_after_reset: true,
            ..JudgeOptions::default()
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(super) fn io(&self, path: PathBuf) -> impl FnOnce(std::io::Error) -> FuzzError {
        move |source| FuzzError::Io { path, source }
    }

    /// Saves the failing trace (atomically: before anything else), and
    /// beside it `since_boot` (the same failure after everything the guest
    /// received since it booted) when the sequence ran after a reset;
    /// reports it, and minimizes it if its signature is new: the sequence
    /// alone, or the history when the sequence alone passes on a fresh
    /// guest (the reset left some state behind).
    pub async fn capture(&self, trace: Trace, since_boot: Option<Trace>) -> Result<(), FuzzError> {
        let started = Instant::now();
        let r = self.capture_timed(trace, since_boot).await;
        *self.progress.capturing.lock().expect("not poisoned") += started.elapsed();
        r
    }

    async fn capture_timed(
        &self,
        trace: Trace,
        since_boot: Option<Trace>,
    ) -> Result<(), FuzzError> {
        let failure = trace.header.failure.clone().expect("a failing trace");
        let path = failure_path(&self.args.out, &failure, &trace);
        trace::save_atomically(&path, &trace).map_err(self.io(path.clone()))?;
        let history = match since_boot {
            Some(t) => {
                let p = since_boot_path(&path);
                trace::save_atomically(&p, &t).map_err(self.io(p.clone()))?;
                Some((p, t))
            }
            None => None,
        };
        let n = self.progress.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if self.args.max_failures > 0 && n >= self.args.max_failures {
            self.stop.store(true, Ordering::Relaxed);
        }
        self.progress.println(format!(
            "FAILED: {failure}\n  saved: {}\n  reproduce: {} {}",
            path.display(),
            self.replay,
            path.display()
        ));
        if let Some((p, t)) = &history {
            self.progress.println(format!(
                "  the sequence ran after a reset; with everything before it since boot \
                 ({} ops): {}",
                t.len(),
                p.display()
            ));
        }
        let new = self
            .minimized
            .lock()
            .expect("not poisoned")
            .insert(failure.signature());
        let minimized = if new && !self.args.no_minimize {
            let mut r = self.minimize(trace.clone(), &path).await;
            if let (Err(MinimizeError::Passes { .. }), Some((p, t))) = (&r, history) {
                self.progress.println(format!(
                    "  the sequence alone passes on a fresh guest: minimizing {} instead",
                    p.display()
                ));
                r = self.minimize(t, &p).await;
            }
            match &r {
                Ok(m) => self.progress.println(format!(
                    "  {m}\n  reproduce: {} {}",
                    self.replay,
                    m.path.display()
                )),
                Err(e) => self.progress.println(format!("  not minimized: {e}")),
            }
            Some(r.map_err(|e| e.to_string()))
        } else {
            None
        };
        self.found.lock().expect("not poisoned").push(FoundFailure {
            failure,
            path,
            ops: trace.len(),
            minimized,
        });
        Ok(())
    }
}

impl Shared {
    async fn minimize(
        &self,
        trace: Trace,
        path: &std::path::Path,
    ) -> Result<MinimizeReport, MinimizeError> {
        let opts = MinimizeOptions {
            judge: self.judge(),
            reuse: Reuse::FreshBoot,
            duration: self.args.minimize_duration,
            check_every: None,
        };
        let out = self.progress.printer();
        let log = move |s: &trace::minimize::Step| out.println(step_line(s));
        minimize_trace(&self.config, trace, path, &opts, log).await
    }
}

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
    while !s.stopping() {
        let Some(k) = retry.or(job.probe_due()).or_else(|| s.source.take()) else {
            break;
        };
        let spec = SequenceSpec {
            seed: sequence_seed(s.seed, k),
            gen: gen.clone(),
            batch: s.args.batch,
            check_every: s.args.check_every,
        };
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
            .batches
            .fetch_add(run.batches() as u64, Ordering::Relaxed);
        s.progress.sequences.fetch_add(1, Ordering::Relaxed);
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
        let merged = s
            .progress
            .reached
            .lock()
            .expect("not poisoned")
            .merge(&run.reached);
        if let Err(e) = merged {
            tracing::warn!("sequence {k}: coverage not counted: {e}");
        }
        match &run.failure {
            None => {
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
                tracing::warn!("sequence {k}: {f}; running it again on a fresh guest");
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
                let header = trace::TraceHeader {
                    failure: Some(f),
                    ..prev.header
                };
                s.capture(Trace::from_ops(header, prev.ops), None).await?;
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
    let shared = Arc::new(Shared {
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
    });
    // One local task per job: a judged guest's futures are not `Send`.
    // The guests run in their own QEMU processes and the minimizer on
    // blocking threads, so one thread drives them all.
    let local = tokio::task::LocalSet::new();
    let jobs: Vec<_> = (0..args.jobs.max(1))
        .map(|i| local.spawn_local(job(shared.clone(), i)))
        .collect();
    let mut results = None;
    local
        .run_until(shared.progress.tick(goal, async {
            results = Some(futures::future::join_all(jobs).await);
        }))
        .await;
    for r in results.unwrap_or_default() {
        r.expect("a fuzz job does not panic")?;
    }
    let p = &shared.progress;
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
    Ok(Summary {
        seed,
        shard: args.shard,
        jobs: args.jobs.max(1),
        elapsed: p.elapsed(),
        capturing,
        sequences: p.sequences.load(Ordering::Relaxed),
        ops: p.ops.load(Ordering::Relaxed),
        batches: p.batches.load(Ordering::Relaxed),
        boot: median(&boots).map(|m| (m, boots.len())),
        reset: median(&resets).map(|m| (m, resets.len())),
        fresh,
        failures: found,
        replay: shared.replay.clone(),
        coverage,
        timings,
        reached,
    })
}
