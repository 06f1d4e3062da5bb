//! The VM as the pure logic sees it: something that runs a whole trace from
//! a fresh guest state and says whether it failed.

use protocol::Response;

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

    /// Runs `trace` as [`Executor::run`] does and answers the guest's
    /// answers in order, up to the first operation that got none (the
    /// minimizer's probe of what each operation took). An executor that
    /// cannot tell answers none.
    fn answers(&mut self, trace: &Trace) -> impl std::future::Future<Output = Vec<Response>> {
        let _ = trace;
        std::future::ready(Vec::new())
    }
}

/// A function of the trace as an executor (for tests and fakes).
#[derive(Debug)]
pub struct FnExecutor<F>(pub F);

impl<F: FnMut(&Trace) -> Outcome> Executor for FnExecutor<F> {
    async fn run(&mut self, trace: &Trace) -> Outcome {
        (self.0)(trace)
    }
}
