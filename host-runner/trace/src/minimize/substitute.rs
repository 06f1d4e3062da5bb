//! Replacing runs of operations anywhere in the trace by the frames they
//! took. [`super::drain`] replaces everything before the last few
//! operations; a failure that needs an operation in the middle as well
//! (the zero-need bug needs a request that makes the kernel's heap grow
//! while the allocator is nearly empty, with more frames taken after it)
//! keeps the scattered maps and converts around it, each taking a page
//! table or two. This pass probes the free frames around every operation
//! once ([`super::drain::probe_of`]) and then tries, ddmin-style, chunks of
//! halving size: each chunk whose operations took frames becomes
//! `alloc_frames` of that many. After each kept replacement it probes
//! again. The predicate decides, as always.

use super::drain::{allocations, MAX_OPS};
use super::Search;
use crate::executor::Executor;
use crate::format::Trace;
use crate::op::Op;

/// Most probes one call makes: each kept replacement costs one.
const MAX_PROBES: usize = 16;

/// The candidate with operations `start..end` replaced by allocations of
/// the frames they took (`free[i]`: free frames before operation `i`), if
/// that does not lengthen the trace, the chunk holds something other than
/// allocations, nothing refers into it, and it took frames at all (one
/// that took none is ddmin's to remove). A single map becomes a single
/// allocation, which [`super::merge`] can then join to its neighbours.
pub(super) fn substituted(trace: &Trace, free: &[u64], start: usize, end: usize) -> Option<Trace> {
    let taken = free.get(start)?.checked_sub(*free.get(end)?)?;
    let allocs = allocations(taken);
    let chunk = &trace.entries[start..end];
    let only_allocs = chunk.iter().all(|e| matches!(e.op, Op::AllocFrames { .. }));
    let referred = trace
        .entries
        .iter()
        .any(|e| e.reference.is_some_and(|r| (start..end).contains(&r.op)));
    if taken == 0 || only_allocs || referred || allocs.len() > end - start {
        return None;
    }
    let mut candidate = trace.clone();
    candidate.remove_ops(start..end);
    candidate.insert_ops(start, allocs);
    Some(candidate)
}

impl<E: Executor> Search<'_, E> {
    /// Replaces chunks of operations by the frames they took, halves down
    /// to single operations, the failing (last) operation never; probes
    /// again after each kept replacement. Answers whether any was kept
    /// (`None`: out of budget).
    pub(super) async fn substitute_takers(&mut self) -> Option<bool> {
        let mut changed = false;
        'probe: for _ in 0..MAX_PROBES {
            let n = self.best.len();
            if !(3..=MAX_OPS).contains(&n) {
                break;
            }
            let free = self.probe_free().await?;
            // Free frames before each operation up to the last one.
            let body = n - 1;
            if free.len() < n {
                break;
            }
            let mut size = body.div_ceil(2);
            loop {
                let mut start = (body - 1) / size * size;
                loop {
                    let end = (start + size).min(body);
                    if let Some(candidate) = substituted(&self.best, &free, start, end) {
                        let what = || format!("ops {start}..{end} → the frames they took");
                        if self.try_candidate(candidate, what).await? {
                            changed = true;
                            continue 'probe;
                        }
                    }
                    if start == 0 {
                        break;
                    }
                    start -= size;
                }
                if size == 1 {
                    break 'probe;
                }
                size = size.div_ceil(2);
            }
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

    fn map(addr: u64) -> Op {
        Op::Map {
            addr,
            pages: 1,
            writable: false,
            executable: false,
            contiguous: false,
            privilege: Privilege::Kernel,
        }
    }

    #[test]
    fn a_chunk_becomes_the_frames_it_took_in_place() {
        let mut t = Trace::from_ops(
            TraceHeader {
                batches: vec![3, 2],
                ..TraceHeader::default()
            },
            [
                map(0x1000),
                map(0x2000),
                map(0x3000),
                Op::Stats,
                map(0x5000),
            ],
        );
        t.entries[4].reference = Some(Ref {
            op: 3,
            run: 0,
            plus: 0,
        });
        let free = [100, 98, 96, 94, 94, 92];
        let c = substituted(&t, &free, 1, 3).expect("ops 1 and 2 took 4 frames");
        let kinds: Vec<_> = c.ops().map(|o| o.kind().name()).collect();
        assert_eq!(kinds, ["map", "alloc_frames", "stats", "map"]);
        assert!(matches!(c.entries[1].op, Op::AllocFrames { count: 4, .. }));
        // The batch of ops 0..3 is split around the allocation.
        assert_eq!(c.header.batches, vec![1, 1, 2]);
        assert_eq!(c.entries[3].reference.map(|r| r.op), Some(2));
        // Nothing taken, a referred operation, or only allocations: no.
        assert!(substituted(&t, &free, 3, 4).is_none());
        assert!(substituted(&t, &free, 2, 4).is_none());
        let allocs = Trace::from_ops(TraceHeader::default(), allocations(3));
        assert!(substituted(&allocs, &[10, 7, 7], 0, 1).is_none());
    }
}
