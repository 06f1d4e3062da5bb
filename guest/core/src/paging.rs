//! The page-table walker: 4 levels, tables created on demand, freed as soon
//! as every entry in them is zero. Every walk visits only the tables that
//! exist, so a huge range costs what its tables cost, not its pages.
//!
//! Addresses are linear (48-bit, see [`crate::validate::Span`]); level 4 is
//! the PML4, level 1 the page table.

use x86_64::structures::paging::{Page, PhysFrame};
use x86_64::VirtAddr;

use crate::backend::{Flush, PhysMemory};
use crate::pte::{self, Pte};
use crate::validate::{canonical, Span, LINEAR_MASK};
use crate::vmm::Vmm;

/// Shift of the address span of one entry of a table at `level`.
fn shift(level: u8) -> u32 {
    12 + 9 * u32::from(level - 1)
}

/// Whether a linear address is in the lower half (its entries carry U).
pub(crate) fn user(linear: u64) -> bool {
    linear < (1 << 47)
}

/// The page at a linear address.
pub(crate) fn page_of(linear: u64) -> Page {
    Page::containing_address(VirtAddr::new_truncate(canonical(linear)))
}

/// Tables of levels `level - 1` down to 1 needed to cover `s..e` below a
/// missing entry of a table at `level`.
fn tables_below(level: u8, s: u64, e: u64) -> u64 {
    (1..level).fold(0u64, |acc, j| {
        let sh = shift(j) + 9;
        acc.saturating_add(((e - 1) >> sh) - (s >> sh) + 1)
    })
}

/// The entries of a table at `level` based at `base` that `s..e` covers:
/// `(index, lo, s', e')` with `s'..e'` the part under that entry.
fn entries(level: u8, base: u64, s: u64, e: u64) -> impl Iterator<Item = (usize, u64, u64, u64)> {
    let sh = shift(level);
    let first = (s - base) >> sh;
    let last = (e - 1 - base) >> sh;
    (first..=last).map(move |i| {
        let lo = base + (i << sh);
        let hi = lo + (1u64 << sh);
        (i as usize, lo, s.max(lo), e.min(hi))
    })
}

impl<M: PhysMemory> Vmm<M> {
    pub(crate) fn read_entry(&mut self, table: PhysFrame, i: usize) -> u64 {
        pte::raw(&self.mem.table(table)[i & 511])
    }

    fn write_entry(&mut self, table: PhysFrame, i: usize, raw: u64) {
        pte::set_raw(&mut self.mem.table(table)[i & 511], raw);
    }

    /// Rewrites a level-1 entry's raw bits without changing its state (the
    /// clock clearing the accessed bit); the caller flushes.
    pub(crate) fn write_leaf_raw(&mut self, table: PhysFrame, i: usize, raw: u64) {
        self.write_entry(table, i, raw);
    }

    /// The page table and index holding the level-1 entry of `linear`, if
    /// its tables exist.
    pub(crate) fn leaf_slot(&mut self, linear: u64) -> Option<(PhysFrame, usize)> {
        let linear = linear & LINEAR_MASK;
        let mut table = self.pml4;
        for level in (2..=4).rev() {
            let i = ((linear >> shift(level)) & 511) as usize;
            let raw = self.read_entry(table, i);
            if raw & 1 == 0 {
                return None;
            }
            table = pte::frame_of(raw);
        }
        Some((table, ((linear >> 12) & 511) as usize))
    }

    /// The state of the page at `linear` (unusable when its tables are absent).
    pub(crate) fn lookup(&mut self, linear: u64) -> Pte {
        match self.leaf_slot(linear) {
            Some((t, i)) => {
                let raw = self.read_entry(t, i);
                Pte::decode(raw, user(linear))
            }
            None => Pte::Unusable,
        }
    }

    /// Writes a level-1 entry, keeping the counters; answers the flush a
    /// changed present entry needs (`#[must_use]`, like the token itself,
    /// since `Option` does not carry the token's `must_use`).
    #[must_use = "a changed present entry must be flushed from the TLB"]
    pub(crate) fn set_leaf(
        &mut self,
        table: PhysFrame,
        i: usize,
        linear: u64,
        old: Pte,
        new: Pte,
    ) -> Option<Flush> {
        self.write_entry(table, i, new.encode(user(linear)));
        self.count(linear, old, false);
        self.count(linear, new, true);
        old.is_present().then(|| Flush::new(page_of(linear)))
    }

    /// The lowest page of `span` whose state satisfies `pred` (absent tables
    /// hold unusable pages).
    pub(crate) fn find_first(&mut self, span: Span, pred: &impl Fn(Pte) -> bool) -> Option<u64> {
        let absent = pred(Pte::Unusable);
        self.find_rec(self.pml4, 4, 0, span.start, span.end, pred, absent)
    }

