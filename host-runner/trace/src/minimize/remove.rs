//! Removing operations: every operation of one kind at once (in a long
//! trace), then ddmin over chunks of operations, from halves down.

use super::Search;
use crate::executor::Executor;
use crate::op::OpKind;

/// Traces this long or longer first lose whole kinds of operations
/// ([`Search::remove_kinds`]).
const KIND_PASS_MIN: usize = 32;

impl<E: Executor> Search<'_, E> {
    /// Removes every operation of one kind at a time, the most frequent
    /// kind first, keeping the removal when the failure stays: in a long
    /// trace, whole kinds (the reads, the queries, the heap operations)
    /// often play no part, and one run removes all of them where ddmin
    /// would need chunks smaller than the gaps between the operations
    /// that do matter. Only for traces of at least [`KIND_PASS_MIN`]
    /// operations: below that ddmin is as quick.
    pub(super) async fn remove_kinds(&mut self) -> Option<bool> {
        if self.best.len() < KIND_PASS_MIN {
            return Some(false);
        }
        let mut counts: Vec<(usize, OpKind)> = OpKind::ALL
            .iter()
            .map(|&k| (self.best.ops().filter(|o| o.kind() == k).count(), k))
            .filter(|&(n, _)| n > 0)
            .collect();
        counts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut changed = false;
        for (_, kind) in counts {
            let mut candidate = self.best.clone();
            let n = candidate.remove_where(|op| op.kind() == kind);
            if n == 0 || candidate.is_empty() {
                continue;
            }
            let what = || format!("removed all {n} {} ops", kind.name());
            changed |= self.try_candidate(candidate, what).await?;
        }
        Some(changed)
    }

    /// ddmin over the operations: remove chunks, from halves down to
    /// chunks of `floor` operations (1: single operations). Answers whether
    /// anything was removed (`None`: out of budget).
    pub(super) async fn remove_ops(&mut self, floor: usize) -> Option<bool> {
        let mut changed = false;
        let mut chunks = 2usize;
        while !self.best.is_empty() {
            let len = self.best.len();
            let size = len.div_ceil(chunks.min(len));
            let mut removed = false;
            // Later chunks first: failures tend to show at the end, and the
            // prefix is what sets them up.
            let mut start = (len - 1) / size * size;
            loop {
                let end = (start + size).min(self.best.len());
                let mut candidate = self.best.clone();
                candidate.remove_ops(start..end);
                let what = || match end - start {
                    1 => format!("removed op {start}"),
                    _ => format!("removed ops {start}..{end}"),
                };
                if self.try_candidate(candidate, what).await? {
                    removed = true;
                    changed = true;
                }
                if start == 0 {
                    break;
                }
                start -= size;
            }
            if removed {
                chunks = chunks.saturating_sub(1).max(2);
            } else if size == 1 || size.div_ceil(2) < floor {
                break;
            } else {
                chunks = (chunks * 2).min(self.best.len());
            }
        }
        Some(changed)
    }
}
