//! The VMM's own records in upper-level entries (`protocol::formats`),
//! kept as level-1 entries change: a PD entry's present count, and the
//! no-evictable mark of a PD or PDPT entry, which the reclaim clock sets
//! ([`PageTables::mark_no_evictable`]) and every write of a page the
//! pressure path may send out clears ([`PageTables::leaf_changed`]). The
//! CPU ignores those bits, so none of these writes needs a flush.

use x86_64::structures::paging::PhysFrame;

use super::PageTables;
use crate::backend::PhysMemory;
use crate::conv::usize_of;
use crate::frame_alloc::FrameAllocator;
use crate::pte;
use crate::walk::shift;

/// How a change of a page table's entries moves its present count
/// ([`PageTables::leaf_changed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Moved {
    Not,
    /// This many more present entries.
    More(u64),
    OneFewer,
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// Entries of the page table `table` (of `linear`) changed: the PD
    /// entry naming it ([`PageTables::pd_of`]) gets its present
    /// count (`protocol::formats`) moved as `present` says and, when an
    /// entry was made one the pressure path may send out (`evictable`), its
    /// no-evictable mark ([`pte::marks_no_evictable`]) cleared, and the
    /// PDPT entry's above it. The CPU ignores those bits, so the entries
    /// need no flush.
    pub(super) fn leaf_changed(
        &mut self,
        table: PhysFrame,
        linear: u64,
        present: Moved,
        evictable: bool,
    ) {
        let Some((pd, i)) = self.pd_of(table, linear) else {
            return;
        };
        let raw = self.read_entry(pd, i);
        let mut new = raw;
        let n = pte::present_count(raw);
        match present {
            Moved::Not => {}
            Moved::More(more) => new = pte::with_present_count(new, n + more),
            // `inject-count-skip`: a deliberate bug, the count is never
            // lowered (host-runner's inject_bugs test: the checker must
            // find it).
            Moved::OneFewer if cfg!(feature = "inject-count-skip") => {}
            Moved::OneFewer => {
                debug_assert!(n > 0, "present count below zero at {linear:#x}");
                new = pte::with_present_count(new, n.saturating_sub(1));
            }
        }
        if evictable {
            new = pte::with_no_evictable(new, false);
            self.unmark_pdpt_above(linear);
        }
        if new != raw {
            self.write_entry(pd, i, new);
        }
    }

    /// Clears the no-evictable mark of the PDPT entry above `linear` under
    /// the walk root, if it has one: a page the pressure path may send out
    /// was made under it. (The PD entries below a marked PDPT entry need
    /// not be marked, so this is done whether the PD entry was or not.)
    fn unmark_pdpt_above(&mut self, linear: u64) {
        let slot = |level| usize_of((linear >> shift(level)) & 511);
        let pml4e = self.read_entry(self.root, slot(4));
        if pml4e & 1 == 0 {
            return;
        }
        let (pdpt, i) = (pte::frame_of(pml4e), slot(3));
        let raw = self.read_entry(pdpt, i);
        if pte::marks_no_evictable(raw) {
            self.write_entry(pdpt, i, pte::with_no_evictable(raw, false));
        }
    }

    /// The reclaim clock's scan of the whole table under the PD or PDPT
    /// entry `table[i]` found no page the pressure path may send out: the
    /// entry gets the no-evictable mark, and later sweeps pass the table
    /// unread until [`PageTables::leaf_changed`] clears it.
    pub(crate) fn mark_no_evictable(&mut self, table: PhysFrame, i: usize) {
        let raw = self.read_entry(table, i);
        debug_assert!(raw & 1 != 0, "a mark on an entry with no table");
        self.write_entry(table, i, pte::with_no_evictable(raw, true));
    }

    /// The PD entry naming the page table `table` (of `linear`), where the
    /// present counts are kept: the one found last time when it still
    /// names `table` (a reset or an unmap counts every page of a table in
    /// a row), else the one the walk finds, which becomes the hint.
    fn pd_of(&mut self, table: PhysFrame, linear: u64) -> Option<(PhysFrame, usize)> {
        let hinted = self.last_pd.filter(|&(pd, i)| {
            let raw = self.read_entry(pd, i);
            raw & 1 != 0 && pte::frame_of(raw) == table
        });
        let at = match hinted {
            Some(at) => at,
            None => {
                let Some(at) = self.pd_entry(linear) else {
                    debug_assert!(false, "a page's entry changed under a missing table");
                    return None;
                };
                (at.table, at.slot.index)
            }
        };
        self.last_pd = Some(at);
        Some(at)
    }
}
