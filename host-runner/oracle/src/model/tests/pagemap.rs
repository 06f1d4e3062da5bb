//! The run map against a page-by-page map, and table counting by hand.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::model::pages::{ModelState, PageMap};

fn state(k: u8) -> Option<ModelState> {
    match k {
        0 => None,
        1 => Some(ModelState::AllocOnWrite),
        2 => Some(ModelState::PresentRam {
            writable: true,
            executable: false,
        }),
        3 => Some(ModelState::PresentRam {
            writable: false,
            executable: false,
        }),
        _ => Some(ModelState::OnSwap {
            slot: u64::from(k) * 1000,
        }),
    }
}

/// Tables by brute force: distinct `page >> shift` over every page.
fn naive_tables(pages: &BTreeMap<u64, ModelState>) -> u64 {
    [9, 18, 27]
        .iter()
        .map(|sh| {
            let mut v: Vec<u64> = pages.keys().map(|p| p >> sh).collect();
            v.dedup();
            v.len() as u64
        })
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn runs_agree_with_pages(ops in prop::collection::vec((0u64..3000, 1u64..1500, 0u8..6), 1..25)) {
        let mut map = PageMap::default();
        let mut naive: BTreeMap<u64, ModelState> = BTreeMap::new();
        for (start, len, k) in ops {
            let end = start + len;
            // Needed tables before the change, against brute force.
            let mut after = naive.clone();
            for p in start..end {
                after.insert(p, ModelState::AllocOnWrite);
            }
            prop_assert_eq!(map.needed_tables(start, end), naive_tables(&after) - naive_tables(&naive));
            map.set(start, end, state(k));
            for p in start..end {
                match state(k) {
                    Some(ModelState::OnSwap { slot }) => naive.insert(p, ModelState::OnSwap { slot: slot + p - start }),
                    Some(s) => naive.insert(p, s),
                    None => naive.remove(&p),
                };
            }
            prop_assert_eq!(map.tables(), naive_tables(&naive));
        }
        for p in 0..4600 {
            prop_assert_eq!(map.get(p), naive.get(&p).copied(), "page {}", p);
        }
        prop_assert_eq!(map.tables(), naive_tables(&naive));
        prop_assert_eq!(map.count(|_| true), naive.len() as u64);
        // Runs are maximal: no two neighbours continue one another.
        let runs: Vec<_> = map.runs().collect();
        for w in runs.windows(2) {
            prop_assert!(!(w[0].1 == w[1].0 && w[0].2.nth(w[0].1 - w[0].0) == w[1].2));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The table count each update keeps agrees with a count over every
    /// run, for ranges across PT, PD and PDPT boundaries, with updates
    /// that keep, change or empty the pages they cover.
    #[test]
    fn kept_table_count_agrees_with_a_count_of_the_runs(
        ops in prop::collection::vec((0usize..4, 0u64..3000, 1u64..(1 << 19), 0u8..7), 1..30)
    ) {
        // Near page 0, a PD boundary, a PDPT boundary and far above.
        let bases = [0, (1 << 18) - 1500, (1 << 27) - 1500, 5 << 27];
        let mut map = PageMap::default();
        for (b, off, len, k) in ops {
            let start = bases[b] + off;
            let len = if k == 6 { len } else { len % 1500 + 1 };
            match k {
                // Pages that hold none become allocate-on-write; others stay.
                6 => map.update(start, start + len, |_, s| s.or(Some(ModelState::AllocOnWrite))),
                k => map.set(start, start + len, state(k)),
            }
            prop_assert_eq!(map.tables(), map.tables_counted());
        }
    }
}

#[test]
fn tables_of_a_range_across_boundaries() {
    let mut map = PageMap::default();
    // Pages 511..513 straddle two PTs under one PD and one PDPT: 4 tables.
    assert_eq!(map.needed_tables(511, 513), 4);
    map.set(511, 513, Some(ModelState::AllocOnWrite));
    assert_eq!(map.tables(), 4);
    // The same PTs again: nothing new; one page further: one more PT.
    assert_eq!(map.needed_tables(0, 1024), 0);
    assert_eq!(map.needed_tables(1024, 1025), 1);
    // 1 GiB further (page 1 << 18): a new PT and a new PD.
    assert_eq!(map.needed_tables(1 << 18, (1 << 18) + 1), 2);
    // The whole lower half: 2^26 PTs, 2^17 PDs, 2^8 PDPTs, less the 4 there.
    let all = (1u64 << 26) + (1 << 17) + (1 << 8);
    assert_eq!(map.needed_tables(0, 1 << 35), all - 4);
}

#[test]
fn updates_split_and_merge_runs() {
    let mut map = PageMap::default();
    map.set(10, 20, Some(ModelState::OnSwap { slot: 100 }));
    map.set(13, 15, None);
    assert_eq!(map.get(12), Some(ModelState::OnSwap { slot: 102 }));
    assert_eq!(map.get(15), Some(ModelState::OnSwap { slot: 105 }));
    assert_eq!(map.first_gap(10, 20), Some(13));
    map.set(13, 15, Some(ModelState::OnSwap { slot: 103 }));
    assert_eq!(map.runs().count(), 1, "the slots continue: one run again");
    assert_eq!(map.first_gap(10, 20), None);
    assert_eq!(map.first_gap(5, 20), Some(5));
    assert_eq!(map.first_gap(10, 21), Some(20));
}
