//! The campaign's plan, as plain computation: which sequences run (seeds,
//! `--shard`) and where a batch ends.

use std::sync::atomic::{AtomicU64, Ordering};

use trace::{Op, Shard};

/// The seed of sequence `k` of the campaign seeded `campaign`: `campaign + k`
/// (wrapping). So `fuzz --seed X --sequences 1` runs exactly the sequence
/// whose trace header says `"seed": X`.
pub fn sequence_seed(campaign: u64, k: u64) -> u64 {
    campaign.wrapping_add(k)
}

/// Hands out the campaign's sequence numbers to the jobs, in order: the
/// numbers `k` of `shard` (`k % n == i - 1`), at most `limit` of them in
/// all shards' numbering (`--sequences`). Which job runs a sequence does
/// not change its trace: each starts from a fresh guest state.
#[derive(Debug)]
pub struct SequenceSource {
    next: AtomicU64,
    shard: Shard,
    limit: Option<u64>,
}

impl SequenceSource {
    pub fn new(shard: Shard, limit: Option<u64>) -> Self {
        SequenceSource {
            next: AtomicU64::new(0),
            shard,
            limit,
        }
    }

    /// The next sequence number of this shard, or `None` once the limit is
    /// reached. `--sequences` counts this shard's sequences, so `n` shards
    /// of `--sequences m` run `n * m` sequences between them.
    pub fn take(&self) -> Option<u64> {
        let nth = self.next.fetch_add(1, Ordering::Relaxed);
        if self.limit.is_some_and(|l| nth >= l) {
            return None;
        }
        // The nth (0-based) number k with k % count == index - 1.
        nth.checked_mul(self.shard.count)?
            .checked_add(self.shard.index - 1)
    }
}

/// Whether the generator learns from the answer to `op` (frames from
/// `alloc_frames`, ranges from `valloc`, blocks from `kmalloc`, the layout
/// from `hello`, what a free or a reset gave back): a batch ends after
/// such an operation, so the next one is generated knowing its answer.
pub fn needs_answer(op: &Op) -> bool {
    matches!(
        op,
        Op::Hello
            | Op::AllocFrames { .. }
            | Op::Kmalloc { .. }
            | Op::FreeFrames { .. }
            | Op::Valloc { .. }
            | Op::Vfree { .. }
            | Op::Reset { .. }
    )
}

/// Whether the batch ends after an operation, `sent` being the number of
/// operations of the sequence so far including it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRule {
    /// Most operations in one `Batch` frame.
    pub max: usize,
    /// Operations in the sequence.
    pub ops: usize,
}

impl BatchRule {
    pub fn ends_after(&self, op: &Op, in_batch: usize, sent: usize) -> bool {
        needs_answer(op) || in_batch >= self.max.max(1) || sent >= self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Privilege;

    #[test]
    fn shards_split_the_numbers_without_overlap() {
        let all: Vec<u64> = (1..=3)
            .flat_map(|i| {
                let src = SequenceSource::new(Shard { index: i, count: 3 }, Some(4));
                std::iter::from_fn(move || src.take()).collect::<Vec<_>>()
            })
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..12).collect::<Vec<_>>());
        let second = SequenceSource::new(Shard { index: 2, count: 3 }, None);
        assert_eq!([second.take(), second.take()], [Some(1), Some(4)]);
        assert!((0..12).all(|k| Shard { index: 2, count: 3 }.contains(k) == (k % 3 == 1)));
    }

    #[test]
    fn sequence_seeds_follow_the_campaign_seed() {
        assert_eq!(sequence_seed(40, 2), 42);
        assert_eq!(sequence_seed(u64::MAX, 1), 0);
    }

    #[test]
    fn batches_end_where_answers_are_needed() {
        let rule = BatchRule { max: 4, ops: 25 };
        assert!(!rule.ends_after(&Op::Stats, 1, 1));
        assert!(rule.ends_after(&Op::Stats, 4, 4), "full");
        assert!(
            !rule.ends_after(&Op::Stats, 2, 10),
            "checks wait for a batch's end"
        );
        assert!(rule.ends_after(&Op::Stats, 1, 25), "last op");
        let alloc = Op::AllocFrames {
            count: 1,
            contiguous: false,
            privilege: Privilege::Kernel,
        };
        assert!(
            rule.ends_after(&alloc, 1, 3),
            "the generator needs its answer"
        );
        let every_op = BatchRule { max: 0, ..rule };
        assert!(every_op.ends_after(&Op::Stats, 1, 1));
    }
}