    #[allow(clippy::too_many_arguments)]
    fn find_rec(
        &mut self,
        table: PhysFrame,
        level: u8,
        base: u64,
        s: u64,
        e: u64,
        pred: &impl Fn(Pte) -> bool,
        absent: bool,
    ) -> Option<u64> {
        for (i, lo, s2, e2) in entries(level, base, s, e) {
            let raw = self.read_entry(table, i);
            if level == 1 {
                if pred(Pte::decode(raw, user(lo))) {
                    return Some(lo);
                }
            } else if raw == 0 {
                if absent {
                    return Some(s2);
                }
            } else if let Some(x) =
                self.find_rec(pte::frame_of(raw), level - 1, lo, s2, e2, pred, absent)
            {
                return Some(x);
            }
        }
        None
    }

    /// Tables (PDPT, PD, PT) missing to give every page of `span` a level-1
    /// entry; the count stops growing soon after it exceeds `limit`.
    pub(crate) fn count_missing_tables(&mut self, span: Span, limit: u64) -> u64 {
        let mut acc = 0;
        self.count_rec(self.pml4, 4, 0, span.start, span.end, limit, &mut acc);
        acc
    }

    #[allow(clippy::too_many_arguments)]
    fn count_rec(
        &mut self,
        table: PhysFrame,
        level: u8,
        base: u64,
        s: u64,
        e: u64,
        limit: u64,
        acc: &mut u64,
    ) {
        if level == 1 {
            return;
        }
        for (i, lo, s2, e2) in entries(level, base, s, e) {
            if *acc > limit {
                return;
            }
            let raw = self.read_entry(table, i);
            if raw == 0 {
                *acc = acc.saturating_add(tables_below(level, s2, e2));
            } else {
                self.count_rec(pte::frame_of(raw), level - 1, lo, s2, e2, limit, acc);
            }
        }
    }

    /// Creates every missing table of `span`. On `Err` (no free frame) some
    /// tables may be left empty: the caller prunes them with
    /// [`Vmm::update`] (which frees empty tables).
    pub(crate) fn ensure_tables(&mut self, span: Span) -> Result<(), ()> {
        self.ensure_rec(self.pml4, 4, 0, span.start, span.end)
    }

    fn ensure_rec(
        &mut self,
        table: PhysFrame,
        level: u8,
        base: u64,
        s: u64,
        e: u64,
    ) -> Result<(), ()> {
        if level == 1 {
            return Ok(());
        }
        for (i, lo, s2, e2) in entries(level, base, s, e) {
            let raw = self.read_entry(table, i);
            let child = if raw == 0 {
                let f = self.frames.alloc().ok_or(())?;
                self.mem.table(f).zero();
                self.write_entry(table, i, pte::table_entry(f, user(lo)));
                self.counters.page_table_frames += 1;
                f
            } else {
                pte::frame_of(raw)
            };
            self.ensure_rec(child, level - 1, lo, s2, e2)?;
        }
        Ok(())
    }

    /// Calls `f` on every page of `span` whose tables exist, in address
    /// order, with its canonical address and state; writes the state `f`
    /// answers (flushing changed present entries), then frees every table
    /// of the span left with only zero entries.
    pub(crate) fn update<F>(&mut self, span: Span, f: &mut F)
    where
        F: FnMut(&mut Self, u64, Pte) -> Option<Pte>,
    {
        self.update_rec(self.pml4, 4, 0, span.start, span.end, f);
    }

    fn update_rec<F>(&mut self, table: PhysFrame, level: u8, base: u64, s: u64, e: u64, f: &mut F)
    where
        F: FnMut(&mut Self, u64, Pte) -> Option<Pte>,
    {
        for (i, lo, s2, e2) in entries(level, base, s, e) {
            let raw = self.read_entry(table, i);
            if level == 1 {
                let old = Pte::decode(raw, user(lo));
                if let Some(new) = f(self, canonical(lo), old) {
                    if new != old {
                        if let Some(flush) = self.set_leaf(table, i, lo, old, new) {
                            flush.flush(&mut self.mem);
                        }
                    }
                }
            } else if raw != 0 {
                let child = pte::frame_of(raw);
                self.update_rec(child, level - 1, lo, s2, e2, f);
                if self.mem.table(child).is_empty() {
                    self.write_entry(table, i, 0);
                    Flush::new(page_of(lo)).flush(&mut self.mem);
                    let freed = self.frames.free(child);
                    debug_assert!(freed.is_ok(), "table frame {child:?} was not in use");
                    self.counters.page_table_frames -= 1;
                }
            }
        }
    }
}
