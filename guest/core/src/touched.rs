//! The pages the CPU may hold translations for: every page a `Write` or
//! `Read` touched, kept as ranges of page numbers (`addr >> 12` of the
//! canonical address), for the stale-translation probe of
//! [`crate::dispatch`] (see `protocol::semantics`, **Stale translations**).
//!
//! The set may hold more pages than were touched, never fewer: with more
//! than [`CAPACITY`] ranges, the two closest are merged (the pages between
//! them join). A probe of a page that was never touched faults like any
//! not-present page, so the cost of merging is probes, not verdicts.
//! Pages leave the set when a probe finds them not present (no translation
//! of a not-present page is cached), and all of them at `Reset`.

/// Most ranges kept.
pub const CAPACITY: usize = 64;

/// Ranges of page numbers, sorted, disjoint and not adjacent.
#[derive(Clone, Debug)]
pub struct Touched {
    runs: [(u64, u64); CAPACITY],
    len: usize,
}

impl Default for Touched {
    fn default() -> Self {
        Touched {
            runs: [(0, 0); CAPACITY],
            len: 0,
        }
    }
}

impl Touched {
    /// The ranges, in order.
    pub fn runs(&self) -> &[(u64, u64)] {
        &self.runs[..self.len]
    }

    /// Whether no page is in the set.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every page.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Adds pages `lo..hi`.
    pub fn add(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        // Ranges touching or overlapping `lo..hi` merge with it.
        let first = self.runs().partition_point(|r| r.1 < lo);
        let last = self.runs().partition_point(|r| r.0 <= hi);
        let (mut s, mut e) = (lo, hi);
        if first < last {
            s = s.min(self.runs[first].0);
            e = e.max(self.runs[last - 1].1);
        }
        let removed = last - first;
        if removed == 0 {
            if self.len == CAPACITY {
                self.merge_closest();
                return self.add(lo, hi);
            }
            self.runs.copy_within(first..self.len, first + 1);
            self.len += 1;
        } else {
            self.runs.copy_within(last..self.len, first + 1);
            self.len -= removed - 1;
        }
        self.runs[first] = (s, e);
    }

    /// Removes pages `lo..hi`.
    pub fn remove(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        let mut i = 0;
        while i < self.len {
            let (s, e) = self.runs[i];
            if e <= lo || s >= hi {
                i += 1;
                continue;
            }
            let (left, right) = ((s, lo.max(s)), (hi.min(e), e));
            match (left.0 < left.1, right.0 < right.1) {
                (true, true) => {
                    if self.len == CAPACITY {
                        // No room to split: keep the whole range (more
                        // pages than needed, never fewer).
                        i += 1;
                        continue;
                    }
                    self.runs.copy_within(i + 1..self.len, i + 2);
                    self.len += 1;
                    self.runs[i] = left;
                    self.runs[i + 1] = right;
                    i += 2;
                }
                (true, false) => {
                    self.runs[i] = left;
                    i += 1;
                }
                (false, true) => {
                    self.runs[i] = right;
                    i += 1;
                }
                (false, false) => {
                    self.runs.copy_within(i + 1..self.len, i);
                    self.len -= 1;
                }
            }
        }
    }

    /// Merges the two neighbouring ranges with the smallest gap.
    fn merge_closest(&mut self) {
        let Some(i) =
            (0..self.len.saturating_sub(1)).min_by_key(|&i| self.runs[i + 1].0 - self.runs[i].1)
        else {
            return;
        };
        self.runs[i].1 = self.runs[i + 1].1;
        self.runs.copy_within(i + 2..self.len, i + 1);
        self.len -= 1;
    }

    /// Calls `f` with every page of the set inside `lo..hi`, in order.
    pub fn for_each_in(&self, lo: u64, hi: u64, mut f: impl FnMut(u64)) {
        for &(s, e) in self.runs() {
            (s.max(lo)..e.min(hi)).for_each(&mut f);
        }
    }

    /// Whether page `p` is in the set.
    pub fn contains(&self, p: u64) -> bool {
        self.runs().iter().any(|&(s, e)| s <= p && p < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        /// The set always holds every page added and not removed since
        /// (it may hold more once full), and its ranges stay sorted,
        /// disjoint and apart.
        #[test]
        fn never_loses_a_page(ops in prop::collection::vec((any::<bool>(), 0u64..3000, 1u64..40), 1..300)) {
            let mut t = Touched::default();
            let mut want = BTreeSet::new();
            for (add, lo, n) in ops {
                if add {
                    t.add(lo, lo + n);
                    want.extend(lo..lo + n);
                } else {
                    t.remove(lo, lo + n);
                    for p in lo..lo + n {
                        want.remove(&p);
                    }
                }
                for w in t.runs().windows(2) {
                    prop_assert!(w[0].1 < w[1].0, "{:?}", t.runs());
                }
                prop_assert!(t.runs().iter().all(|r| r.0 < r.1));
                for &p in &want {
                    prop_assert!(t.contains(p), "page {} lost: {:?}", p, t.runs());
                }
            }
        }
    }

    #[test]
    fn exact_while_it_has_room() {
        let mut t = Touched::default();
        t.add(10, 20);
        t.add(30, 40);
        t.add(20, 25);
        assert_eq!(t.runs(), &[(10, 25), (30, 40)]);
        t.remove(12, 35);
        assert_eq!(t.runs(), &[(10, 12), (35, 40)]);
        let mut seen = Vec::new();
        t.for_each_in(11, 36, |p| seen.push(p));
        assert_eq!(seen, vec![11, 35]);
        t.clear();
        assert!(t.is_empty());
    }
}
