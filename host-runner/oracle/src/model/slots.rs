//! The swap slots in use while one answer's reclaim events are applied.

use std::collections::BTreeSet;

use super::pages::{ModelState, PageMap};

/// The swap slots in use while one answer's events are applied: those of
/// the model's pages on swap, as ranges (one per run of pages, not one per
/// page: a model with many pages on swap paid for a set of every slot at
/// each answer with events), read when a `Swapped` event first needs them,
/// and those the answer's earlier events took.
#[derive(Debug, Default)]
pub(super) struct Slots {
    /// Disjoint, sorted `start..end` ranges of the slots on swap.
    on_swap: Option<Vec<(u64, u64)>>,
    taken: BTreeSet<u64>,
}

impl Slots {
    /// Takes `slot`; false when it is in use.
    pub(super) fn take(&mut self, pages: &PageMap, slot: u64) -> bool {
        let on_swap = self.on_swap.get_or_insert_with(|| swap_ranges(pages));
        let i = on_swap.partition_point(|&(s, _)| s <= slot);
        let on_swap = i > 0 && slot < on_swap[i - 1].1;
        !on_swap && self.taken.insert(slot)
    }
}

/// The slots of `pages`' runs on swap, as disjoint sorted ranges.
fn swap_ranges(pages: &PageMap) -> Vec<(u64, u64)> {
    let mut ranges: Vec<(u64, u64)> = pages
        .runs()
        .filter_map(|(s, e, st)| match st {
            ModelState::OnSwap { slot } => Some((slot, slot + (e - s))),
            _ => None,
        })
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}
