//! Minimization: delta debugging over the operations, then over their
//! arguments, as a pure function over the predicate "still fails with the
//! same signature". Every attempt is a whole run of a candidate trace
//! through the [`Executor`] (each from a fresh guest state).

use std::time::{Duration, Instant};

use crate::executor::{Executor, Outcome};
use crate::failure::{Failure, Signature};
use crate::format::Trace;

mod args;
mod cut;
mod drain;
mod merge;
mod ram;
mod remove;
mod substitute;

/// Coarse rounds of ddmin stop at chunks of a sixteenth of the trace
/// ([`minimize`]).
const COARSE_CHUNKS: usize = 16;

/// How much minimization may cost. Whatever runs out first ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    /// Stop at this instant.
    pub deadline: Option<Instant>,
    /// Stop after this many runs.
    pub max_attempts: Option<usize>,
}

impl Budget {
    /// A budget of `time` from now.
    pub fn for_duration(time: Duration) -> Self {
        Budget {
            deadline: Some(Instant::now() + time),
            max_attempts: None,
        }
    }

    pub fn with_max_attempts(mut self, n: usize) -> Self {
        self.max_attempts = Some(n);
        self
    }

    fn exhausted(&self, attempts: usize) -> bool {
        self.max_attempts.is_some_and(|m| attempts >= m)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// An accepted simplification, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The attempt (1-based run count) that was accepted.
    pub attempt: usize,
    /// What was simplified: "removed ops 3..5", "op 2 (map): pages → 0x1".
    pub what: String,
    /// Operations in the trace after the step.
    pub ops: usize,
    /// The failure the candidate showed (same signature as the target).
    pub failure: Failure,
}

/// The result: the smallest failing trace found, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimized {
    pub trace: Trace,
    /// Runs made.
    pub attempts: usize,
    pub steps: Vec<Step>,
    /// The budget ended the search before a fixpoint.
    pub timed_out: bool,
}

struct Search<'a, E> {
    best: Trace,
    target: &'a Signature,
    exec: &'a mut E,
    budget: Budget,
    log: &'a mut dyn FnMut(&Step),
    attempts: usize,
    steps: Vec<Step>,
    timed_out: bool,
    /// The last drain probe ([`drain`]): the trace it ran and the free
    /// frames it found, so that two passes in one round probe it once.
    probed: Option<(Trace, Vec<u64>)>,
}

impl<E> Search<'_, E> {
    /// Whether another run fits the budget; marks the search timed out
    /// when it does not.
    fn budget_left(&mut self) -> bool {
        if self.budget.exhausted(self.attempts) {
            self.timed_out = true;
            return false;
        }
        true
    }
}

impl<E: Executor> Search<'_, E> {
    /// Runs `candidate`; if it fails with the target signature it becomes
    /// the best trace. `None` once the budget is gone.
    async fn try_candidate(
        &mut self,
        candidate: Trace,
        what: impl FnOnce() -> String,
    ) -> Option<bool> {
        if !self.budget_left() {
            return None;
        }
        self.attempts += 1;
        match self.exec.run(&candidate).await {
            Outcome::Failed(failure) if failure.signature() == *self.target => {
                let step = Step {
                    attempt: self.attempts,
                    what: what(),
                    ops: candidate.len(),
                    failure,
                };
                (self.log)(&step);
                self.steps.push(step);
                self.best = candidate;
                Some(true)
            }
            _ => Some(false),
        }
    }
}

/// Shrinks `trace`, which fails with signature `target`, to a smaller trace
/// that fails the same way: first no operation at all (a failure at boot
/// needs none), then, for an invariant in a long trace, cut after the
/// operation where denser checks first show it ([`cut`]), then a guest with
/// an eighth of the RAM, then (in a long trace) every operation of one kind
/// at a time; then, until nothing changes or `budget` ends: ddmin over the
/// operations (halves, quarters, …; in the first, coarse rounds down to
/// chunks of a sixteenth of the trace, then to single operations); once the
/// trace is short, a smaller guest ([`ram`]), the operations before the
/// last few replaced by the frames they took ([`drain`]) and chunks of
/// operations anywhere replaced likewise ([`substitute`]), for failures
/// that need the allocator drained; neighbouring frame allocations as one
/// request ([`merge`]); and last each operation's arguments (fewer pages,
/// shorter lengths, lower and rounder addresses, kernel instead of user,
/// plain instead of writable or contiguous; counts by bisection), the
/// costliest pass, on what the others left, in fine rounds only. Only a candidate whose failure has exactly the
/// signature `target` is accepted. `log` sees each accepted step. Always
/// answers the best trace found (the input itself if nothing smaller fails
/// the same way); `trace` is not run again first.
pub async fn minimize(
    trace: &Trace,
    target: &Signature,
    exec: &mut impl Executor,
    budget: Budget,
    log: &mut dyn FnMut(&Step),
) -> Minimized {
    let mut s = Search {
        best: trace.clone(),
        target,
        exec,
        budget,
        log,
        attempts: 0,
        steps: Vec::new(),
        timed_out: false,
        probed: None,
    };
    // A failure that needs no operation (a bug at boot, a broken
    // invariant before any request) minimizes to none, in one run.
    if !s.best.is_empty() {
        let mut empty = s.best.clone();
        empty.remove_ops(0..empty.len());
        let n = s.best.len();
        if s.try_candidate(empty, || format!("removed all {n} ops"))
            .await
            .is_none()
        {
            return s.finish();
        }
    }
    if s.cut_after_failure().await.is_none()
        || s.eighth_of_the_ram().await.is_none()
        || s.remove_kinds().await.is_none()
    {
        return s.finish();
    }
    // Until a fixpoint: shrunk arguments can make operations removable,
    // and fewer operations can make a smaller guest fail the same way.
    // Coarse rounds first: ddmin down to chunks of a sixteenth of the
    // trace, and no argument shrinking, so that the passes that replace
    // many operations at once (the drain, substitution and merging, on
    // traces of at most 256 operations) run before ddmin's rounds of
    // single operations, which on a trace of 200 cost 200 runs each. Once
    // a coarse round changes nothing, fine rounds do everything.
    let mut fine = s.best.len() < 2 * COARSE_CHUNKS;
    loop {
        let floor = if fine {
            1
        } else {
            (s.best.len() / COARSE_CHUNKS).max(1)
        };
        let Some(removed) = s.remove_ops(floor).await else {
            break;
        };
        let Some(less_ram) = s.shrink_ram().await else {
            break;
        };
        let Some(collapsed) = s.collapse_drain().await else {
            break;
        };
        let Some(substituted) = s.substitute_takers().await else {
            break;
        };
        let Some(merged) = s.merge_allocs().await else {
            break;
        };
        let shrunk = if fine {
            let Some(shrunk) = s.shrink_args().await else {
                break;
            };
            shrunk
        } else {
            false
        };
        if !removed && !less_ram && !collapsed && !substituted && !merged && !shrunk {
            if fine {
                break;
            }
            fine = true;
        }
    }
    s.finish()
}

impl<E> Search<'_, E> {
    fn finish(self) -> Minimized {
        Minimized {
            trace: self.best,
            attempts: self.attempts,
            steps: self.steps,
            timed_out: self.timed_out,
        }
    }
}
