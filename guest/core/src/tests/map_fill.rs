//! `Map`'s fill of unusable pages a page table's run at a time
//! (`paging::fill`): held to the entry-by-entry path it replaced
//! (`PageTables::update_run`, through `set_leaf`), on the same machine
//! state, and checked with [`check`] (every counter, present count and
//! frame record equal to a walk of the tables).

use x86_64::structures::paging::PhysFrame;

use super::{check, frame, snapshot};
use crate::frame_alloc::FrameAllocator as _;
use crate::frames::BitmapFrameAllocator;
use crate::holders::Holders;
use crate::layout::HEAP_END;
use crate::paging::PageTables;
use crate::pte::Pte;
use crate::sim::{SimMachine, SimMemory};
use crate::validate::{Span, LINEAR_MASK};

/// The page tables of a simulated machine.
type Tables = PageTables<SimMemory, BitmapFrameAllocator>;

/// A 2 MiB-aligned user address: the first page of a page table.
const TABLE: u64 = 0x4000_0000;

/// From 72 pages below `table` to 16 pages past the table after it: a
/// run that crosses a chunk of frames (64) in its first table, a whole
/// table, and a short run in the last.
fn span_at(table: u64) -> Span {
    Span {
        start: (table - 72 * 4096) & LINEAR_MASK,
        end: (table + (512 + 16) * 4096) & LINEAR_MASK,
    }
}

/// A user span and one in the kernel's half past the heap (entries
/// without U).
fn spans() -> [Span; 2] {
    [span_at(TABLE), span_at(HEAP_END + 0x4000_0000)]
}

/// The pages `Map` may ask for: writable, read-only, executable.
const MODES: [(bool, bool); 3] = [(true, false), (false, false), (false, true)];

/// A machine with the tables of `span` made and every page unusable;
/// `plant` then changes pages of it before the fill.
fn machine(span: Span, plant: impl Fn(&mut SimMachine)) -> SimMachine {
    let mut m = SimMachine::without_reclaim(2048);
    let pt = m.vmm.tables_for_test();
    assert!(pt.ensure_tables(span).is_ok());
    plant(&mut m);
    m
}

/// Fills `span` by the run path (`runs`) or entry by entry, frames taken
/// as `Map` takes them, the frame after the first `limit` failing; answers
/// whether it filled all, and the frames in the order they were taken.
fn fill(
    m: &mut SimMachine,
    span: Span,
    (writable, executable): (bool, bool),
    runs: bool,
    limit: usize,
) -> (bool, Vec<PhysFrame>) {
    let mut taken = Vec::new();
    let pt = m.vmm.tables_for_test();
    let mut next = |pt: &mut Tables| {
        let f = if taken.len() < limit {
            pt.zeroed_frame()
        } else {
            None
        };
        taken.extend(f);
        f
    };
    let out = if runs {
        pt.fill_unusable(span, writable, executable, &mut next)
    } else {
        pt.update_run(span, (writable, executable), &mut next)
    };
    (out.is_ok(), taken)
}

/// The state of every page of `span`.
fn pages(m: &mut SimMachine, span: Span) -> Vec<Pte> {
    let pt = m.vmm.tables_for_test();
    (span.start..span.end)
        .step_by(4096)
        .map(|linear| pt.lookup(linear))
        .collect()
}

/// The counts a fill moves: the present pages, the evictable entries made,
/// and each page table's present count (by its first page).
fn counts(m: &mut SimMachine, span: Span) -> (u64, u64, Vec<Option<u64>>) {
    let present = m.vmm.stats().present_pages;
    let pt = m.vmm.tables_for_test();
    let tables = (span.start..span.end)
        .step_by(1 << 21)
        .map(|linear| pt.table_in_use(linear).map(|(_, n)| n))
        .collect();
    (present, pt.evictable_made(), tables)
}

/// The frames the allocator knows to hold only zeros (`crate::zeroes`).
fn known_zero(m: &mut SimMachine) -> Vec<u64> {
    let frames = m.vmm.frames();
    (0..2048).filter(|&n| frames.is_zero(frame(n))).collect()
}

