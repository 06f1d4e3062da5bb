//! Each job on a thread of its own, with its own single-threaded runtime.
//!
//! A judged guest's futures are not `Send`, so a job cannot move between
//! threads; on one thread shared by all jobs, though, one job's memory
//! check (milliseconds: a full one 17–23 ms) held up every other job's
//! judging, and its guest waited with its answers in the ring (spinning
//! for its next request, then asleep). Over 20 s of a `--jobs 2` campaign
//! on 2 cores the machine was idle 17 % of the time; with a thread per
//! job, 1 %, and the campaign checked a third more operations. The jobs'
//! host work now runs side by side, as their guests do.
//!
//! A job ends on its own (its result comes back through
//! [`JobThreads::finished`]) or is cancelled ([`JobThreads::cancel`], or
//! the [`JobThreads`] dropped): its future is dropped where it is, which
//! kills its guest, as dropping the campaign's tasks did when they shared a
//! thread, and the campaign waits until it has stopped. A job that panics
//! stops the others; its panic goes on where the campaign waits.

use std::any::Any;
use std::future::Future;
use std::panic;
use std::thread::JoinHandle;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::runtime::Runtime;
use tokio::sync::{oneshot, watch};

use crate::fuzz::error::FuzzError;

/// What one job's thread sends back: its result, or `None` when it was
/// cancelled.
type Outcome = Option<Result<(), FuzzError>>;

/// A panic's payload, as `JoinHandle::join` gives it.
type Panic = Box<dyn Any + Send + 'static>;

/// A job thread's stack: its job is polled on it, as it was on the main
/// thread's 8 MiB before (deep futures, a full memory check).
const STACK_BYTES: usize = 8 << 20;

/// The threads running a campaign's jobs.
pub(super) struct JobThreads {
    jobs: Vec<Job>,
    cancel: watch::Sender<bool>,
}

struct Job {
    thread: Option<JoinHandle<()>>,
    /// Until the job has ended.
    outcome: Option<oneshot::Receiver<Outcome>>,
    /// How it ended, kept here as soon as it is known (a wait for the
    /// jobs may be dropped half way: a signal came).
    ended: Option<Result<Outcome, Panic>>,
}

impl Job {
    /// Waits for the job's end and keeps it; answers whether it panicked.
    async fn wait(&mut self) -> bool {
        let Some(outcome) = self.outcome.as_mut() else {
            return false;
        };
        let got = outcome.await;
        self.outcome = None;
        let ended = match got {
            Ok(o) => Ok(o),
            // The thread ended without sending: its job panicked (the
            // thread is done unwinding, or about to be).
            Err(_) => match self.thread.take().map(JoinHandle::join) {
                Some(Err(payload)) => Err(payload),
                _ => Ok(None),
            },
        };
        let panicked = ended.is_err();
        self.ended = Some(ended);
        panicked
    }
}

impl JobThreads {
    /// Starts `count` jobs (at least one): job `i` is the future `job(i)`
    /// makes on its thread (it need not be `Send`). When one cannot start,
    /// those started already are stopped before the error comes back.
    pub(super) fn start<F, J>(count: usize, job: F) -> Result<JobThreads, FuzzError>
    where
        F: FnOnce(usize) -> J + Send + Clone + 'static,
        J: Future<Output = Result<(), FuzzError>> + 'static,
    {
        let (cancel, cancelled) = watch::channel(false);
        let mut threads = JobThreads {
            jobs: Vec::new(),
            cancel,
        };
        for index in 0..count.max(1) {
            let failed = |source| FuzzError::Thread { index, source };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(failed)?;
            let (send, outcome) = oneshot::channel();
            let (job, cancelled) = (job.clone(), cancelled.clone());
            // The runtime goes to the thread once it runs: a runtime that
            // a failed spawn dropped here, inside the campaign's own
            // runtime, would panic instead of reporting the error.
            let (give, take) = std::sync::mpsc::sync_channel::<Runtime>(1);
            let thread = std::thread::Builder::new()
                .name(format!("fuzz-job-{index}"))
                .stack_size(STACK_BYTES)
                .spawn(move || {
                    let Ok(runtime) = take.recv() else {
                        return;
                    };
                    let _ = send.send(run_job(&runtime, index, job, cancelled));
                    // Blocking tasks left behind are not waited for: the
                    // job and its guests are gone.
                    runtime.shutdown_background();
                });
            let thread = match thread {
                Ok(t) => t,
                Err(source) => {
                    runtime.shutdown_background();
                    return Err(failed(source));
                }
            };
            // The thread holds the receiver until it has taken the runtime.
            let _ = give.send(runtime);
            threads.jobs.push(Job {
                thread: Some(thread),
                outcome: Some(outcome),
                ended: None,
            });
        }
        Ok(threads)
    }

