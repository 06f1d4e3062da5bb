//! `host-runner minimize TRACE`: reproduce a failing trace on a fresh
//! guest, shrink it by delta debugging (operations, then arguments) to the
//! smallest trace that fails with the same signature, and save it beside
//! the original as `…-min.jsonl`. The fuzzer runs the same after each new
//! failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trace::minimize::Step;
use trace::recorder::minimized_path;
use trace::{Budget, Executor, Failure, Minimized, Outcome, Rate, Trace, TraceError};

use crate::exit_code::{Classify, ExitClass};
use crate::judge::target::{JudgedExecutor, Reuse};
use crate::judge::{is_runner_failure, JudgeOptions};
use crate::session::VmConfig;

/// How to minimize.
#[derive(Clone, Debug)]
pub struct MinimizeOptions {
    pub judge: JudgeOptions,
    /// A fresh boot per attempt, or `Reset` on one guest.
    pub reuse: Reuse,
    /// The whole search, reproduction included; the best trace found so
    /// far is kept when it runs out.
    pub duration: Duration,
    /// The check cadence of every attempt: `None`, the trace's own.
    pub check_every: Option<usize>,
    /// Runs of the minimized trace afterwards, to measure how reliably it
    /// reproduces (recorded as `reproduced` in its header; 0: none).
    pub reruns: u32,
}

/// What went wrong, other than the guest.
#[derive(Debug, thiserror::Error)]
pub enum MinimizeError {
    #[error("{}: {source}", .path.display())]
    Read { path: PathBuf, source: TraceError },
    #[error("{} does not fail on a fresh guest{}: nothing to minimize", .path.display(),
        .recorded.as_ref().map(|f| format!(" (it was saved for: {f})")).unwrap_or_default())]
    Passes {
        path: PathBuf,
        recorded: Option<Failure>,
    },
    #[error("the runner itself failed while reproducing {}: {failure}", .path.display())]
    Runner { path: PathBuf, failure: Failure },
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An unreadable trace is the input's fault; one that passes has nothing
/// for the VMM to answer for; the runner failing or writing is the
/// environment's.
impl Classify for MinimizeError {
    fn exit_class(&self) -> ExitClass {
        match self {
            MinimizeError::Read { .. } => ExitClass::Usage,
            MinimizeError::Passes { .. } => ExitClass::Passed,
            MinimizeError::Runner { .. } | MinimizeError::Write { .. } => ExitClass::Environment,
        }
    }
}

/// A finished minimization.
#[derive(Debug, Clone)]
pub struct MinimizeReport {
    /// The failure the original trace showed when run again.
    pub reproduced: Failure,
    pub original_ops: usize,
    pub result: Minimized,
    /// Where the minimized trace was saved.
    pub path: PathBuf,
    pub elapsed: Duration,
    /// How often the minimized trace reproduced when run again (`None`
    /// without reruns).
    pub rate: Option<Rate>,
}

impl MinimizeReport {
    /// The minimized trace reproduced in fewer than all of its reruns.
    pub fn is_flaky(&self) -> bool {
        self.rate.is_some_and(|r| r.is_flaky())
    }
}

impl std::fmt::Display for MinimizeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "minimized {} → {} ops in {} runs, {:.1} s{}: {}\n  signature: {}",
            self.original_ops,
            self.result.trace.len(),
            self.result.attempts + 1,
            self.elapsed.as_secs_f64(),
            if self.result.timed_out {
                " (time ran out: best so far)"
            } else {
                ""
            },
            self.path.display(),
            self.reproduced.signature()
        )?;
        match self.rate {
            Some(r) if r.is_flaky() => write!(
                f,
                "\n  FLAKY: reproduced in {r} runs of the minimized trace"
            ),
            Some(r) => write!(f, "\n  reproduced in {r} runs of the minimized trace"),
            None => Ok(()),
        }
    }
}

/// One accepted step, as the log line says it.
pub fn step_line(step: &Step) -> String {
    format!(
        "minimize: run {}: {} → {} ops",
        step.attempt, step.what, step.ops
    )
}

/// Reads, reproduces and minimizes the trace at `path`, and writes the
/// result to `…-min.jsonl` beside it (atomically). `log` sees each
/// accepted step.
pub async fn minimize_file(
    config: &VmConfig,
    path: &Path,
    opts: &MinimizeOptions,
    log: impl FnMut(&Step) + Send + 'static,
) -> Result<MinimizeReport, MinimizeError> {
    // Bytes, not a string: a line that is not UTF-8 is named by the parser.
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| MinimizeError::Read {
            path: path.to_owned(),
            source: TraceError::Io(e),
        })?;
    let trace = trace::parse(&bytes[..]).map_err(|source| MinimizeError::Read {
        path: path.to_owned(),
        source,
    })?;
    minimize_trace(config, trace, path, opts, log).await
}

/// [`minimize_file`] for a trace already read from `path`.
pub async fn minimize_trace(
    config: &VmConfig,
    trace: Trace,
    path: &Path,
    opts: &MinimizeOptions,
    mut log: impl FnMut(&Step),
) -> Result<MinimizeReport, MinimizeError> {
    let started = Instant::now();
    let budget = Budget::for_duration(opts.duration);
    let mut exec = JudgedExecutor::new(config.clone(), opts.judge.clone(), opts.reuse);
    exec.run.check_every = opts.check_every;
    let original = trace.clone();
    let reproduced = match exec.run(&trace).await {
        Outcome::Passed => {
            return Err(MinimizeError::Passes {
                path: path.to_owned(),
                recorded: original.header.failure.clone(),
            })
        }
        Outcome::Failed(f) => f,
    };
    if is_runner_failure(&reproduced) {
        return Err(MinimizeError::Runner {
            path: path.to_owned(),
            failure: reproduced,
        });
    }
    let target = reproduced.signature();
    let mut result = trace::minimize(&trace, &target, &mut exec, budget, &mut log).await;
    if let Some(recorded) = &original.header.failure {
        if recorded.signature() != reproduced.signature() {
            tracing::warn!(
                "{} was saved for «{}» but fails with «{}» on a fresh guest: minimizing that",
                path.display(),
                recorded.signature(),
                reproduced.signature()
            );
        }
    }
    let failure = result
        .steps
        .last()
        .map_or_else(|| reproduced.clone(), |s| s.failure.clone());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    result.trace.header.failure = Some(failure);
    let rate = if opts.reruns > 0 {
        let saved = result.trace.header.failure.clone().expect("set above");
        Some(trace::rerun(&result.trace, &saved, &mut exec, opts.reruns).await)
    } else {
        None
    };
    result.trace.header.reproduced = rate;
    let flaky = rate.is_some_and(|r| r.is_flaky());
    result.trace.header.note = Some(format!(
        "{}minimized from {name} ({} → {} ops)",
        if flaky {
            format!("FLAKY (reproduced {}): ", rate.expect("flaky"))
        } else {
            String::new()
        },
        original.len(),
        result.trace.len()
    ));
    let out = minimized_path(path, flaky);
    trace::save_atomically(&out, &result.trace).map_err(|source| MinimizeError::Write {
        path: out.clone(),
        source,
    })?;
    Ok(MinimizeReport {
        reproduced,
        original_ops: original.len(),
        result,
        path: out,
        elapsed: started.elapsed(),
        rate,
    })
}
