//! Minimization: delta debugging over the operations, then over their
//! arguments, as a pure function over the predicate "still fails with the
//! same signature". Every attempt is a whole run of a candidate trace
//! through the [`Executor`] (each from a fresh guest state).

use std::time::{Duration, Instant};

use crate::executor::{Executor, Outcome};
use crate::failure::{Failure, Signature};
use crate::format::Trace;
use crate::op::OpKind;
use crate::refs;
use crate::shrink;

mod cut;
mod drain;
mod merge;
mod ram;
mod substitute;

/// Traces this long or longer first lose whole kinds of operations
/// ([`Search::remove_kinds`]).
const KIND_PASS_MIN: usize = 32;

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

    /// Removes every operation of one kind at a time, the most frequent
    /// kind first, keeping the removal when the failure stays: in a long
    /// trace, whole kinds (the reads, the queries, the heap operations)
    /// often play no part, and one run removes all of them where ddmin
    /// would need chunks smaller than the gaps between the operations
    /// that do matter. Only for traces of at least [`KIND_PASS_MIN`]
    /// operations: below that ddmin is as quick.
    async fn remove_kinds(&mut self) -> Option<bool> {
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
    async fn remove_ops(&mut self, floor: usize) -> Option<bool> {
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

    /// Simplifies each operation's arguments until none of its candidates
    /// fails the same way. Expectations of a changed operation are dropped
    /// (they were about the old arguments).
    async fn shrink_args(&mut self) -> Option<bool> {
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
    async fn shrink_count(&mut self, i: usize) -> Option<bool> {
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

    /// Moves the whole layout down to lower addresses of op `i`, keeping
    /// every range's place relative to the others (shrinking one address
    /// alone loses an overlap the failure needs).
    async fn shift_addrs(&mut self, i: usize) -> Option<bool> {
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
