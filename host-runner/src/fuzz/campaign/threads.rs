//! Each job on a thread of its own, with its own single-threaded runtime.
//!
//! A judged guest's futures are not `Send`, so a job cannot move between
//! threads; on one thread shared by all jobs, though, one job's memory
//! check (milliseconds: a full one 17–23 ms) held up every other job's
//! judging, and its guest sat idle with its answers in the ring. With
//! `--jobs 2` on 2 cores, a sixth of the machine stayed idle that way. On
//! threads of their own, the jobs' host work runs side by side, as their
//! guests do.
//!
//! A job ends on its own (its result comes back through
//! [`JobThreads::finished`]) or is cancelled ([`JobThreads::cancel`]): its
//! future is dropped where it is, which kills its guest, as dropping the
//! campaign's tasks did when they shared a thread.

use std::future::Future;
use std::panic;
use std::thread::JoinHandle;

use tokio::sync::{oneshot, watch};

use crate::fuzz::error::FuzzError;

/// What one job's thread sends back: its result, or `None` when it was
/// cancelled.
type Outcome = Option<Result<(), FuzzError>>;

/// The threads running a campaign's jobs.
pub(super) struct JobThreads {
    jobs: Vec<Job>,
    cancel: watch::Sender<bool>,
}

struct Job {
    thread: Option<JoinHandle<()>>,
    outcome: Option<oneshot::Receiver<Outcome>>,
}

impl JobThreads {
    /// Starts `count` jobs (at least one): job `i` is the future `job(i)`
    /// makes on its thread (it need not be `Send`).
    pub(super) fn start<F, J>(count: usize, job: F) -> Result<JobThreads, FuzzError>
    where
        F: FnOnce(usize) -> J + Send + Clone + 'static,
        J: Future<Output = Result<(), FuzzError>> + 'static,
    {
        let (cancel, cancelled) = watch::channel(false);
        let mut jobs: Vec<Job> = Vec::new();
        for index in 0..count.max(1) {
            let (send, outcome) = oneshot::channel();
            let (job, cancelled) = (job.clone(), cancelled.clone());
            let thread = std::thread::Builder::new()
                .name(format!("fuzz-job-{index}"))
                .spawn(move || {
                    let _ = send.send(run_job(index, job, cancelled));
                })
                .map_err(|source| FuzzError::Thread { index, source });
            let thread = match thread {
                Ok(t) => t,
                Err(e) => {
                    // The jobs started already stop before the error goes
                    // up, so that none leaves its guest behind.
                    let _ = cancel.send(true);
                    for job in jobs {
                        if let Some(t) = job.thread {
                            let _ = t.join();
                        }
                    }
                    return Err(e);
                }
            };
            jobs.push(Job {
                thread: Some(thread),
                outcome: Some(outcome),
            });
        }
        Ok(JobThreads { jobs, cancel })
    }

    /// Waits for every job to end: their results, in job order (`None` for
    /// a job that was cancelled). A job that panicked panics here, as an
    /// awaited task's panic would.
    pub(super) async fn finished(&mut self) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(self.jobs.len());
        for job in &mut self.jobs {
            // Borrowed while awaited: when this wait is dropped (a signal
            // came), `cancel` waits for the same job again.
            let Some(outcome) = job.outcome.as_mut() else {
                out.push(None);
                continue;
            };
            let got = outcome.await;
            job.outcome = None;
            match got {
                Ok(o) => out.push(o),
                // The thread ended without sending: its job panicked.
                Err(_) => {
                    if let Some(Err(payload)) = job.thread.take().map(JoinHandle::join) {
                        panic::resume_unwind(payload);
                    }
                    out.push(None);
                }
            }
        }
        out
    }

    /// Stops every job where it is (its guest killed), and waits until
    /// they have stopped.
    pub(super) async fn cancel(&mut self) {
        let _ = self.cancel.send(true);
        let _ = self.finished().await;
    }
}

/// Job `index`, run to its end or until `cancelled` turns true, on a
/// runtime of its own on this thread.
fn run_job<J: Future<Output = Result<(), FuzzError>>>(
    index: usize,
    job: impl FnOnce(usize) -> J,
    mut cancelled: watch::Receiver<bool>,
) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(source) => return Some(Err(FuzzError::Thread { index, source })),
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        tokio::select! {
            r = job(index) => Some(r),
            _ = cancelled.wait_for(|&c| c) => None,
        }
    })
}

#[cfg(test)]
mod tests;
