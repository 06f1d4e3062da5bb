//! The incremental check: against the record of the last clean check and
//! the model's changes since, it re-verifies only what may have changed,
//! and reports what a full check would report about it.
//!
//! - Page tables: the whole tree is read again (only tables that exist)
//!   and compared with the recorded copies; a level-1 entry is verified
//!   again when it changed (the accessed and dirty bits of a present entry
//!   aside: the CPU sets them) or its page is among the model's changes.
//!   Upper levels are checked in full (few tables); new, moved and freed
//!   tables change their frames' claims; a table that vanished, and every
//!   changed page, has its model runs checked for missing tables.
//! - Frames: every frame whose claim, bitmap bit or host ownership changed
//!   is decided again from all its claims (invariants 1–3); the others
//!   keep their verdict (clean, or there would be no record).
//! - The frame-info table: the frames whose record changed or whose pages
//!   changed. The swap store's bookkeeping: in full when it or an on-swap
//!   page changed; slot data for changed pages and changed slots.
//! - Data: the changed present pages. File images: full checks only.

use protocol::Hello;

use super::bitmap::Bitmap;
use super::claims::{Claim, Ctx, Owner};
use super::copies::{refresh, word};
use super::entry::{decode_leaf, Leaf, A, D, P};
use super::memory::GuestMemory;
use super::stateful::{Checker, Record};
use super::swap::{check_store, model_slots, refresh_store};
use super::violation::{Path, Step};
use super::walk::{walk, Table, Translation, Tree, Walk};
use super::{data, leaf, mmap, slots, CheckReport, Scope, Violation};
use crate::model::{Changes, Expected, ModelState};

/// Whether a level-1 entry changed in a way that matters.
fn differ(old: u64, new: u64) -> bool {
    old != new && ((old ^ new) & !(A | D) != 0 || old & P == 0)
}

/// The entries leading to `owner`'s entry in `tree`.
fn path_of(tree: &Tree, owner: Owner) -> Path {
    match owner {
        Owner::Table { level, virt } => tree.find(virt, level).map_or(
            Path {
                virt,
                steps: vec![],
            },
            Table::path,
        ),
        Owner::Page { virt } => match tree.find(virt & !0x1f_ffff, 1) {
            Some(t) => {
                let i = ((virt >> 12) & 511) as usize;
                let mut steps = t.steps.clone();
                steps.push(Step {
                    table: t.frame,
                    index: i as u16,
                    raw: t.entries[i],
                });
                Path { virt, steps }
            }
            None => Path {
                virt,
                steps: vec![],
            },
        },
    }
}

/// What the comparison of two trees found.
#[derive(Default)]
struct Diff {
    removed: Vec<Claim>,
    added: Vec<Claim>,
    /// Translations of the entries verified again.
    verified: Vec<Translation>,
    /// Page numbers verified again (present or not).
    pages: Vec<u64>,
    /// Frame numbers of the present pages that changed, before and after.
    page_frames: Vec<u64>,
    /// Page runs whose coverage by tables may have changed.
    regions: Vec<(u64, u64)>,
    /// Whether a changed page was or is on swap.
    swap: bool,
}

impl Diff {
    fn table_claim(&mut self, t: &Table, added: bool) {
        let owner = Owner::Table {
            level: t.level,
            virt: t.virt,
        };
        let c = Claim {
            frame: t.frame,
            owner,
        };
        if added {
            self.added.push(c);
        } else {
            self.removed.push(c);
        }
    }

    /// The old entry `old` of page `virt` no longer holds.
    fn drop_old(&mut self, virt: u64, old: u64) {
        match decode_leaf(old, virt < 1 << 47) {
            Leaf::Present { frame, .. } => {
                let owner = Owner::Page { virt };
                self.removed.push(Claim { frame, owner });
                self.page_frames.push(frame >> 12);
            }
            Leaf::OnSwap { .. } => self.swap = true,
            _ => {}
        }
    }
}

