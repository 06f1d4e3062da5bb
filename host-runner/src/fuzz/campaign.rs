//! The campaign: `--jobs` jobs, each on a thread of its own (`threads`)
//! with its own judged guest, taking sequence numbers from one
//! [`SequenceSource`]; a fresh state per sequence; failures saved first,
//! then minimized. Here: the campaign's start and its summary; a job's
//! loop in `job`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::corpus::Corpus;
use super::error::FuzzError;
use super::plan::SequenceSource;
use super::progress::{median, Goal, Progress};
use super::summary::Summary;
use crate::args::fuzz::{FreshState, FuzzArgs};
use crate::session::VmConfig;
use shared::Shared;
use threads::JobThreads;

mod capture;
mod interrupted;
mod job;
pub(super) mod shared;
mod threads;

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
    // A signal stops the jobs where they are (their guests killed) and the
    // campaign reports what it did, naming the traces in flight.
    let (mut listener, _claim) = (crate::interrupt::Listener::new(), crate::interrupt::claim());
    let mut jobs = {
        let shared = shared.clone();
        JobThreads::start(args.jobs, move |i| job::job(shared, i))?
    };
    let mut results = Vec::new();
    let interrupted = tokio::select! {
        _ = shared.progress.tick(goal, async {
            results = jobs.finished().await;
        }) => None,
        signal = listener.recv() => Some(signal),
    };
    if interrupted.is_some() {
        jobs.cancel().await;
    }
    for r in results.into_iter().flatten() {
        r?;
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
        reset: super::progress::reset_median(&resets),
        reset_parts: super::progress::median_parts(&resets),
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
