//! Merging neighbouring frame allocations: a failure that needs the
//! allocator drained keeps, after ddmin, a chain of `alloc_frames`
//! (509, 32, 16, 8, 8 frames…), each needed because removing one leaves
//! frames free. Two neighbours asking for frames in any order, as the
//! same privilege, become one request for their sum: the guest takes the
//! same frames in one step. The predicate decides, as always (a failure
//! that needs the first request's answer before the second, or an
//! allocation that fails alone, keeps them apart).

use protocol::MAX_ALLOC_FRAMES;

use super::Search;
use crate::executor::Executor;
use crate::format::Trace;
use crate::op::Op;

/// The operation that asks for the frames of `a` and then `b`, if both
/// are non-contiguous `alloc_frames` of one privilege whose sum one
/// request may ask for.
pub(super) fn merged(a: &Op, b: &Op) -> Option<Op> {
    match (a, b) {
        (
            &Op::AllocFrames {
                count: x,
                contiguous: false,
                privilege: p,
            },
            &Op::AllocFrames {
                count: y,
                contiguous: false,
                privilege: q,
            },
        ) if p == q => {
            let count = x.checked_add(y).filter(|&n| n <= MAX_ALLOC_FRAMES)?;
            Some(Op::AllocFrames {
                count,
                contiguous: false,
                privilege: p,
            })
        }
        _ => None,
    }
}

/// `trace` with operations `i` and `i + 1` replaced by `op`, unless a
/// later operation refers to either (its reference would change meaning:
/// the runs of one answer are not the runs of two).
pub(super) fn with_merged(trace: &Trace, i: usize, op: Op) -> Option<Trace> {
    let referred = trace
        .entries
        .iter()
        .any(|e| e.reference.is_some_and(|r| r.op == i || r.op == i + 1));
    if referred {
        return None;
    }
    let mut candidate = trace.clone();
    candidate.entries[i].op = op;
    candidate.entries[i].expect = None;
    candidate.remove_ops(i + 1..i + 2);
    Some(candidate)
}

impl<E: Executor> Search<'_, E> {
    /// Tries each pair of neighbouring `alloc_frames` as one request, from
    /// the end; answers whether any merged (`None`: out of budget).
    pub(super) async fn merge_allocs(&mut self) -> Option<bool> {
        let mut changed = false;
        let mut i = self.best.len().saturating_sub(1);
        while i > 0 {
            i -= 1;
            let Some(op) = self
                .best
                .entries
                .get(i + 1)
                .and_then(|b| merged(&self.best.entries[i].op, &b.op))
            else {
                continue;
            };
            let Some(candidate) = with_merged(&self.best, i, op) else {
                continue;
            };
            let what = || format!("ops {i} and {} (alloc_frames): merged", i + 1);
            changed |= self.try_candidate(candidate, what).await?;
        }
        Some(changed)
    }
}

#[cfg(test)]
mod tests {
    use protocol::Privilege;

    use super::*;
    use crate::format::TraceHeader;
    use crate::refs::Ref;

    fn alloc(count: u64, contiguous: bool, privilege: Privilege) -> Op {
        Op::AllocFrames {
            count,
            contiguous,
            privilege,
        }
    }

    #[test]
    fn only_plain_allocations_of_one_privilege_within_the_limit_merge() {
        let k = Privilege::Kernel;
        assert_eq!(
            merged(&alloc(509, false, k), &alloc(32, false, k)),
            Some(alloc(541, false, k))
        );
        assert_eq!(merged(&alloc(1, true, k), &alloc(1, false, k)), None);
        assert_eq!(merged(&alloc(1, false, k), &alloc(1, true, k)), None);
        assert_eq!(
            merged(&alloc(1, false, k), &alloc(1, false, Privilege::User)),
            None
        );
        assert_eq!(
            merged(&alloc(MAX_ALLOC_FRAMES, false, k), &alloc(1, false, k)),
            None
        );
        assert_eq!(
            merged(&alloc(u64::MAX, false, k), &alloc(1, false, k)),
            None
        );
        assert_eq!(merged(&Op::Stats, &alloc(1, false, k)), None);
    }

    #[test]
    fn a_merge_keeps_batches_and_later_references_right_and_skips_referred_pairs() {
        let k = Privilege::Kernel;
        let mut t = Trace::from_ops(
            TraceHeader {
                batches: vec![2, 2],
                ..TraceHeader::default()
            },
            [
                alloc(8, false, k),
                alloc(4, false, k),
                alloc(2, false, k),
                Op::FreeFrames {
                    frame: 0x1000,
                    count: 1,
                    privilege: k,
                },
            ],
        );
        let m = with_merged(&t, 0, alloc(12, false, k)).expect("no reference to 0 or 1");
        assert_eq!(m.len(), 3);
        assert_eq!(m.entries[0].op, alloc(12, false, k));
        assert_eq!(m.header.batches, vec![1, 2]);
        // The free refers to op 2's answer: op 2 may not merge, and after
        // the merge of 0 and 1 the reference follows op 2 to index 1.
        t.entries[3].reference = Some(Ref {
            op: 2,
            run: 0,
            plus: 0,
        });
        assert!(with_merged(&t, 1, alloc(6, false, k)).is_none());
        let m = with_merged(&t, 0, alloc(12, false, k)).unwrap();
        assert_eq!(m.entries[2].reference.map(|r| r.op), Some(1));
    }
}
