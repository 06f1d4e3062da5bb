//! [`JudgedVm`]: a [`Vm`], the model that judges its answers, and the
//! memory check.

use oracle::{CheckReport, Checker, GuestMemory, Model};
use protocol::{Error as ProtoError, Hello, Privilege, Request, Response, MAX_BATCH};
use trace::replay::BatchRun;
use trace::{Failure, FailureKind};

use super::coverage::CoverageProbe;
use super::failure::failure_from;
use super::inspect::{inspect_by, with_paused_ram, MemoryCheck};
use std::time::Instant;

use super::timings::Timings;
use super::JudgeOptions;
use crate::session::{Vm, VmConfig};

/// A booted guest whose every answer the model judges. See the
/// [module docs](super).
#[derive(Debug)]
pub struct JudgedVm {
    vm: Vm,
    model: Model,
    hello: Hello,
    /// Index of the next operation.
    index: usize,
    opts: JudgeOptions,
    timings: Timings,
    /// The guest's coverage counters (`super::coverage`).
    coverage: CoverageProbe,
    /// The memory checker, with its record of the last clean check (for
    /// incremental checks); forgotten at `reset` and after a failed check.
    checker: Checker,
    /// What the last [`JudgedVm::reset`] spent, part by part.
    last_reset: ResetParts,
}

/// Where a judged reset's time goes (the bench's fresh-state rows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResetParts {
    /// `Reset` and `Stats`, one batch's round trip: the guest's work.
    pub guest: std::time::Duration,
    /// Judging the answers and making the fresh model.
    pub model: std::time::Duration,
    /// The memory check of the fresh state (none when the options ask for
    /// none).
    pub check: std::time::Duration,
}

impl JudgedVm {
    /// Boots the guest (with shared RAM when the options read memory from
    /// it), asks its layout and makes the model.
    pub async fn start(config: &VmConfig, opts: JudgeOptions) -> Result<JudgedVm, Failure> {
        let mut config = config.clone();
        if opts.memory == super::MemorySource::SharedRam {
            config.shared_ram = true;
        }
        let mut vm = Vm::boot(&config).await.map_err(failure_from)?;
        let hello = vm.hello().await.map_err(failure_from)?;
        let model = model_for(&hello, &config)?;
        let coverage = CoverageProbe::new(&hello, &vm);
        Ok(JudgedVm {
            vm,
            model,
            hello,
            index: 0,
            opts,
            timings: Timings::default(),
            coverage,
            checker: Checker::new(),
            last_reset: ResetParts::default(),
        })
    }

    /// The model, as of the last judged answer.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The guest's layout.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Where this guest's time went so far (the model, the guest, the
    /// checks); see [`Timings`].
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// The options.
    pub fn options(&self) -> &JudgeOptions {
        &self.opts
    }

    /// The guest itself, for what this type does not wrap (QMP, gdb).
    /// Requests sent through it are not judged and leave the model behind.
    pub fn vm(&mut self) -> &mut Vm {
        &mut self.vm
    }

    /// Index of the next operation.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A failure at operation `index`; a hang also kills QEMU (it would
    /// hold the serial line in an unknown state).
    async fn fail(&mut self, err: impl Into<crate::Error>, index: Option<usize>) -> Failure {
        let mut f = failure_from(err);
        f.op_index = index;
        if f.kind == FailureKind::Hang {
            let exit = self.vm.kill_qemu().await;
            f.message.push_str(&format!("; QEMU killed ({exit})"));
        }
        f
    }

    /// Sends `reqs` (the next operations) and judges every answer in order,
    /// with the model's predictions when `predict`: a single request goes
    /// alone, more as `Batch` frames of at most `MAX_BATCH` (a `Batch`
    /// among them must be answered `Error(NestedBatch)`). Stops at the first
    /// failure, which carries its operation's index; the answers before it
    /// are kept.
    pub async fn run_batch(&mut self, reqs: &[Request], predict: bool) -> BatchRun {
        let mut run = BatchRun::default();
        for chunk in reqs.chunks(MAX_BATCH) {
            let first = self.index;
            let t = Instant::now();
            let got = match chunk {
                [one] => self.vm.call(one.clone()).await.map(|a| vec![a]),
                _ => self.vm.batch(chunk.to_vec()).await,
            };
            self.timings.guest += t.elapsed();
            self.timings.batches += 1;
            let got = match got {
                Ok(a) => a,
                Err(e) => {
                    run.failure = Some(self.fail(e, Some(first)).await);
                    return run;
                }
            };
            let t = Instant::now();
            for (i, (req, answer)) in chunk.iter().zip(got).enumerate() {
                let index = first + i;
                let predicted = match (predict, req) {
                    (true, Request::Batch(_)) => Some(Response::Error(ProtoError::NestedBatch)),
                    (true, r) => match self.model.predict(r) {
                        oracle::Prediction::Exact(p) => Some(p),
                        _ => None,
                    },
                    (false, _) => None,
                };
                self.index = index + 1;
                let verdict = stale_check(index, &answer).and_then(|()| match req {
                    Request::Batch(_) if answer == Response::Error(ProtoError::NestedBatch) => Ok(()),
                    Request::Batch(_) => Err(Failure::new(
                        FailureKind::Divergence,
                        format!(
                            "operation {index}: a Batch inside a Batch: expected Error(NestedBatch), got {answer:?}"
                        ),
                        Some(index),
                    )),
                    _ => self.model.apply(index as u64, req, &answer).map_err(|d| {
                        // The model is unchanged by a divergence: what it
                        // predicts now is what it expected.
                        let expected = match self.model.predict(&d.request) {
                            oracle::Prediction::Exact(p) => Some(p),
                            _ => None,
                        };
                        Failure::new(FailureKind::Divergence, d.to_string(), Some(index))
                            .with_class(super::classes::answer(&d.request, expected.as_ref(), &d.got))
                    }),
                });
                run.answers.push(answer);
                run.predicted.push(predicted);
                if let Err(f) = verdict {
                    self.timings.model += t.elapsed();
                    run.failure = Some(f);
                    return run;
                }
            }
            self.timings.model += t.elapsed();
        }
        run
    }