impl Checker {
    /// Checks what `changes` (the model's, taken right after the last
    /// check's) and the differences from the record say may have changed;
    /// a full check when there is no record to compare with or the changes
    /// do not follow it.
    pub fn incremental(
        &mut self,
        mem: &dyn GuestMemory,
        hello: &Hello,
        expect: &Expected,
        changes: &Changes,
    ) -> CheckReport {
        let usable = self
            .record
            .as_ref()
            .is_some_and(|r| changes.follow(r.since.0, r.since.1) && r.hello == *hello);
        if !usable {
            return self.full(mem, hello, expect, Some(changes));
        }
        let mut rec = self.record.take().expect("checked above");
        let mut out = Vec::new();
        let tree = walk(mem, hello, &mut self.pool, &mut out);
        let mut d = Diff {
            regions: changes.pages().to_vec(),
            ..Diff::default()
        };
        compare(hello, expect, changes, &rec.tree, &tree, &mut d, &mut out);
        d.swap |= changes.pages().iter().any(|&(s, e)| {
            expect
                .runs_in(s, e)
                .any(|r| matches!(r.2, ModelState::OnSwap { .. }))
        });
        // Expected pages without a table, where coverage may have changed.
        let covered: Vec<u64> = tree.leaf_tables().map(|t| t.first_page() >> 9).collect();
        let mut runs: Vec<_> = d
            .regions
            .iter()
            .flat_map(|&(s, e)| expect.runs_over(s, e))
            .collect();
        runs.sort_unstable_by_key(|r| r.0);
        runs.dedup_by_key(|r| r.0);
        leaf::missing_tables(runs.into_iter(), &covered, &mut out);

        let mut frames: Vec<u64> = Vec::new();
        let bitmap = Bitmap::read(mem, hello, Vec::new(), &mut out);
        if let Some(b) = &bitmap {
            for (w, (&old, &new)) in rec.bitmap.iter().zip(&b.words).enumerate() {
                let mut x = old ^ new;
                while x != 0 {
                    frames.push(w as u64 * 64 + u64::from(x.trailing_zeros()));
                    x &= x - 1;
                }
            }
        }
        for c in &d.removed {
            self.owners.unclaim(c.frame >> 12, c.owner);
        }
        let claimed = d.removed.iter().chain(&d.added).map(|c| c.frame >> 12);
        frames.extend(claimed.chain(changes.host_frames().iter().copied()));
        frames.sort_unstable();
        frames.dedup();

        // Frame-info records, before the claims are decided again: a
        // frame's unchanged page is its owner still.
        let mut fi: Vec<u64> = d.page_frames.clone();
        fi.extend(d.verified.iter().map(|t| t.frame >> 12));
        let info_at = hello.frame_info.start;
        if let Some(info) = rec.info.as_mut() {
            let changed = |n: usize, _, _| fi.push(n as u64);
            if let Err(error) = refresh(mem, info_at, info, &mut self.scratch, changed) {
                let what = format!("the frame-info table at {info_at:#x}");
                out.push(Violation::Unreadable { what, error });
            }
        }
        if let Some(info) = &rec.info {
            fi.sort_unstable();
            fi.dedup();
            // The verified translations by frame number, so that each
            // frame finds its own in log time (not a scan per frame).
            let mut by_frame: Vec<&Translation> = d.verified.iter().collect();
            by_frame.sort_by_key(|t| t.frame >> 12);
            for n in fi.into_iter().filter(|&n| n < (info.len() / 8) as u64) {
                let kept = match self.owners.owner_of(n) {
                    Some(Owner::Page { virt }) => leaf_translation(&tree, virt),
                    _ => None,
                };
                let mut maps: Vec<&Translation> = kept.iter().collect();
                let from = by_frame.partition_point(|t| t.frame >> 12 < n);
                let to = by_frame.partition_point(|t| t.frame >> 12 <= n);
                maps.extend(&by_frame[from..to]);
                maps.sort_by_key(|t| t.virt);
                mmap::check_frame(expect, n, word(info, n as usize), &maps, &mut out);
            }
        }
        if let Some(bitmap) = &bitmap {
            let ctx = Ctx {
                hello,
                expect,
                bitmap,
            };
            d.added.sort_by_key(|c| c.frame >> 12);
            let path = |o| path_of(&tree, o);
            self.owners.redo(&ctx, &frames, &d.added, path, &mut out);
        }
        data::check_pages(mem, hello, expect, d.verified.iter(), &mut out);

        if let Some(store) = rec.swap.as_mut() {
            let mut moved = false;
            let scratch = &mut self.scratch;
            match refresh_store(mem, hello, store, scratch, &mut moved) {
                Err(why) => out.push(Violation::SwapStore { why }),
                Ok(lengths) if moved || d.swap => {
                    let found = check_store(store, &model_slots(expect), &mut self.units, &mut out);
                    let mut wanted: Vec<u64> = slots_of(expect, changes, &d.pages);
                    wanted.extend(lengths.iter().flatten());
                    wanted.sort_unstable();
                    let again = |&(slot, _, _): &(u64, u64, u64)| {
                        lengths.is_none() || wanted.binary_search(&slot).is_ok()
                    };
                    let found = found.into_iter().filter(again);
                    slots::check_slots(mem, hello, store, expect, found, &mut out);
                }
                Ok(_) => {}
            }
        }

        let scope = Scope::Incremental {
            pages: d.pages.len() as u64,
            frames: frames.len() as u64,
            tables: tree.tables.len(),
        };
        rec.tree.recycle(&mut self.pool);
        match bitmap.filter(|_| out.is_empty()) {
            Some(b) => {
                self.record = Some(Record {
                    hello: rec.hello,
                    since: (changes.epoch(), changes.seq()),
                    tree,
                    bitmap: b.words,
                    info: rec.info,
                    swap: rec.swap,
                })
            }
            None => tree.recycle(&mut self.pool),
        }
        CheckReport {
            violations: out,
            walk: Walk::default(),
            scope,
        }
    }
}

