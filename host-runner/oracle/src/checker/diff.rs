//! The comparison of an incremental check: the tree the walk read against
//! the record's, table by table in walk order; the claims that changed,
//! and every level-1 entry that changed or whose page the model changed,
//! verified again (see [`super::incremental`]). The model's states of a
//! table's pages, and the frames `Query` reported for them, are read
//! alongside its entries ([`leaf::wants`]), as the full check reads them.

use std::sync::Arc;

use protocol::Hello;

use super::claims::{Claim, Owner};
use super::entry::{decode_leaf, Leaf, A, D, P};
use super::leaf;
use super::violation::Violation;
use super::walk::{Table, Translation, Tree};
use crate::model::keys::is_user;
use crate::model::{Changes, Expected, ModelState};

/// Whether a level-1 entry changed in a way that matters.
fn differ(old: u64, new: u64) -> bool {
    old != new && ((old ^ new) & !(A | D) != 0 || old & P == 0)
}

/// What the comparison of two trees found (its buffers kept by the
/// checker from one check to the next).
#[derive(Debug, Default)]
pub(super) struct Diff {
    pub removed: Vec<Claim>,
    pub added: Vec<Claim>,
    /// Translations of the entries verified again (their frames are in
    /// `page_frames` too).
    pub verified: Vec<Translation>,
    /// Page numbers verified again (present or not).
    pub pages: Vec<u64>,
    /// The swap slots the model puts those pages on.
    pub slots: Vec<u64>,
    /// Frame numbers of the present pages that changed, before and after.
    pub page_frames: Vec<u64>,
    /// Page runs whose coverage by tables may have changed.
    pub regions: Vec<(u64, u64)>,
    /// Whether a changed page was or is on swap.
    pub swap: bool,
}

impl Diff {
    /// Empty, its buffers kept.
    pub fn clear(&mut self) {
        self.removed.clear();
        self.added.clear();
        self.verified.clear();
        self.pages.clear();
        self.slots.clear();
        self.page_frames.clear();
        self.regions.clear();
        self.swap = false;
    }

    fn table_claim(&mut self, t: &Table, added: bool) {
        let c = t.claim();
        if added {
            self.added.push(c);
        } else {
            self.removed.push(c);
        }
    }

    /// The old entry `old` of page `virt` no longer holds.
    fn drop_old(&mut self, virt: u64, old: u64) {
        match decode_leaf(old, is_user(virt)) {
            Leaf::Present { frame, kind, .. } => {
                let owner = Owner::of_page(virt, kind);
                self.removed.push(Claim { frame, owner });
                self.page_frames.push(frame >> 12);
            }
            Leaf::OnSwap { .. } => self.swap = true,
            _ => {}
        }
    }
}

/// Whether `o` and `n` hold the same entries (shared: the walk found the
/// bytes unchanged).
fn same(o: &Table, n: &Table) -> bool {
    Arc::ptr_eq(&o.entries, &n.entries) || o.entries[..] == n.entries[..]
}

/// Compares the trees `old` and `new` (both in walk order): the claims
/// that changed and the level-1 entries to verify again, verified.
pub(super) fn compare(
    hello: &Hello,
    expect: &Expected,
    changes: &Changes,
    old: &Tree,
    new: &Tree,
    d: &mut Diff,
    out: &mut Vec<Violation>,
) {
    let (mut i, mut j) = (0, 0);
    loop {
        let (o, n) = (old.tables.get(i), new.tables.get(j));
        match (o, n) {
            (None, None) => break,
            (Some(o), n) if n.is_none_or(|n| o.key() < n.key()) => {
                d.table_claim(o, false);
                if o.level == 1 {
                    lose_table(o, d);
                }
                i += 1;
            }
            (o, Some(n)) if o.is_none_or(|o| n.key() < o.key()) => {
                d.table_claim(n, true);
                if n.level == 1 && !n.empty {
                    let base = n.first_page();
                    let mut want = leaf::wants(expect, base, base + 512);
                    for k in 0..512 {
                        let w = want.at(base + k as u64);
                        verify(hello, n, k, 0, w, d, out);
                    }
                }
                j += 1;
            }
            (Some(o), Some(n)) => {
                if o.frame != n.frame {
                    d.table_claim(o, false);
                    d.table_claim(n, true);
                }
                if n.level == 1 && n.empty {
                    lose_table(o, d);
                } else if n.level == 1 && !same(o, n) {
                    let base = n.first_page();
                    let mut dirty = changes.pages_in(base, base + 512).peekable();
                    let mut want = leaf::wants(expect, base, base + 512);
                    for k in 0..512 {
                        let vpn = base + k as u64;
                        while dirty.peek().is_some_and(|&(_, e)| e <= vpn) {
                            dirty.next();
                        }
                        let is_dirty = dirty.peek().is_some_and(|&(s, _)| s <= vpn);
                        if is_dirty || differ(o.entries[k], n.entries[k]) {
                            let w = want.at(vpn);
                            verify(hello, n, k, o.entries[k], w, d, out);
                        }
                    }
                } else if n.level == 1 {
                    let base = n.first_page();
                    // The changed runs come in order, so one read of the
                    // model's states and reported frames serves them all.
                    let mut want = leaf::wants(expect, base, base + 512);
                    for (s, e) in changes.pages_in(base, base + 512) {
                        for vpn in s..e {
                            let k = (vpn - base) as usize;
                            let w = want.at(vpn);
                            verify(hello, n, k, o.entries[k], w, d, out);
                        }
                    }
                }
                i += 1;
                j += 1;
            }
            _ => unreachable!("one of the arms above matches"),
        }
    }
}

/// A level-1 table that no longer covers its pages: its present pages'
/// claims go, and its pages' runs are checked for missing tables.
fn lose_table(t: &Table, d: &mut Diff) {
    let base = t.first_page();
    for (k, &raw) in t.entries.iter().enumerate() {
        if raw != 0 {
            d.drop_old(leaf::entry_virt(t, k), raw);
        }
    }
    d.regions.push((base, base + 512));
}

/// Verifies entry `k` of the level-1 table `t`, whose recorded value was
/// `old` (0 for a new table), whose page the model has in state `want`
/// and for which `Query` reported the frame `known`, if any.
fn verify(
    hello: &Hello,
    t: &Table,
    k: usize,
    old: u64,
    (want, known): (Option<ModelState>, Option<u64>),
    d: &mut Diff,
    out: &mut Vec<Violation>,
) {
    let vpn = t.first_page() + k as u64;
    let virt = leaf::entry_virt(t, k);
    let raw = t.entries[k];
    d.pages.push(vpn);
    if !leaf::nothing_to_check(hello, virt, raw, want) {
        if let Some(tr) = leaf::check_entry(hello, t, k, (want, known), &mut d.verified, out) {
            d.added.push(Claim {
                frame: tr.frame,
                owner: Owner::of_page(tr.virt, tr.kind),
            });
            d.page_frames.push(tr.frame >> 12);
        }
        if let Some(ModelState::OnSwap { slot }) = want {
            d.swap = true;
            d.slots.push(slot);
        }
        d.swap |= matches!(decode_leaf(raw, true), Leaf::OnSwap { .. });
    }
    if old != 0 {
        d.drop_old(virt, old);
    }
}
