//! The judged guest as the trace machinery sees it: [`trace::Target`] (a
//! batch at a time, checks on demand) and [`trace::Executor`] (a whole
//! trace from a fresh state), for `replay`, `check`, the minimizer and the
//! CI job: one async way to drive a guest, the same batches and check
//! points whichever runs it.

use protocol::Request;
use trace::replay::{BatchRun, Depth, RunOptions};
use trace::{Executor, Failure, Outcome, Trace};

use super::{JudgeOptions, JudgedVm};
use crate::session::VmConfig;

impl trace::Target for JudgedVm {
    async fn batch(&mut self, first: usize, requests: &[Request], predict: bool) -> BatchRun {
        debug_assert_eq!(first, self.index(), "operations run in order");
        self.run_batch(requests, predict).await
    }

    async fn check(&mut self, last: Option<usize>, depth: Depth) -> Result<(), Failure> {
        self.check_at(last, depth == Depth::Full).await.map(drop)
    }
}

/// Whether an [`Executor`] boots a guest for every trace or reuses one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// A fresh guest per trace, shut down after it (exit 33 checked).
    FreshBoot,
    /// One guest, `Reset` (judged) between traces; a new one after any
    /// failure or when a trace asks for another RAM size or other files. A
    /// failure seen on a guest that was reset is run again on a fresh boot,
    /// and that run's outcome is the answer: a reproducer must fail from
    /// boot, as `replay` runs it, not because of what an earlier trace
    /// left behind (a grown kernel heap, say). A reset costs about 4 ms
    /// where a boot costs about 170 ms, and most of a minimizer's
    /// candidates pass.
    ResetBetween,
}

/// A [`trace::Executor`] over real guests: each trace runs judged by the
/// model, with its batches and check cadence (or `run`'s), and a full
/// check at its end.
#[derive(Debug)]
pub struct JudgedExecutor {
    pub config: VmConfig,
    pub opts: JudgeOptions,
    pub reuse: Reuse,
    pub run: RunOptions,
    vm: Option<JudgedVm>,
}

impl JudgedExecutor {
    /// An executor that runs each trace with its own cadence and checks
    /// memory at its end.
    pub fn new(config: VmConfig, opts: JudgeOptions, reuse: Reuse) -> Self {
        JudgedExecutor {
            config,
            opts,
            reuse,
            run: RunOptions::default(),
            vm: None,
        }
    }

    /// A guest in the boot state for `trace`: the kept one after a judged
    /// `Reset` ([`Fresh::Reset`]), else a fresh boot.
    async fn prepare(&mut self, trace: &Trace) -> Result<(JudgedVm, Fresh), Failure> {
        let config = crate::replay::config_for(&self.config, trace);
        if let Some(mut vm) = self.vm.take() {
            let same = vm.vm().config().ram_mib == config.ram_mib
                && vm.vm().config().files == config.files;
            if same {
                match vm.reset().await {
                    Ok(()) => return Ok((vm, Fresh::Reset)),
                    Err(f) => tracing::warn!("reset failed, booting a fresh guest: {f}"),
                }
            }
        }
        let vm = JudgedVm::start(&config, self.opts.clone()).await?;
        Ok((vm, Fresh::Boot))
    }

    /// Runs `trace` once on a prepared guest; keeps the guest for the next
    /// trace when it passed and guests are reused.
    async fn run_once(&mut self, trace: &Trace) -> (Outcome, Fresh) {
        let (mut vm, fresh) = match self.prepare(trace).await {
            Ok(prepared) => prepared,
            Err(f) => return (Outcome::Failed(f), Fresh::Boot),
        };
        let outcome = match trace::run_outcome(trace, &mut vm, self.run).await {
            Outcome::Passed => match self.reuse {
                Reuse::ResetBetween => {
                    self.vm = Some(vm);
                    Outcome::Passed
                }
                Reuse::FreshBoot => match vm.finish().await {
                    Ok(()) => Outcome::Passed,
                    Err(f) => Outcome::Failed(f),
                },
            },
            failed => failed,
        };
        (outcome, fresh)
    }
}

/// How the guest a trace ran on came to its boot state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fresh {
    Boot,
    Reset,
}

impl Executor for JudgedExecutor {
    async fn run(&mut self, trace: &Trace) -> Outcome {
        match self.run_once(trace).await {
            // A failure after a reset is answered only if a fresh boot
            // shows it too (the guest it failed on is gone: the next
            // run boots).
            (Outcome::Failed(_), Fresh::Reset) => self.run_once(trace).await.0,
            (outcome, _) => outcome,
        }
    }

    async fn answers(&mut self, trace: &Trace) -> Vec<protocol::Response> {
        let Ok((mut vm, _)) = self.prepare(trace).await else {
            return Vec::new();
        };
        let mut answers = Vec::with_capacity(trace.len());
        let report = trace::run(trace, &mut vm, self.run, &mut |step| {
            answers.extend(step.answer.clone());
        })
        .await;
        if report.outcome == Outcome::Passed && self.reuse == Reuse::ResetBetween {
            self.vm = Some(vm);
        }
        answers
    }
}
