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
    /// failure or when a trace asks for another RAM size or other files.
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
    /// `Reset`, else a fresh boot.
    async fn prepare(&mut self, trace: &Trace) -> Result<JudgedVm, Failure> {
        let config = crate::replay::config_for(&self.config, trace);
        if let Some(mut vm) = self.vm.take() {
            let same = vm.vm().config().ram_mib == config.ram_mib
                && vm.vm().config().files == config.files;
            if same {
                match vm.reset().await {
                    Ok(()) => return Ok(vm),
                    Err(f) => tracing::warn!("reset failed, booting a fresh guest: {f}"),
                }
            }
        }
        JudgedVm::start(&config, self.opts.clone()).await
    }
}

impl Executor for JudgedExecutor {
    async fn run(&mut self, trace: &Trace) -> Outcome {
        let mut vm = match self.prepare(trace).await {
            Ok(vm) => vm,
            Err(f) => return Outcome::Failed(f),
        };
        match trace::run_outcome(trace, &mut vm, self.run).await {
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
        }
    }

    async fn answers(&mut self, trace: &Trace) -> Vec<protocol::Response> {
        let Ok(mut vm) = self.prepare(trace).await else {
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