    /// Sends one request and judges the answer.
    pub async fn step(&mut self, req: Request) -> Result<Response, Failure> {
        let mut run = self.run_batch(std::slice::from_ref(&req), false).await;
        match run.failure {
            Some(f) => Err(f),
            None => Ok(run.answers.pop().expect("one answer")),
        }
    }

    /// Sends requests as one batch and judges every answer as its own
    /// operation, in order (see [`JudgedVm::run_batch`]).
    pub async fn steps(&mut self, reqs: Vec<Request>) -> Result<Vec<Response>, Failure> {
        let run = self.run_batch(&reqs, false).await;
        match run.failure {
            Some(f) => Err(f),
            None => Ok(run.answers),
        }
    }

    /// The full memory check now: the full result, clean or not (a failure
    /// only when it could not be made).
    pub async fn inspect(&mut self) -> Result<MemoryCheck, Failure> {
        self.inspect_with(true, self.opts.tlb_check).await
    }

    /// The memory check: the checker's full check when `full` (or when the
    /// options ask for no incremental ones), else an incremental one when
    /// it has a record of the last clean check (`oracle::Checker`); with
    /// QEMU's view (CR3, `info tlb`) compared when `qemu` (full checks
    /// only). A check that is not clean, or could not be made, leaves no
    /// record: the next one is full.
    async fn inspect_with(&mut self, full: bool, qemu: bool) -> Result<MemoryCheck, Failure> {
        let t = Instant::now();
        let full = full || qemu || !self.opts.incremental;
        let memory = self.opts.memory;
        let at = self.index.checked_sub(1);
        let (checker, model, hello) = (&mut self.checker, &mut self.model, &self.hello);
        let check = |mem: &dyn GuestMemory| checker.check_model(mem, hello, model, full);
        let r = inspect_by(&self.vm, hello, memory, qemu, check).await;
        let spent = t.elapsed();
        self.timings.checks += spent;
        self.timings.check_count += 1;
        if full {
            self.timings.full_checks += spent;
            self.timings.full_count += 1;
        }
        if let Ok(c) = &r {
            self.timings.qemu_view += c.qemu_time;
        }
        if !r.as_ref().is_ok_and(MemoryCheck::is_clean) {
            self.checker.forget();
        }
        match r {
            Ok(c) => Ok(c),
            Err(e) => Err(self.fail(e, at).await),
        }
    }

    /// The memory check after operation `at`, full (with QEMU's view) or
    /// the one between batches (incremental: what changed since the last
    /// clean check): the report, or an `Invariant` failure listing every
    /// violation.
    pub async fn check_at(
        &mut self,
        at: Option<usize>,
        full: bool,
    ) -> Result<CheckReport, Failure> {
        self.check_with(at, full, full && self.opts.tlb_check).await
    }

    /// [`JudgedVm::check_at`] with the oracle's depth and QEMU's view
    /// chosen apart.
    async fn check_with(
        &mut self,
        at: Option<usize>,
        full: bool,
        qemu: bool,
    ) -> Result<CheckReport, Failure> {
        self.coverage.poll(&self.vm);
        let check = self.inspect_with(full, qemu).await?;
        if check.is_clean() {
            return Ok(check.report);
        }
        let after = at.map_or("at boot".to_string(), |i| format!("after operation {i}"));
        let message = format!(
            "memory check {after}: {} violation(s)\n{}",
            check.report.violations.len() + check.qemu.len(),
            check.violations_text()
        );
        Err(Failure::new(FailureKind::Invariant, message, at)
            .with_class(super::classes::invariant_class(&check)))
    }

    /// The full memory check now: the report when every invariant holds,
    /// else an `Invariant` failure listing every violation.
    pub async fn check(&mut self) -> Result<CheckReport, Failure> {
        self.check_at(self.index.checked_sub(1), true).await
    }

