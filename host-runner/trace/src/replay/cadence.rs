//! The check cadence of a run: when the memory is checked between
//! batches.

use crate::op::Op;

/// When the memory is checked: after each batch that brings the
/// operations since the last check to `every` or more, and before a
/// `Reset` that follows operations not yet checked. A `Reset` returns
/// every frame and drops every translation at once, so a leak or a missed
/// flush before it would leave no trace after it: the state it ends is
/// checked first (its batch starts at the `Reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cadence {
    pub every: usize,
    pub since: usize,
}

impl Cadence {
    pub fn new(every: usize) -> Self {
        Cadence { every, since: 0 }
    }

    /// Whether a check is due before a batch that starts with `op`
    /// (a `Reset` after unchecked operations, when checks are on); counts
    /// it as made.
    pub fn before(&mut self, op: &Op) -> bool {
        if self.every > 0 && self.since > 0 && matches!(op, Op::Reset { .. }) {
            self.since = 0;
            return true;
        }
        false
    }

    /// Counts a batch of `n` operations; whether a check is due after it.
    pub fn after_batch(&mut self, n: usize) -> bool {
        self.ran(n);
        self.due()
    }

    /// Counts `n` operations sent.
    pub fn ran(&mut self, n: usize) {
        self.since += n;
    }

    /// Whether a check is due now, at the end of a batch (counted as made).
    pub fn due(&mut self) -> bool {
        if self.every > 0 && self.since >= self.every {
            self.since = 0;
            return true;
        }
        false
    }
}
