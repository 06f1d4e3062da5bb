//! Hits per guest edge, for one kernel build.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::CoverageError;

/// Which kernel build edge indexes belong to: its edge count and a CRC of
/// its PC table (the same bytes in guest RAM and in the ELF).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KernelId {
    pub edges: u64,
    pub pc_table_crc: u64,
}

impl KernelId {
    /// The id of a kernel whose PC table is `pcs`.
    pub fn of_pc_table(pcs: &[u8]) -> KernelId {
        const CRC: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_XZ);
        KernelId {
            edges: (pcs.len() / 16) as u64,
            pc_table_crc: CRC.checksum(pcs),
        }
    }
}

impl fmt::Display for KernelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} edges, PC table CRC {:#018x}",
            self.edges, self.pc_table_crc
        )
    }
}

/// The edges a campaign's corpus does not count as new (one kernel build):
/// those whose counts follow the host's timing
/// ([`KernelSymbols::guidance`](super::symbols::KernelSymbols::guidance)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Guidance {
    pub kernel: KernelId,
    /// `ignored[i]`: edge `i`'s count follows the host's timing.
    pub ignored: Vec<bool>,
}

/// How often each guest edge ran (`hits[i]` for counter `i`) and which
/// hit-count buckets each reached in one sequence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct EdgeHits {
    pub kernel: KernelId,
    hits: Vec<u64>,
    /// Bit `b` of `buckets[i]`: edge `i` ran a number of times in bucket
    /// `b` ([`bucket`]) in some sequence.
    buckets: Vec<u8>,
}

/// AFL's hit-count bucket of `n > 0` hits: 1, 2, 3, 4-7, 8-15, 16-31,
/// 32-127, 128+ are buckets 0 to 7.
pub fn bucket(n: u64) -> u8 {
    match n {
        0 => 0,
        1..=3 => (n - 1) as u8,
        4..=7 => 3,
        8..=15 => 4,
        16..=31 => 5,
        32..=127 => 6,
        _ => 7,
    }
}

impl EdgeHits {
    /// One sequence's hits (its buckets follow from them).
    pub fn from_hits(kernel: KernelId, hits: Vec<u64>) -> EdgeHits {
        let buckets = hits
            .iter()
            .map(|&n| if n == 0 { 0 } else { 1 << bucket(n) })
            .collect();
        EdgeHits {
            kernel,
            hits,
            buckets,
        }
    }

    /// No hits, for the same kernel as `other`.
    pub fn empty_like(other: &EdgeHits) -> EdgeHits {
        EdgeHits::from_hits(other.kernel, vec![0; other.hits.len()])
    }

    /// Number of edges.
    pub fn len(&self) -> usize {
        self.hits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hits.is_empty()
    }

    /// Hits of edge `i`.
    pub fn hits(&self, i: usize) -> u64 {
        self.hits.get(i).copied().unwrap_or(0)
    }

    /// Every edge's hits, by index.
    pub fn all_hits(&self) -> &[u64] {
        &self.hits
    }

    /// Edges hit at least once.
    pub fn reached(&self) -> usize {
        self.hits.iter().filter(|&&n| n > 0).count()
    }

    /// Adds `other`'s hits and buckets (same kernel only).
    pub fn merge(&mut self, other: &EdgeHits) -> Result<(), CoverageError> {
        if self.kernel != other.kernel || self.hits.len() != other.hits.len() {
            return Err(CoverageError::OtherKernel {
                ours: self.kernel.to_string(),
                theirs: other.kernel.to_string(),
            });
        }
        for (a, b) in self.hits.iter_mut().zip(&other.hits) {
            *a = a.saturating_add(*b);
        }
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a |= b;
        }
        Ok(())
    }

    /// Edges this reached that `seen` never had, and (edge, bucket) pairs
    /// new to `seen`, leaving out the edges `ignored` marks (for this
    /// kernel; none when it is another's). Another kernel's hits are all
    /// new.
    pub fn novelty(&self, seen: &EdgeHits, ignored: Option<&Guidance>) -> (usize, usize) {
        let counts = |i: usize| {
            !ignored.is_some_and(|g| g.kernel == self.kernel && g.ignored.get(i) == Some(&true))
        };
        if self.kernel != seen.kernel || self.hits.len() != seen.hits.len() {
            let edges = (0..self.hits.len()).filter(|&i| counts(i) && self.hits[i] > 0);
            let buckets = (0..self.buckets.len()).filter(|&i| counts(i));
            return (
                edges.count(),
                buckets.map(|i| self.buckets[i].count_ones() as usize).sum(),
            );
        }
        let edges = (0..self.hits.len())
            .filter(|&i| counts(i) && self.hits[i] > 0 && seen.hits[i] == 0)
            .count();
        let buckets = (0..self.buckets.len())
            .filter(|&i| counts(i))
            .map(|i| (self.buckets[i] & !seen.buckets[i]).count_ones() as usize)
            .sum();
        (edges, buckets)
    }
}
