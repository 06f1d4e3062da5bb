//! Cutting a long trace after its failure: a failure that only a memory
//! check sees (a leaked frame, a broken invariant) shows at the trace's
//! next check, which in a trace checked only at its end is its last
//! operation, however early the bug struck. A run with denser checks
//! names the operation after which the failure is first visible, and
//! everything after it can go. On the bench's 10,000-operation leak trace
//! that replaces the halvings ddmin needs, each of which runs thousands
//! of operations.
//!
//! A check costs milliseconds, so a probe checks about [`PROBE_CHECKS`]
//! times, not after every batch, and the pass repeats on the shorter
//! trace while it cuts. Only for failures a check finds (invariants):
//! any other shows at its own operation, where denser checks can only
//! find a different failure first.

use super::Search;
use crate::executor::{Executor, Outcome};
use crate::failure::FailureKind;
use crate::format::Trace;

/// Shortest trace the pass tries: below it, ddmin's first halvings cost
/// about as much as the probe.
pub(super) const CUT_MIN_OPS: usize = 64;

/// About how many checks a probe makes.
const PROBE_CHECKS: usize = 64;

impl<E: Executor> Search<'_, E> {
    /// While the trace is long: runs it with a check every `len / 64`
    /// operations and, if it fails the same way at operation `f`, tries it
    /// cut after `f`, first with its own check cadence (the replay a user
    /// runs), then, if the failure needs the earlier check (it is gone by
    /// the end), with the probe's. Answers whether it cut (`None`: out of
    /// budget).
    pub(super) async fn cut_after_failure(&mut self) -> Option<bool> {
        if self.target.kind != FailureKind::Invariant {
            return Some(false);
        }
        let mut changed = false;
        loop {
            let n = self.best.len();
            let every = (n / PROBE_CHECKS).max(1);
            let denser = self
                .best
                .header
                .check_every
                .is_none_or(|c| c as usize > every);
            if n < CUT_MIN_OPS || !denser {
                return Some(changed);
            }
            let mut probe = self.best.clone();
            probe.header.check_every = Some(u32::try_from(every).unwrap_or(u32::MAX));
            let Some(f) = self.failing_op(&probe).await? else {
                return Some(changed);
            };
            if f + 1 >= n {
                return Some(changed);
            }
            let mut cut = self.best.clone();
            cut.remove_ops(f + 1..n);
            let what =
                || format!("cut after op {f}, where a check every {every} ops shows the failure");
            if !self.try_candidate(cut, what).await? {
                probe.remove_ops(f + 1..n);
                let what = || format!("cut after op {f}, checked every {every} ops");
                if !self.try_candidate(probe, what).await? {
                    return Some(changed);
                }
            }
            changed = true;
        }
    }

    /// Runs `trace` (a probe, never kept itself) and answers the operation
    /// its failure is at, if it fails with the target signature.
    async fn failing_op(&mut self, trace: &Trace) -> Option<Option<usize>> {
        if !self.budget_left() {
            return None;
        }
        self.attempts += 1;
        Some(match self.exec.run(trace).await {
            Outcome::Failed(failure) if failure.signature() == *self.target => failure.op_index,
            _ => None,
        })
    }
}
