//! [`JudgedVm`]: a [`Vm`], the model that judges its answers, and the
//! memory check.

use oracle::{CheckReport, GuestMemory, Model};
use protocol::{Error as ProtoError, Hello, Privilege, Request, Response, MAX_BATCH};
use trace::{Failure, FailureKind};

use super::coverage::CoverageProbe;
use super::failure::failure_from;
use super::inspect::{inspect, with_paused_ram, MemoryCheck};
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
    /// Operations since the last memory check.
    since_check: usize,
    opts: JudgeOptions,
    /// The guest's coverage counters (`super::coverage`).
    coverage: CoverageProbe,
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
            since_check: 0,
            opts,
            coverage,
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
    async fn fail(&mut self, err: crate::Error, index: Option<usize>) -> Failure {
        let mut f = failure_from(err);
        f.op_index = index;
        if f.kind == FailureKind::Hang {
            if let Some(pid) = self.vm.qemu_pid() {
                // SAFETY: kill(2) on the QEMU this session started and still
                // owns (its pid is only returned while it runs).
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
            let exit = self.vm.wait_exit(std::time::Duration::from_secs(5)).await;
            f.message.push_str(&format!("; QEMU killed ({exit})"));
        }
        f
    }

    /// Sends one request without judging it: the answer, or the failure
    /// the session saw (panic, death, hang). Follow with [`Self::judge`].
    pub async fn send(&mut self, req: &Request) -> Result<Response, Failure> {
        let index = self.index;
        match self.vm.call(req.clone()).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.fail(e, Some(index)).await),
        }
    }

    /// Judges the guest's answer `got` to `req` (the next operation): the
    /// model's own answer when it predicts one exactly, or the divergence.
    /// Runs the memory check when `check_every` says so.
    pub async fn judge(
        &mut self,
        req: &Request,
        got: &Response,
    ) -> Result<Option<Response>, Failure> {
        let index = self.index;
        let predicted = match self.model.predict(req) {
            oracle::Prediction::Exact(r) => Some(r),
            _ => None,
        };
        self.index += 1;
        self.model
            .apply(index as u64, req, got)
            .map_err(|d| Failure::new(FailureKind::Divergence, d.to_string(), Some(index)))?;
        self.count_ops(1, index).await?;
        Ok(predicted)
    }

    async fn count_ops(&mut self, n: usize, last: usize) -> Result<(), Failure> {
        self.since_check += n;
        match self.opts.check_every {
            Some(every) if every > 0 && self.since_check >= every => {
                self.check_at(Some(last)).await.map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Sends one request and judges the answer.
    pub async fn step(&mut self, req: Request) -> Result<Response, Failure> {
        let got = self.send(&req).await?;
        self.judge(&req, &got).await?;
        Ok(got)
    }

    /// Sends requests as `Batch` frames (of at most `MAX_BATCH`) and judges
    /// every answer as its own operation, in order. A `Batch` among them
    /// must be answered `Error(NestedBatch)`.
    pub async fn steps(&mut self, reqs: Vec<Request>) -> Result<Vec<Response>, Failure> {
        let mut answers = Vec::with_capacity(reqs.len());
        for chunk in reqs.chunks(MAX_BATCH) {
            let first = self.index;
            let got = match self.vm.batch(chunk.to_vec()).await {
                Ok(a) => a,
                Err(e) => return Err(self.fail(e, Some(first)).await),
            };
            for (i, (req, answer)) in chunk.iter().zip(&got).enumerate() {
                let index = first + i;
                self.index = index + 1;
                let verdict = match req {
                    Request::Batch(_) if *answer == Response::Error(ProtoError::NestedBatch) => Ok(()),
                    Request::Batch(_) => Err(format!(
                        "operation {index}: a Batch inside a Batch: expected Error(NestedBatch), got {answer:?}"
                    )),
                    _ => self
                        .model
                        .apply(index as u64, req, answer)
                        .map_err(|d| d.to_string()),
                };
                verdict.map_err(|m| Failure::new(FailureKind::Divergence, m, Some(index)))?;
            }
            self.count_ops(chunk.len(), self.index - 1).await?;
            answers.extend(got);
        }
        Ok(answers)
    }

    /// The memory check now, whatever `check_every` says: the full result,
    /// clean or not (a failure only when it could not be made).
    pub async fn inspect(&mut self) -> Result<MemoryCheck, Failure> {
        let expect = self.model.expectations();
        let (memory, tlb) = (self.opts.memory, self.opts.tlb_check);
        let at = self.index.checked_sub(1);
        match inspect(&self.vm, &self.hello, &expect, memory, tlb).await {
            Ok(c) => Ok(c),
            Err(e) => Err(self.fail(e, at).await),
        }
    }

    async fn check_at(&mut self, at: Option<usize>) -> Result<CheckReport, Failure> {
        self.since_check = 0;
        self.coverage.poll(&self.vm);
        let check = self.inspect().await?;
        if check.is_clean() {
            return Ok(check.report);
        }
        let after = at.map_or("at boot".to_string(), |i| format!("after operation {i}"));
        let message = format!(
            "memory check {after}: {} violation(s)\n{}",
            check.report.violations.len() + check.qemu.len(),
            check.violations_text()
        );
        Err(Failure::new(FailureKind::Invariant, message, at))
    }

    /// The memory check now: the report when every invariant holds, else an
    /// `Invariant` failure listing every violation.
    pub async fn check(&mut self) -> Result<CheckReport, Failure> {
        self.check_at(self.index.checked_sub(1)).await
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
    /// frames plus heap pages must be the boot count), a fresh model, operation index 0, and
    /// a memory check if `check_every` is set. Failures here carry no
    /// operation index.
    pub async fn reset(&mut self) -> Result<(), Failure> {
        let reqs = vec![
            Request::Reset {
                privilege: Privilege::Kernel,
            },
            Request::Stats,
        ];
        let got = match self.vm.batch(reqs.clone()).await {
            Ok(a) => a,
            Err(e) => return Err(self.fail(e, None).await),
        };
        let bad = |m: String| Failure::new(FailureKind::Divergence, format!("reset: {m}"), None);
        for (req, answer) in reqs.iter().zip(&got) {
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
        self.since_check = 0;
        if self.opts.check_every.is_some_and(|n| n > 0) {
            self.check_at(None).await.map_err(|mut f| {
                f.message = format!("after reset: {}", f.message);
                f
            })?;
        }
        Ok(())
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
            FailureKind::GuestDied,
            format!(
                "{}the guest's Hello does not list the files it was booted with: {e}",
                super::failure::RUNNER_PREFIX
            ),
            None,
        )
    })
}
