//! The drain pass: a failure that needs the frame allocator (nearly)
//! empty keeps, under ddmin, every operation that takes a few frames (a
//! map's tables, a convert's, a heap block's page), because removing any
//! one leaves frames free. This pass asks the guest what the operations
//! took: one probe run with a `Stats` before the first operation and
//! after each, then, for the last few operations kept as they are, a
//! candidate whose earlier operations are replaced by `alloc_frames` of
//! exactly the frames they took (in requests of at most
//! [`protocol::MAX_ALLOC_FRAMES`]). The predicate decides, as always: a
//! failure that needs what those operations built besides taking frames
//! keeps them.

use protocol::{Privilege, Response, MAX_ALLOC_FRAMES};

use super::Search;
use crate::executor::Executor;
use crate::format::{Entry, Trace};
use crate::op::Op;
use crate::refs::Ref;

/// Most operations kept at the end of a candidate: the pass aims at
/// small reproducers, and each candidate is a run.
const MAX_TAIL: usize = 8;

/// Longest trace the pass probes: its probe runs twice the operations,
/// one per batch, which on a long trace costs more than the removals
/// that shorten it first.
pub(super) const MAX_OPS: usize = 256;

/// `trace` with a `Stats` before its first operation and after each; its
/// references moved with their targets and its batches one operation
/// each.
pub(super) fn probe_of(trace: &Trace) -> Trace {
    let mut header = trace.header.clone();
    header.batches.clear();
    let mut entries = Vec::with_capacity(2 * trace.len() + 1);
    entries.push(Entry::from(Op::Stats));
    for e in &trace.entries {
        entries.push(Entry {
            reference: e.reference.map(|r| Ref {
                op: 2 * r.op + 1,
                ..r
            }),
            expect: None,
            ..e.clone()
        });
        entries.push(Entry::from(Op::Stats));
    }
    Trace { header, entries }
}

/// Free frames before each operation of the probed trace (index `j`:
/// before operation `j`), from the probe's answers.
pub(super) fn free_before(answers: &[Response]) -> Vec<u64> {
    answers
        .iter()
        .step_by(2)
        .map_while(|a| match a {
            Response::Stats(s) => Some(s.free_frames),
            _ => None,
        })
        .collect()
}

/// `frames` taken by `alloc_frames` requests of at most
/// [`MAX_ALLOC_FRAMES`] each.
pub(super) fn allocations(frames: u64) -> Vec<Op> {
    (0..frames.div_ceil(MAX_ALLOC_FRAMES))
        .map(|i| Op::AllocFrames {
            count: (frames - i * MAX_ALLOC_FRAMES).min(MAX_ALLOC_FRAMES),
            contiguous: false,
            privilege: Privilege::Kernel,
        })
        .collect()
}

impl<E: Executor> Search<'_, E> {
    /// One probe run of the best trace ([`probe_of`]): the free frames
    /// before each of its operations ([`free_before`]), none when the
    /// executor cannot tell answers (`None`: out of budget). A trace
    /// probed already is not run again.
    pub(super) async fn probe_free(&mut self) -> Option<Vec<u64>> {
        if let Some((trace, free)) = &self.probed {
            if *trace == self.best {
                return Some(free.clone());
            }
        }
        if !self.budget_left() {
            return None;
        }
        let answers = self.exec.answers(&probe_of(&self.best)).await;
        // A run, unless the executor cannot tell answers (and ran nothing).
        self.attempts += usize::from(!answers.is_empty());
        let free = free_before(&answers);
        self.probed = Some((self.best.clone(), free.clone()));
        Some(free)
    }

    /// Replaces all but the last `k` operations by the frame allocations
    /// they amount to, for `k` from 1 up; answers at the first that fails
    /// the same way (`None`: out of budget).
    pub(super) async fn collapse_drain(&mut self) -> Option<bool> {
        let n = self.best.len();
        if !(3..=MAX_OPS).contains(&n) {
            return Some(false);
        }
        let free = self.probe_free().await?;
        let Some(&boot) = free.first() else {
            return Some(false);
        };
        for keep in 1..=MAX_TAIL.min(n - 1) {
            let cut = n - keep;
            let Some(taken) = free.get(cut).and_then(|&f| boot.checked_sub(f)) else {
                continue;
            };
            let allocs = allocations(taken);
            // Without frames taken, ddmin tries the same; a tail that
            // refers to the cut operations loses what it refers to.
            let refers_back = self.best.entries[cut..]
                .iter()
                .any(|e| e.reference.is_some_and(|r| r.op < cut));
            if taken == 0 || refers_back || allocs.len() + keep >= n {
                continue;
            }
            let mut candidate = self.best.clone();
            candidate.remove_ops(0..cut);
            candidate.prepend(allocs);
            let what = || format!("ops 0..{cut} → the {taken} frames they took");
            if self.try_candidate(candidate, what).await? {
                return Some(true);
            }
        }
        Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::TraceHeader;

    #[test]
    fn the_probe_asks_stats_around_every_operation_and_keeps_references_right() {
        let mut t = Trace::from_ops(
            TraceHeader {
                batches: vec![2],
                ..TraceHeader::default()
            },
            [
                Op::Kmalloc {
                    size: 64,
                    align: 8,
                    privilege: Privilege::Kernel,
                },
                Op::Kfree {
                    addr: 0xffff_c000_0000_1000,
                    privilege: Privilege::Kernel,
                },
            ],
        );
        t.entries[1].reference = Some(Ref {
            op: 0,
            run: 0,
            plus: 0,
        });
        let p = probe_of(&t);
        let kinds: Vec<_> = p.ops().map(|o| o.kind().name()).collect();
        assert_eq!(kinds, ["stats", "kmalloc", "stats", "kfree", "stats"]);
        assert_eq!(p.entries[3].reference.map(|r| r.op), Some(1));
        assert!(p.header.batches.is_empty());
    }

    #[test]
    fn frames_go_in_requests_the_guest_takes() {
        let counts = |n| -> Vec<u64> {
            allocations(n)
                .iter()
                .map(|o| match o {
                    Op::AllocFrames { count, .. } => *count,
                    _ => unreachable!(),
                })
                .collect()
        };
        assert_eq!(counts(0), Vec::<u64>::new());
        assert_eq!(counts(4096), [4096]);
        assert_eq!(counts(9000), [4096, 4096, 808]);
    }

    #[test]
    fn free_frames_are_read_from_every_other_answer() {
        let stats = |free_frames| {
            Response::Stats(protocol::Stats {
                free_frames,
                ..protocol::Stats::default()
            })
        };
        let answers = [
            stats(100),
            Response::Done,
            stats(90),
            Response::Done,
            stats(70),
        ];
        assert_eq!(free_before(&answers), [100, 90, 70]);
        // The failing operation's Stats may be missing.
        assert_eq!(free_before(&answers[..4]), [100, 90]);
    }
}
