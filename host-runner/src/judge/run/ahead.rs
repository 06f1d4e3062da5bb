//! A [`JudgedVm`]'s batches judged one behind (issue 16, pipelining): the
//! model judges a batch's answers while the guest runs the next batch,
//! instead of the guest waiting for the model between every two batches.
//!
//! Nothing is judged less. Every answer is judged, in order, before the
//! guest's memory is checked or the guest goes on from a judged state: the
//! methods that judge, check, read the guest's RAM, reset or shut down
//! (`run_batch`, `check_at` and the other checks, `with_ram`, `reset`,
//! `finish`) first judge the batch left unjudged ([`JudgedVm::settle`]),
//! so a memory check still sees the guest and the model at the same
//! operation. The accessors (`model`, `vm`, `index`) and `take_coverage`
//! do not: they answer the state as of the last judged answer (`index`
//! counts the unjudged ones too). A `JudgedVm` dropped with a batch
//! unjudged (the runner stopped by an I/O error or an interrupt) drops its
//! answers unjudged.
//!
//! What changes is when a wrong answer is found: one batch later, with
//! that batch already run by the guest. The failure still carries the
//! wrong answer's own operation index, and a fuzz sequence saves its trace
//! cut there (`fuzz::SequenceRun::failing_trace`): the operations after it
//! were sent but are not part of the reproducer, which replays on a fresh
//! guest one batch at a time, as every reproducer does. The guest that
//! ran past the failure is not inspected afterwards: after any failure the
//! `JudgedVm` is dropped (see [`crate::judge`]).

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Instant;

use protocol::{Request, Response, MAX_BATCH};
use trace::replay::BatchRun;
use trace::Failure;

use oracle::Model;

use super::{call, judge, JudgedVm};
use crate::judge::timings::timed;

/// A batch the guest answered that the model has not judged yet.
#[derive(Debug)]
pub(super) struct Unjudged {
    requests: Vec<Request>,
    answers: Vec<Response>,
}

impl Unjudged {
    /// Its operations.
    pub(super) fn len(&self) -> usize {
        self.requests.len()
    }

    /// Judges it, operations `*index..` (see `run::judge`): its first
    /// failure.
    fn judge(self, model: &mut Model, index: &mut usize) -> Option<Failure> {
        let mut run = BatchRun::default();
        judge(model, index, &self.requests, self.answers, false, &mut run)
    }
}

impl JudgedVm {
    /// Sends `reqs` (the operations from [`JudgedVm::index`] on) as one
    /// frame and, while the guest runs them, judges the batch the previous
    /// call left unjudged. Answers this batch's answers, not judged yet:
    /// the next call judges them, or any other method first
    /// ([`JudgedVm::settle`]). The failure, if any, is the earlier batch's
    /// (with its operation's index) or else this batch's transport's; after
    /// a failure nothing is left unjudged. More requests than one frame
    /// holds run as [`JudgedVm::run_batch`] does, judged at once.
    pub async fn run_batch_ahead(&mut self, reqs: &[Request]) -> BatchRun {
        if reqs.is_empty() || reqs.len() > MAX_BATCH {
            return self.run_batch(reqs, false).await;
        }
        let earlier = self.unjudged.take();
        let first = self.index + earlier.as_ref().map_or(0, Unjudged::len);
        let t = Instant::now();
        let (judged, got) = {
            let mut sent = pin!(call(&mut self.vm, reqs));
            // The first poll posts the frame (and rings the doorbell when
            // the guest may sleep); then the guest runs it while the model
            // judges.
            let early = poll_once(sent.as_mut()).await;
            let judged = earlier.and_then(|e| {
                let before = self.timings.model;
                let failure = timed(&mut self.timings.model, || {
                    e.judge(&mut self.model, &mut self.index)
                });
                self.timings.model_ahead += self.timings.model - before;
                failure
            });
            // Even after a failure the guest's answer is read: the
            // transport stays in step for what comes next.
            let got = match early {
                Poll::Ready(got) => got,
                Poll::Pending => sent.await,
            };
            (judged, got)
        };
        self.timings.guest += t.elapsed();
        self.timings.batches += 1;
        let mut run = BatchRun::default();
        if let Some(mut f) = judged {
            if let Err(e) = got {
                // The batch after the wrong answer failed too (a hang: QEMU
                // is killed here): said beside it, the earlier one first.
                let next = self.fail(e, Some(first)).await;
                f.message.push_str(&format!(
                    "; the next batch then failed too: {}",
                    next.message
                ));
            }
            run.failure = Some(f);
            return run;
        }
        match got {
            Ok(answers) => {
                run.answers.clone_from(&answers);
                run.predicted = vec![None; answers.len()];
                self.unjudged = Some(Unjudged {
                    requests: reqs.to_vec(),
                    answers,
                });
            }
            Err(e) => run.failure = Some(self.fail(e, Some(first)).await),
        }
        run
    }

    /// Judges the batch [`JudgedVm::run_batch_ahead`] left unjudged, if
    /// any: `Err` with its first failure.
    pub(super) fn settle(&mut self) -> Result<(), Failure> {
        let Some(e) = self.unjudged.take() else {
            return Ok(());
        };
        let failure = timed(&mut self.timings.model, || {
            e.judge(&mut self.model, &mut self.index)
        });
        failure.map_or(Ok(()), Err)
    }
}

/// Polls `f` once: its output if ready, else `Pending` (its waker is
/// this task's, so awaiting it afterwards picks up where it left off).
async fn poll_once<F: Future + Unpin>(mut f: F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut f).poll(cx))).await
}