/// The present page at `virt` in `tree`, if any.
fn leaf_translation(tree: &Tree, virt: u64) -> Option<Translation> {
    let t = tree.find(virt & !0x1f_ffff, 1)?;
    leaf::translation(t, ((virt >> 12) & 511) as usize)
}

/// The swap slots the model puts the changed pages on.
fn slots_of(expect: &Expected, changes: &Changes, pages: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    for &(s, e) in changes.pages() {
        for (rs, re, st) in expect.runs_in(s, e) {
            if let ModelState::OnSwap { slot } = st {
                out.extend(slot..slot + (re - rs));
            }
        }
    }
    for &vpn in pages {
        if let Some(ModelState::OnSwap { slot }) = expect.state_of(vpn) {
            out.push(slot);
        }
    }
    out
}

/// Compares the trees `old` and `new` (both in walk order): the claims
/// that changed and the level-1 entries to verify again, verified.
fn compare(
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
                    for k in 0..512 {
                        verify(hello, expect, n, k, 0, d, out);
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
                } else if n.level == 1 && o.entries[..] != n.entries[..] {
                    let base = n.first_page();
                    let mut dirty = changes.pages_in(base, base + 512).peekable();
                    for k in 0..512 {
                        let vpn = base + k as u64;
                        while dirty.peek().is_some_and(|&(_, e)| e <= vpn) {
                            dirty.next();
                        }
                        let is_dirty = dirty.peek().is_some_and(|&(s, _)| s <= vpn);
                        if is_dirty || differ(o.entries[k], n.entries[k]) {
                            verify(hello, expect, n, k, o.entries[k], d, out);
                        }
                    }
                } else if n.level == 1 {
                    let base = n.first_page();
                    for (s, e) in changes.pages_in(base, base + 512) {
                        for vpn in s..e {
                            let k = (vpn - base) as usize;
                            verify(hello, expect, n, k, o.entries[k], d, out);
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
            d.drop_old(super::leaf::entry_virt(t, k), raw);
        }
    }
    d.regions.push((base, base + 512));
}

/// Verifies entry `k` of the level-1 table `t`, whose recorded value was
/// `old` (0 for a new table).
fn verify(
    hello: &Hello,
    expect: &Expected,
    t: &Table,
    k: usize,
    old: u64,
    d: &mut Diff,
    out: &mut Vec<Violation>,
) {
    let vpn = t.first_page() + k as u64;
    let want = expect.state_of(vpn);
    if let Some(tr) = leaf::check_entry(hello, expect, t, k, want, out) {
        d.added.push(Claim {
            frame: tr.frame,
            owner: Owner::Page { virt: tr.virt },
        });
        d.page_frames.push(tr.frame >> 12);
        d.verified.push(tr);
    }
    d.swap |= matches!(want, Some(ModelState::OnSwap { .. }))
        || matches!(decode_leaf(t.entries[k], true), Leaf::OnSwap { .. });
    d.pages.push(vpn);
    d.drop_old(leaf::entry_virt(t, k), old);
}