/// Both paths on two machines built alike, every page of `span` given a
/// frame: the same frames in the same order, the same tables, counters and
/// frame bitmap, each machine's counts equal to a walk.
fn both_alike(span: Span, mode: (bool, bool), plant: impl Fn(&mut SimMachine)) {
    let mut by_runs = machine(span, &plant);
    let mut by_entries = machine(span, &plant);
    let (all, frames) = fill(&mut by_runs, span, mode, true, usize::MAX);
    assert!(all);
    assert_eq!(
        (all, frames),
        fill(&mut by_entries, span, mode, false, usize::MAX)
    );
    assert_eq!(snapshot(&mut by_runs), snapshot(&mut by_entries));
    assert_eq!(counts(&mut by_runs, span), counts(&mut by_entries, span));
    check(&mut by_runs);
    check(&mut by_entries);
    let (writable, executable) = mode;
    for page in pages(&mut by_runs, span) {
        assert!(
            matches!(page, Pte::PresentRam { writable: w, executable: x, .. } if (w, x) == mode),
            "{page:?}, asked for writable {writable}, executable {executable}"
        );
    }
}

#[test]
fn runs_of_unusable_pages_are_filled_as_entry_by_entry() {
    for span in spans() {
        for mode in MODES {
            both_alike(span, mode, |_| {});
        }
    }
}

#[test]
fn a_run_with_an_entry_not_zero_is_filled_entry_by_entry() {
    // An allocate-on-write page in the middle of the whole table: its run
    // goes through `update`, which counts it out of the allocate-on-write
    // pages; the other runs go at once.
    for span in spans() {
        both_alike(span, (true, false), |m| {
            let pt = m.vmm.tables_for_test();
            let linear = span.start + (72 + 100) * 4096;
            let (table, i) = pt.leaf_slot(linear).expect("the span's tables exist");
            pt.set_leaf_flushed(table, i, linear, Pte::Unusable, Pte::AllocOnWrite);
        });
    }
}

/// A fill that runs out of frames after `k` (at a chunk's first frame, in
/// a chunk, at a table's end, in the next table) leaves the pages, the
/// counts and the present counts the entry-by-entry path left; after the
/// undo `Map` does (every page unusable again), the two machines are
/// alike and every count equals a walk.
#[test]
fn a_fill_that_runs_out_of_frames_leaves_what_entry_by_entry_left() {
    let span = span_at(TABLE);
    for k in [0, 1, 63, 64, 65, 71, 72, 73, 300] {
        let mut by_runs = machine(span, |_| {});
        let mut by_entries = machine(span, |_| {});
        let runs = fill(&mut by_runs, span, (true, false), true, k);
        assert_eq!(
            runs,
            fill(&mut by_entries, span, (true, false), false, k),
            "k={k}"
        );
        assert!(!runs.0);
        let states = pages(&mut by_runs, span);
        assert_eq!(states, pages(&mut by_entries, span), "k={k}");
        assert!(states.iter().take(k).all(|p| p.is_present()), "k={k}");
        assert!(states.iter().skip(k).all(|p| *p == Pte::Unusable), "k={k}");
        let (present, made, _) = counts(&mut by_runs, span);
        assert_eq!((present, made), {
            let (p, m, _) = counts(&mut by_entries, span);
            (p, m)
        });
        // The present count of each table that holds a filled page (the
        // entry-by-entry walk freed the others as it left them).
        let (_, _, tables) = counts(&mut by_runs, span);
        let (_, _, left) = counts(&mut by_entries, span);
        for (t, l) in tables.iter().zip(&left) {
            if l.is_some() {
                assert_eq!(t, l, "k={k}");
            }
        }
        for m in [&mut by_runs, &mut by_entries] {
            let none = Holders {
                finfo: None,
                swap: None,
            };
            m.vmm.tables_for_test().clear(span, none);
        }
        assert_eq!(snapshot(&mut by_runs), snapshot(&mut by_entries), "k={k}");
        // And the same frames known to hold only zeros (the tables made
        // for pages never filled among them).
        assert_eq!(
            known_zero(&mut by_runs),
            known_zero(&mut by_entries),
            "k={k}"
        );
        check(&mut by_runs);
        check(&mut by_entries);
    }
}
