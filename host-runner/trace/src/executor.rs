//! The VM as the pure logic sees it: something that runs a whole trace from
//! a fresh guest state and says whether it failed.

use crate::failure::Failure;
use crate::format::Trace;

/// The result of running a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(Failure),
}

impl Outcome {
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Passed => None,
            Outcome::Failed(f) => Some(f),
        }
    }
}

/// Runs traces. Every call starts from a fresh guest state (a new VM or a
/// `Reset`), so that runs do not depend on each other.
///
/// Synchronous on purpose: the minimizer is a plain loop over it. The host
/// runner implements it over its async session by calling the minimizer
/// inside `tokio::task::spawn_blocking` and blocking on the session with
/// `Handle::block_on` in `run`.
pub trait Executor {
    fn run(&mut self, trace: &Trace) -> Outcome;
}

impl<F: FnMut(&Trace) -> Outcome> Executor for F {
    fn run(&mut self, trace: &Trace) -> Outcome {
        self(trace)
    }
}
