//! Sets of numbers (pages, heap bytes) kept as runs in a map from start to
//! end, disjoint and not touching one another.

use std::collections::BTreeMap;

/// Adds `start..end` to `runs`, merged with every run it overlaps or
/// touches.
pub(super) fn insert_run(runs: &mut BTreeMap<u64, u64>, start: u64, end: u64) {
    let (mut s, mut e) = (start, end);
    let touching: Vec<(u64, u64)> = runs
        .range(..=end)
        .rev()
        .take_while(|(_, &re)| re >= start)
        .map(|(&rs, &re)| (rs, re))
        .collect();
    for (rs, re) in touching {
        runs.remove(&rs);
        s = s.min(rs);
        e = e.max(re);
    }
    runs.insert(s, e);
}
