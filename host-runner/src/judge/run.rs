//! [`JudgedVm`]: a [`Vm`], the model that judges its answers, and the
//! memory check. Here: the guest's start, its judged batches and its
//! shutdown; its memory checks in `check`, its reset in `reset`.

use std::time::Instant;

use oracle::{Checker, Model};
use protocol::{Error as ProtoError, Hello, Request, Response, MAX_BATCH};
use trace::replay::BatchRun;
use trace::{Failure, FailureKind};

use super::coverage::CoverageProbe;
use super::failure::failure_from;
use super::timings::Timings;
use super::JudgeOptions;
use crate::session::{Vm, VmConfig};
use reset::model_for;
pub use reset::{another_reset, ResetError, ResetParts};

mod ahead;
mod check;
mod reset;

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
    /// The batch [`JudgedVm::run_batch_ahead`] sent last, answered and not
    /// judged yet: operations `index..`.
    unjudged: Option<ahead::Unjudged>,
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
        if let Some(ticks) = opts.spin {
            vm.set_guest_spin(ticks);
        }
        let coverage = CoverageProbe::new(&hello, &vm);
        let mut checker = Checker::new();
        checker.set_data_thread(opts.data_thread.then_some(oracle::DATA_THREAD_PAGES));
        Ok(JudgedVm {
            vm,
            model,
            hello,
            index: 0,
            opts,
            timings: Timings::default(),
            coverage,
            checker,
            last_reset: ResetParts::default(),
            unjudged: None,
        })
    }

    /// The model, as of the last judged answer (a batch that
    /// [`JudgedVm::run_batch_ahead`] answered is judged by the next call).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The guest's layout.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Where this guest's time went so far (the model, the guest, the
    /// checks), with the ring's count of second doorbells; see [`Timings`].
    pub fn timings(&self) -> Timings {
        Timings {
            nudges: self.vm.ring_nudges(),
            ..self.timings
        }
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

    /// Index of the next operation (after the answered ones not judged
    /// yet).
    pub fn index(&self) -> usize {
        self.index + self.unjudged.as_ref().map_or(0, ahead::Unjudged::len)
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
    /// are kept. A batch [`JudgedVm::run_batch_ahead`] left unjudged is
    /// judged first (its failure, if any, is this one's).
    pub async fn run_batch(&mut self, reqs: &[Request], predict: bool) -> BatchRun {
        let mut run = BatchRun::default();
        if let Err(f) = self.settle() {
            run.failure = Some(f);
            return run;
        }
        for chunk in reqs.chunks(MAX_BATCH) {
            let first = self.index;
            let got = match self.send(chunk).await {
                Ok(a) => a,
                Err(e) => {
                    run.failure = Some(self.fail(e, Some(first)).await);
                    return run;
                }
            };
            let t = Instant::now();
            let failure = judge(
                &mut self.model,
                &mut self.index,
                chunk,
                got,
                predict,
                &mut run,
            );
            self.timings.model += t.elapsed();
            if let Some(f) = failure {
                run.failure = Some(f);
                return run;
            }
        }
        run
    }

    /// Sends one frame of requests (`Batch` for more than one) and waits
    /// for the answers, unjudged: the guest's time.
    async fn send(&mut self, chunk: &[Request]) -> Result<Vec<Response>, crate::rpc::RpcError> {
        let t = Instant::now();
        let got = call(&mut self.vm, chunk).await;
        self.timings.guest += t.elapsed();
        self.timings.batches += 1;
        got
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

    /// What the guest's code and the model reached since the last call
    /// (or the boot): guest edges read from its counters now, and the
    /// model's transitions and events, carried across `reset` (a batch
    /// answered ahead and not judged yet counts at the next call).
    pub fn take_coverage(&mut self) -> crate::coverage::Coverage {
        self.coverage.take(&self.vm, &mut self.model)
    }

    /// Shuts the guest down; QEMU must exit with 33.
    pub async fn finish(mut self) -> Result<(), Failure> {
        self.settle()?;
        let at = self.index.checked_sub(1);
        self.vm.shutdown().await.map(drop).map_err(|e| {
            let mut f = failure_from(e);
            f.op_index = at;
            f.message = format!("at shutdown: {}", f.message);
            f
        })
    }
}

/// One frame's requests: `Batch` for more than one.
async fn call(vm: &mut Vm, chunk: &[Request]) -> Result<Vec<Response>, crate::rpc::RpcError> {
    match chunk {
        [one] => vm.call(one.clone()).await.map(|a| vec![a]),
        _ => vm.batch(chunk.to_vec()).await,
    }
}

/// Judges the guest's answers `got` to `reqs`, operations `*index..`, in
/// order, with the model's predictions when `predict`: each answer and
/// prediction goes onto `run`, `*index` past each operation judged. The
/// first failure ends it (the model is unchanged by a divergence).
fn judge(
    model: &mut Model,
    index: &mut usize,
    reqs: &[Request],
    got: Vec<Response>,
    predict: bool,
    run: &mut BatchRun,
) -> Option<Failure> {
    for (req, answer) in reqs.iter().zip(got) {
        let at = *index;
        let predicted = match (predict, req) {
            (true, Request::Batch(_)) => Some(Response::Error(ProtoError::NestedBatch)),
            (true, r) => match model.predict(r) {
                oracle::Prediction::Exact(p) => Some(p),
                _ => None,
            },
            (false, _) => None,
        };
        *index = at + 1;
        let previous = model.current_space();
        let verdict = stale_check(at, req, previous, &answer).and_then(|()| match req {
            Request::Batch(_) if answer == Response::Error(ProtoError::NestedBatch) => Ok(()),
            Request::Batch(_) => Err(Failure::new(
                FailureKind::Divergence,
                format!(
                    "operation {at}: a Batch inside a Batch: expected Error(NestedBatch), got {answer:?}"
                ),
                Some(at),
            )),
            _ => model.apply(at as u64, req, &answer).map_err(|d| {
                // The model is unchanged by a divergence: what it
                // predicts now is what it expected.
                let expected = match model.predict(&d.request) {
                    oracle::Prediction::Exact(p) => Some(p),
                    _ => None,
                };
                Failure::new(FailureKind::Divergence, d.to_string(), Some(at))
                    .with_class(super::classes::answer(&d.request, expected.as_ref(), &d.got))
            }),
        });
        run.answers.push(answer);
        run.predicted.push(predicted);
        if let Err(f) = verdict {
            return Some(f);
        }
    }
    None
}

/// Invariant 8 as the guest's stale-translation probe found it
/// (`protocol::semantics`, **Stale translations**): a page the request made
/// not present still read through a TLB entry the VMM did not invalidate,
/// or, after a `SwitchSpace`, a page not present in the new space still
/// read through a translation of the previous one.
/// `previous`: the space current before the request.
pub(super) fn stale_check(
    index: usize,
    req: &Request,
    previous: u16,
    answer: &Response,
) -> Result<(), Failure> {
    let why = match req {
        Request::SwitchSpace { space, .. } if *space != previous => format!(
            "is not present in space {space}, made current by operation {index}, yet still read \
             (a translation of the previous space survived the switch)"
        ),
        Request::SwitchSpace { .. } | Request::DestroySpace { .. } => format!(
            "is not present in the current space, as the guest's own tables say after \
             operation {index}, yet still read (a TLB entry the VMM did not invalidate, or an \
             entry the VMM decodes as not present that the CPU reads as present)"
        ),
        _ => format!(
            "still read after operation {index} made it not present (the VMM changed its entry \
             without invalidating the TLB)"
        ),
    };
    match answer {
        Response::Stale { addr, response } => Err(Failure::new(
            FailureKind::Invariant,
            format!(
                "invariant 8: stale TLB entry: page {addr:#x} {why}; the operation answered \
                 {response:?}"
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
