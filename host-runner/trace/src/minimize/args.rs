//! Simplifying the operations' arguments: each one's candidates
//! ([`crate::shrink`]), its count by bisection, and the whole layout
//! shifted down to lower addresses.

use super::Search;
use crate::executor::Executor;
use crate::refs;
use crate::shrink;

impl<E: Executor> Search<'_, E> {
    /// Simplifies each operation's arguments until none of its candidates
    /// fails the same way. Expectations of a changed operation are dropped
    /// (they were about the old arguments).
    pub(super) async fn shrink_args(&mut self) -> Option<bool> {
        let mut changed = false;
        let mut i = 0;
        while i < self.best.len() {
            changed |= self.shrink_count(i).await?;
            let mut progress = true;
            while progress {
                progress = false;
                let op = self.best.entries[i].op.clone();
                // A referenced address is set by its reference: its literal
                // is not what is sent.
                let referenced = self.best.entries[i].reference.is_some();
                for c in shrink::candidates(&op) {
                    if referenced && refs::target(&c.op) != refs::target(&op) {
                        continue;
                    }
                    let mut candidate = self.best.clone();
                    candidate.entries[i].op = c.op;
                    candidate.entries[i].expect = None;
                    let name = op.kind().name();
                    if self
                        .try_candidate(candidate, || format!("op {i} ({name}): {}", c.what))
                        .await?
                    {
                        progress = true;
                        changed = true;
                        break;
                    }
                }
            }
            changed |= self.shift_addrs(i).await?;
            changed |= self.lower_space(i).await?;
            i += 1;
        }
        Some(changed)
    }

    /// Shrinks op `i`'s count (`pages`, `len`, `count`) to the least that
    /// still fails the same way: 1 first, then the protocol's limit + 1
    /// for a count above it (every larger one is refused alike), then one
    /// less than the least failing count so far (in a later round, where
    /// the count is already the least, that ends it in one run), then by
    /// bisection between the largest count seen to pass and the smallest
    /// seen to fail, about log2 of the count in runs. A failure that is not
    /// monotonic in the count ends at a count that fails, if not the least.
    pub(super) async fn shrink_count(&mut self, i: usize) -> Option<bool> {
        let op = self.best.entries[i].op.clone();
        let Some((name, cur)) = shrink::count_of(&op).filter(|&(_, c)| c > 1) else {
            return Some(false);
        };
        let (mut passes, mut fails) = (0, cur);
        let mut first = shrink::first_counts(&op, cur).into_iter();
        let mut neighbour_tried = false;
        let mut changed = false;
        loop {
            let n = if let Some(n) = first.by_ref().find(|&n| passes < n && n < fails) {
                n
            } else if !neighbour_tried && fails - 1 > passes {
                neighbour_tried = true;
                fails - 1
            } else if let Some(n) = shrink::bisect(passes, fails) {
                n
            } else {
                break;
            };
            let mut candidate = self.best.clone();
            candidate.entries[i].op = shrink::with_count(&op, n);
            candidate.entries[i].expect = None;
            let kind = op.kind().name();
            let what = || format!("op {i} ({kind}): {name} → {n}");
            if self.try_candidate(candidate, what).await? {
                fails = n;
                changed = true;
            } else {
                passes = n;
            }
        }
        Some(changed)
    }

    /// Renumbers the address space op `i` names to a lower one in every
    /// operation that names it (space 1 first, then the one below), so
    /// that the `create_space`s it needed become removable.
    pub(super) async fn lower_space(&mut self, i: usize) -> Option<bool> {
        let Some(from) = shrink::space_mut(&mut self.best.entries[i].op.clone()).map(|s| *s) else {
            return Some(false);
        };
        if from <= 1 {
            return Some(false);
        }
        for to in [1, from - 1]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
        {
            let ops: Vec<_> = self.best.entries.iter().map(|e| e.op.clone()).collect();
            let Some(renumbered) = shrink::renumber_space(&ops, from, to) else {
                continue;
            };
            let mut candidate = self.best.clone();
            for (e, op) in candidate.entries.iter_mut().zip(renumbered) {
                if e.op != op {
                    e.op = op;
                    e.expect = None;
                }
            }
            if self
                .try_candidate(candidate, || {
                    format!("op {i} and every operation naming space {from}: space → {to}")
                })
                .await?
            {
                return Some(true);
            }
        }
        Some(false)
    }

    /// Moves the whole layout down to lower addresses of op `i`, keeping
    /// every range's place relative to the others (shrinking one address
    /// alone loses an overlap the failure needs).
    pub(super) async fn shift_addrs(&mut self, i: usize) -> Option<bool> {
        if self.best.entries[i].reference.is_some() {
            return Some(false);
        }
        let Some(from) = shrink::addr_of(&self.best.entries[i].op) else {
            return Some(false);
        };
        for to in shrink::smaller_addrs(from) {
            let ops: Vec<_> = self.best.entries.iter().map(|e| e.op.clone()).collect();
            let Some(shifted) = shrink::shift_all(&ops, from, to) else {
                continue;
            };
            let mut candidate = self.best.clone();
            for (e, op) in candidate.entries.iter_mut().zip(shifted) {
                if e.op != op && e.reference.is_none() {
                    e.op = op;
                    e.expect = None;
                }
            }
            if self
                .try_candidate(candidate, || {
                    format!(
                        "op {i} and the addresses above it: shifted down by {:#x}",
                        from - to
                    )
                })
                .await?
            {
                return Some(true);
            }
        }
        Some(false)
    }
}
