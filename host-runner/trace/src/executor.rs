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
/// `Reset`), so that runs do not depend on each other. The runner's is
/// its judged guest behind [`crate::replay::run`]; the minimizer's tests
/// use plain functions of the trace ([`Fn`]).
pub trait Executor {
    fn run(&mut self, trace: &Trace) -> impl std::future::Future<Output = Outcome>;
}

/// A function of the trace as an executor (for tests and fakes).
#[derive(Debug)]
pub struct FnExecutor<F>(pub F);

impl<F: FnMut(&Trace) -> Outcome> Executor for FnExecutor<F> {
    async fn run(&mut self, trace: &Trace) -> Outcome {
        (self.0)(trace)
    }
}
