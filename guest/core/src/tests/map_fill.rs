//! `Map`'s fill of unusable pages a page table's run at a time
//! (`paging::fill`): held to the entry-by-entry path it replaced
//! (`PageTables::update_run`, through `set_leaf`), on the same machine
//! state, and checked with [`check`] (every counter, present count and
//! frame record equal to a walk of the tables).

use x86_64::structures::paging::PhysFrame;

use super::{check, snapshot};
use crate::pte::Pte;
use crate::sim::SimMachine;
use crate::validate::Span;

/// A 2 MiB-aligned user address: the first page of a page table.
const TABLE: u64 = 0x4000_0000;

/// From 72 pages below [`TABLE`] to 16 pages past the table after it: a
/// run that crosses a chunk of frames (64) in its first table, a whole
/// table, and a short run in the last.
const SPAN: Span = Span {
    start: TABLE - 72 * 4096,
    end: TABLE + (512 + 16) * 4096,
};

/// A machine with the tables of [`SPAN`] made and every page unusable;
/// `plant` then changes pages of it before the fill.
fn machine(plant: impl Fn(&mut SimMachine)) -> SimMachine {
    let mut m = SimMachine::without_reclaim(2048);
    let pt = m.vmm.tables_for_test();
    assert!(pt.ensure_tables(SPAN).is_ok());
    plant(&mut m);
    m
}

/// Fills [`SPAN`] with writable pages, by the run path (`runs`) or entry
/// by entry, frames taken as `Map` takes them; answers the frames in the
/// order they were taken.
fn fill(m: &mut SimMachine, runs: bool) -> Vec<PhysFrame> {
    let mut taken = Vec::new();
    let pt = m.vmm.tables_for_test();
    let mut next = |pt: &mut crate::paging::PageTables<_, _>| {
        let f = pt.zeroed_frame();
        taken.extend(f);
        f
    };
    let out = if runs {
        pt.fill_unusable(SPAN, true, false, &mut next)
    } else {
        pt.update_run(SPAN, (true, false), &mut next)
    };
    assert!(out.is_ok());
    taken
}

/// Both paths on two machines built alike: the same frames in the same
/// order, the same tables, counters and frame bitmap.
fn both_alike(plant: impl Fn(&mut SimMachine)) {
    let mut by_runs = machine(&plant);
    let mut by_entries = machine(&plant);
    let frames = fill(&mut by_runs, true);
    assert_eq!(frames, fill(&mut by_entries, false));
    assert_eq!(snapshot(&mut by_runs), snapshot(&mut by_entries));
    let (runs, entries) = (
        by_runs.vmm.tables_for_test().evictable_made(),
        by_entries.vmm.tables_for_test().evictable_made(),
    );
    assert_eq!(runs, entries);
    check(&mut by_runs);
    check(&mut by_entries);
    for linear in (SPAN.start..SPAN.end).step_by(4096) {
        let page = by_runs.vmm.tables_for_test().lookup(linear);
        assert!(
            matches!(
                page,
                Pte::PresentRam {
                    writable: true,
                    executable: false,
                    ..
                }
            ),
            "{linear:#x}: {page:?}"
        );
    }
}

#[test]
fn runs_of_unusable_pages_are_filled_as_entry_by_entry() {
    both_alike(|_| {});
}

#[test]
fn a_run_with_an_entry_not_zero_is_filled_entry_by_entry() {
    // An allocate-on-write page in the middle of the whole table: its run
    // goes through `update`, which counts it out of the allocate-on-write
    // pages; the other runs go at once.
    both_alike(|m| {
        let pt = m.vmm.tables_for_test();
        let linear = TABLE + 100 * 4096;
        let (table, i) = pt.leaf_slot(linear).expect("the span's tables exist");
        pt.set_leaf_flushed(table, i, linear, Pte::Unusable, Pte::AllocOnWrite);
    });
}

/// The tables a failed fill leaves empty are `Map`'s undo to free
/// (`oom::map_rolls_back_at_every_failing_allocation` checks the whole
/// request), so this test looks at the pages only.
#[test]
fn a_fill_that_runs_out_of_frames_maps_only_the_pages_before() {
    // The 70th frame fails: in the first run's second chunk.
    let mut m = machine(|_| {});
    let pt = m.vmm.tables_for_test();
    let mut left = 69;
    let mut next = |pt: &mut crate::paging::PageTables<_, _>| {
        if left == 0 {
            return None;
        }
        left -= 1;
        pt.zeroed_frame()
    };
    assert!(pt.fill_unusable(SPAN, true, false, &mut next).is_err());
    for (k, linear) in (SPAN.start..SPAN.end).step_by(4096).enumerate() {
        let page = m.vmm.tables_for_test().lookup(linear);
        let want = if k < 69 { "present" } else { "unusable" };
        let got = match page {
            Pte::PresentRam { .. } => "present",
            Pte::Unusable => "unusable",
            _ => "other",
        };
        assert_eq!(got, want, "page {k}: {page:?}");
    }
}