    /// Runs `f` on the paused guest's RAM (for decoding walks at a failure).
    pub async fn with_ram<T>(
        &mut self,
        f: impl FnOnce(&dyn GuestMemory, &Hello) -> T,
    ) -> Result<T, Failure> {
        let hello = self.hello.clone();
        let at = self.index.checked_sub(1);
        match with_paused_ram(&self.vm, self.opts.memory, |m| f(m, &hello)).await {
            Ok(t) => Ok(t),
            Err(e) => Err(self.fail(e, at).await),
        }
    }

    /// Back to the boot state: `Reset` and `Stats`, both judged (free
    /// frames plus heap pages must be the boot count), a fresh model,
    /// operation index 0, and a memory check if the options ask for one.
    /// Failures here carry no operation index.
    pub async fn reset(&mut self) -> Result<(), Failure> {
        let reqs = vec![
            Request::Reset {
                privilege: Privilege::Kernel,
            },
            Request::Stats,
        ];
        let t = Instant::now();
        let got = match self.vm.batch(reqs.clone()).await {
            Ok(a) => a,
            Err(e) => return Err(self.fail(e, None).await),
        };
        let guest = t.elapsed();
        let t = Instant::now();
        let bad = |m: String| Failure::new(FailureKind::Divergence, format!("reset: {m}"), None);
        for (req, answer) in reqs.iter().zip(&got) {
            stale_check(0, answer).map_err(|mut f| {
                f.op_index = None;
                f.message = format!("reset: {}", f.message);
                f
            })?;
            self.model
                .apply(0, req, answer)
                .map_err(|d| bad(d.to_string()))?;
        }
        match &got[1] {
            Response::Stats(s) if s.free_frames + s.heap_pages == s.boot_free_frames => {}
            other => {
                return Err(bad(format!(
                    "Stats after Reset: free_frames + heap_pages must equal boot_free_frames, got {other:?}"
                )))
            }
        }
        let reached = self.model.take_coverage();
        self.model = model_for(&self.hello, self.vm.config())?;
        self.model.add_coverage(&reached);
        self.index = 0;
        self.checker.forget();
        let model = t.elapsed();
        let t = Instant::now();
        if self.opts.check_after_reset {
            // A full check of the fresh state (QEMU's view aside, as
            // before): the record the sequence's incremental checks
            // compare with.
            self.check_with(None, true, false).await.map_err(|mut f| {
                f.message = format!("after reset: {}", f.message);
                f
            })?;
        }
        self.last_reset = ResetParts {
            guest,
            model,
            check: t.elapsed(),
        };
        Ok(())
    }

    /// What the last successful [`JudgedVm::reset`] spent, part by part.
    pub fn last_reset(&self) -> ResetParts {
        self.last_reset
    }

    /// What the guest's code and the model reached since the last call
    /// (or the boot): guest edges read from its counters now, and the
    /// model's transitions and events, carried across `reset`.
    pub fn take_coverage(&mut self) -> crate::coverage::Coverage {
        self.coverage.take(&self.vm, &mut self.model)
    }

    /// Shuts the guest down; QEMU must exit with 33.
    pub async fn finish(self) -> Result<(), Failure> {
        let at = self.index.checked_sub(1);
        self.vm.shutdown().await.map(drop).map_err(|e| {
            let mut f = failure_from(e);
            f.op_index = at;
            f.message = format!("at shutdown: {}", f.message);
            f
        })
    }
}

/// Invariant 8 as the guest's stale-translation probe found it
/// (`protocol::semantics`, **Stale translations**): a page the request made
/// not present still read through a TLB entry the VMM did not invalidate.
fn stale_check(index: usize, answer: &Response) -> Result<(), Failure> {
    match answer {
        Response::Stale { addr, response } => Err(Failure::new(
            FailureKind::Invariant,
            format!(
                "invariant 8: stale TLB entry: page {addr:#x} still read after operation \
                 {index} made it not present (the VMM changed its entry without invalidating \
                 the TLB); the operation answered {response:?}"
            ),
            Some(index),
        )
        .with_class(trace::FailureClass::Invariant {
            numbers: vec![8],
            frames: vec![],
            pages: vec![*addr],
            slots: vec![],
        })),
        _ => Ok(()),
    }
}

/// The model of a guest booted with `config`: it knows the bytes of every
/// file image the runner gave the guest, so that file pages are judged.
fn model_for(hello: &Hello, config: &VmConfig) -> Result<Model, Failure> {
    let specs: Vec<oracle::FileSpec> = config
        .files
        .iter()
        .map(|f| oracle::FileSpec {
            pages: f.pages,
            seed: f.seed,
        })
        .collect();
    Model::with_files(hello, &specs).map_err(|e| {
        Failure::new(
            FailureKind::Environment,
            format!("the guest's Hello does not list the files it was booted with: {e}"),
            None,
        )
        .with_class(trace::FailureClass::Environment {
            what: "the guest's files differ from the runner's".into(),
        })
    })
}