    /// Waits for every job to end: their results, in job order (`None` for
    /// a job that was cancelled). A job that panics stops the others, and
    /// once they have stopped its panic goes on here, as an awaited task's
    /// would.
    pub(super) async fn finished(&mut self) -> Vec<Outcome> {
        self.wait_all().await;
        let mut out = Vec::with_capacity(self.jobs.len());
        let mut panicked = None;
        for job in &mut self.jobs {
            match job.ended.take() {
                Some(Ok(o)) => out.push(o),
                Some(Err(payload)) => {
                    panicked.get_or_insert(payload);
                    out.push(None);
                }
                None => out.push(None),
            }
        }
        if let Some(payload) = panicked {
            panic::resume_unwind(payload);
        }
        out
    }

    /// Stops every job where it is (its guest killed), and waits until
    /// they have stopped. What a job had ended with meanwhile, an error or
    /// a panic, is logged: the interrupted campaign's summary goes on.
    pub(super) async fn cancel(&mut self) {
        let _ = self.cancel.send(true);
        self.wait_all().await;
        for (index, job) in self.jobs.iter_mut().enumerate() {
            match job.ended.take() {
                Some(Ok(Some(Err(e)))) => {
                    tracing::warn!("fuzz job {index} had ended with an error: {e}");
                }
                Some(Err(payload)) => {
                    tracing::error!("fuzz job {index} panicked: {}", message(&*payload));
                }
                _ => {}
            }
        }
    }

    /// Waits for the jobs that have not ended, as they end; the first that
    /// panics stops the others.
    async fn wait_all(&mut self) {
        let cancel = &self.cancel;
        let mut waits: FuturesUnordered<_> = self.jobs.iter_mut().map(Job::wait).collect();
        while let Some(panicked) = waits.next().await {
            if panicked {
                let _ = cancel.send(true);
            }
        }
    }
}

impl Drop for JobThreads {
    /// The campaign dropped with its jobs running (a second signal, the
    /// binary's grace for the summary ran out): they stop, their guests
    /// with them, before the process goes on.
    fn drop(&mut self) {
        let _ = self.cancel.send(true);
        for (index, job) in self.jobs.iter_mut().enumerate() {
            if let Some(Err(payload)) = job.thread.take().map(JoinHandle::join) {
                tracing::error!("fuzz job {index} panicked: {}", message(&*payload));
            }
        }
    }
}

/// A panic's message, when it has one.
fn message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Job `index`, run to its end or until `cancelled` turns true, on
/// `runtime` on this thread.
fn run_job<J: Future<Output = Result<(), FuzzError>>>(
    runtime: &Runtime,
    index: usize,
    job: impl FnOnce(usize) -> J,
    mut cancelled: watch::Receiver<bool>,
) -> Outcome {
    let local = tokio::task::LocalSet::new();
    local.block_on(runtime, async move {
        tokio::select! {
            r = job(index) => Some(r),
            _ = cancelled.wait_for(|&c| c) => None,
        }
    })
}

#[cfg(test)]
mod tests;
