//! The synchronous trace machinery over the async [`JudgedVm`]:
//! [`trace::replay::Session`], [`trace::replay::Judge`] and
//! [`trace::Executor`].
//!
//! `trace::replay` and `trace::minimize` are plain loops; the guest is
//! async. The bridge blocks on the runtime's [`Handle`] inside
//! [`tokio::task::block_in_place`], so these run either on a blocking
//! thread (`tokio::task::spawn_blocking`, the usual way: see
//! [`replay_trace`]) or on a worker of the multi-thread runtime. They
//! panic on a current-thread runtime's own thread (use `spawn_blocking`).

use std::cell::RefCell;
use std::future::Future;

use tokio::runtime::Handle;
use trace::replay::{replay, Judge, ReplayReport, Session, StepRecord};
use trace::{Executor, Failure, Outcome, Trace};

use super::{JudgeOptions, JudgedVm};
use crate::session::VmConfig;

/// Runs `f` to completion from synchronous code (see the module docs).
pub fn block_on<F: Future>(handle: &Handle, f: F) -> F::Output {
    tokio::task::block_in_place(|| handle.block_on(f))
}

/// A [`JudgedVm`] seen by `trace::replay` as both its session (sending)
/// and its judge (the model, and the memory check every
/// `check_every` operations).
#[derive(Debug)]
pub struct TraceRun<'a> {
    vm: RefCell<&'a mut JudgedVm>,
    handle: Handle,
}

/// The sending half of a [`TraceRun`].
#[derive(Debug)]
pub struct RunSession<'r, 'a>(&'r TraceRun<'a>);
/// The judging half of a [`TraceRun`].
#[derive(Debug)]
pub struct RunJudge<'r, 'a>(&'r TraceRun<'a>);

impl<'a> TraceRun<'a> {
    pub fn new(vm: &'a mut JudgedVm, handle: Handle) -> Self {
        TraceRun {
            vm: RefCell::new(vm),
            handle,
        }
    }

    /// The two halves `trace::replay` takes.
    pub fn halves(&self) -> (RunSession<'_, 'a>, RunJudge<'_, 'a>) {
        (RunSession(self), RunJudge(self))
    }

    /// Replays `trace` (from the guest's current state: fresh or reset),
    /// telling `on_step` about every step; stops at the first failure.
    pub fn replay(&self, trace: &Trace, on_step: &mut dyn FnMut(&StepRecord)) -> ReplayReport {
        let (mut session, mut judge) = self.halves();
        replay(trace, &mut session, Some(&mut judge), on_step)
    }
}

impl Session for RunSession<'_, '_> {
    fn request(
        &mut self,
        _index: usize,
        request: &protocol::Request,
    ) -> Result<protocol::Response, Failure> {
        let mut vm = self.0.vm.borrow_mut();
        block_on(&self.0.handle, vm.send(request))
    }
}

impl Judge for RunJudge<'_, '_> {
    fn judge(
        &mut self,
        _index: usize,
        request: &protocol::Request,
        got: &protocol::Response,
    ) -> Result<Option<protocol::Response>, Failure> {
        let mut vm = self.0.vm.borrow_mut();
        block_on(&self.0.handle, vm.judge(request, got))
    }
}

/// Replays `trace` on `vm` on a blocking thread; gives the VM back with
/// the report. `on_step` sees every step as it is judged.
pub async fn replay_trace(
    mut vm: JudgedVm,
    trace: Trace,
    mut on_step: impl FnMut(&StepRecord) + Send + 'static,
) -> (JudgedVm, ReplayReport) {
    let handle = Handle::current();
    tokio::task::spawn_blocking(move || {
        let report = TraceRun::new(&mut vm, handle).replay(&trace, &mut on_step);
        (vm, report)
    })
    .await
    .expect("the replay thread does not panic")
}

/// Whether an [`Executor`] boots a guest for every trace or reuses one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    /// A fresh guest per trace, shut down after it (exit 33 checked).
    FreshBoot,
    /// One guest, `Reset` (judged) between traces; a new one after any
    /// failure or when a trace asks for another RAM size.
    ResetBetween,
}

/// A [`trace::Executor`] over real guests: each trace runs judged by the
/// model, with a memory check every `check_every` operations and (if
/// `final_check`) at its end. Call [`Executor::run`] from a blocking thread
/// (`spawn_blocking`), as the minimizer is run.
#[derive(Debug)]
pub struct JudgedExecutor {
    pub config: VmConfig,
    pub opts: JudgeOptions,
    pub reuse: Reuse,
    pub final_check: bool,
    handle: Handle,
    vm: Option<JudgedVm>,
}

impl JudgedExecutor {
    /// An executor on the runtime of `handle`, checking memory at the end
    /// of every trace.
    pub fn new(config: VmConfig, opts: JudgeOptions, reuse: Reuse, handle: Handle) -> Self {
        JudgedExecutor {
            config,
            opts,
            reuse,
            final_check: true,
            handle,
            vm: None,
        }
    }

    /// A guest in the boot state for `trace`: the kept one after a judged
    /// `Reset`, else a fresh boot.
    async fn prepare(&mut self, trace: &Trace) -> Result<JudgedVm, Failure> {
        let mut config = self.config.clone();
        if let Some(mib) = trace.header.ram_mib {
            config.ram_mib = mib;
        }
        if let Some(mut vm) = self.vm.take() {
            if vm.vm().config().ram_mib == config.ram_mib {
                match vm.reset().await {
                    Ok(()) => return Ok(vm),
                    Err(f) => tracing::warn!("reset failed, booting a fresh guest: {f}"),
                }
            }
        }
        JudgedVm::start(&config, self.opts.clone()).await
    }

    /// The end of a passing trace: the final check, then keep or shut down.
    async fn conclude(&mut self, mut vm: JudgedVm, trace: &Trace) -> Outcome {
        if self.final_check && !trace.is_empty() {
            if let Err(f) = vm.check().await {
                return Outcome::Failed(f);
            }
        }
        match self.reuse {
            Reuse::ResetBetween => {
                self.vm = Some(vm);
                Outcome::Passed
            }
            Reuse::FreshBoot => match vm.finish().await {
                Ok(()) => Outcome::Passed,
                Err(f) => Outcome::Failed(f),
            },
        }
    }
}

impl Executor for JudgedExecutor {
    fn run(&mut self, trace: &Trace) -> Outcome {
        let handle = self.handle.clone();
        let mut vm = match block_on(&handle, self.prepare(trace)) {
            Ok(vm) => vm,
            Err(f) => return Outcome::Failed(f),
        };
        let outcome = {
            let run = TraceRun::new(&mut vm, handle.clone());
            let (mut s, mut j) = run.halves();
            trace::replay::run_trace(trace, &mut s, Some(&mut j))
        };
        match outcome {
            Outcome::Passed => block_on(&handle, self.conclude(vm, trace)),
            failed => failed,
        }
    }
}
