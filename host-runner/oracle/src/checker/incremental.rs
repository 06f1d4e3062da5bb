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
//! - Data: the changed present pages, compared on a thread of their own
//!   beside the frames and the swap store when the checker may use one
//!   ([`Checker::set_data_thread`]); the report is the same, in the same
//!   order. File images: full checks only.

use protocol::Hello;

use super::bitmap::Bitmap;
use super::claims::{Ctx, Owner};
use super::diff::{compare, Diff};
use super::memory::GuestMemory;
use super::sharing::{self, SharedIndex};
use super::spaces::decide_leaks;
use super::stateful::{Checker, Record};
use super::swap::{check_store, model_slots, refresh_store};
use super::violation::{Path, Step};
use super::walk::{walk, Table, Translation, Tree, Walk};
use super::{leaf, mmap, slots, CheckReport, Scope, Violation};
use crate::model::{Changes, Expected, ModelState};

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
        Owner::Page { virt } | Owner::Shared { virt } => match tree.find(virt & !0x1f_ffff, 1) {
            Some(t) => {
                let i = ((virt >> 12) & 511) as usize;
                let mut steps = t.steps().to_vec();
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
        let spaces = expect.space_roots();
        let tree = walk(
            mem,
            hello,
            spaces,
            Some(&rec.tree),
            &mut self.pool,
            &mut out,
        );
        let mut d = std::mem::take(&mut self.diff);
        d.clear();
        d.regions.extend_from_slice(changes.pages());
        compare(hello, expect, changes, &rec.tree, &tree, &mut d, &mut out);
        d.swap |= changes.pages().iter().any(|&(s, e)| {
            expect
                .runs_in(s, e)
                .any(|r| matches!(r.2, ModelState::OnSwap { .. }))
        });
        let input = Inputs {
            mem,
            hello,
            expect,
            changes,
        };
        let verified = std::mem::take(&mut d.verified);
        let walked = Walked {
            rec: &mut rec,
            tree: &tree,
            d: &mut d,
            verified: &verified,
        };
        let (frames, bitmap) = self.frames_beside_data(input, walked, &mut out);
        d.verified = verified;

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
        self.diff = d;
        CheckReport {
            violations: out,
            walk: Walk::default(),
            scope,
        }
    }

    /// The incremental check's frames: the model's pages without a table;
    /// invariants 1–3 for every frame whose claim, bitmap bit or host
    /// ownership changed; the frame-info records of the frames whose
    /// record or pages changed; the sharing rule. Answers the frames
    /// decided again and the bitmap read, for the record. `verified`: the
    /// pages verified again (`w.verified`; `d.verified` is empty meanwhile).
    pub(super) fn frames_again(
        &mut self,
        input: Inputs,
        w: &mut Walked,
        out: &mut Vec<Violation>,
    ) -> (Vec<u64>, Option<Bitmap>) {
        let (rec, tree, d, verified) = (&mut *w.rec, w.tree, &mut *w.d, w.verified);
        let Inputs {
            mem,
            hello,
            expect,
            changes,
        } = input;
        // Expected pages without a table, where coverage may have changed.
        let covered: Vec<u64> = tree.leaf_tables().map(|t| t.first_page() >> 9).collect();
        let mut runs: Vec<_> = d
            .regions
            .iter()
            .flat_map(|&(s, e)| expect.runs_over(s, e))
            .collect();
        runs.sort_unstable_by_key(|r| r.0);
        runs.dedup_by_key(|r| r.0);
        leaf::missing_tables(runs.into_iter(), &covered, out);

        // Every shared entry, read again in full (they are few): the
        // sharing rule is decided for every shared frame each time.
        let shared = SharedIndex::read(tree);
        let mut frames: Vec<u64> = Vec::new();
        let bitmap = Bitmap::read(mem, hello, Vec::new(), out);
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
        // The bitmap's changed frames came in order: only the claims' and
        // the host's are sorted, and the stable sort then merges the two
        // runs it finds instead of sorting them all again.
        let from_bitmap = frames.len();
        frames.extend(claimed.chain(changes.host_frames().iter().copied()));
        frames[from_bitmap..].sort_unstable();
        frames.sort();
        frames.dedup();

        // Frame-info records, before the claims are decided again: a
        // frame's unchanged page is its owner still.
        // (The verified translations' frames are among the pages' frames.)
        let mut fi: Vec<u64> = d.page_frames.clone();
        let info_at = hello.frame_info.start;
        if let Some(info) = rec.info.as_mut() {
            let changed = |n: usize, _, _| fi.push(n as u64);
            let len = info.bytes.len() as u64;
            if let Err(error) = info.sync(mem, info_at, len, changed) {
                let what = format!("the frame-info table at {info_at:#x}");
                out.push(Violation::Unreadable { what, error });
            }
        }
        if let Some(info) = &rec.info {
            fi.sort_unstable();
            fi.dedup();
            // The verified translations by frame number: the frames come in
            // order, so each finds its own where the last one's ended (one
            // merge, not a search per frame).
            let mut by_frame: Vec<(u64, &Translation)> =
                verified.iter().map(|t| (t.frame >> 12, t)).collect();
            by_frame.sort_by_key(|&(n, _)| n);
            let mut to = 0;
            for n in fi
                .into_iter()
                .filter(|&n| n < (info.bytes.len() / 8) as u64)
            {
                let kept = match self.owners.owner_of(n) {
                    Some(Owner::Page { virt } | Owner::Shared { virt }) => {
                        leaf_translation(tree, virt)
                    }
                    _ => None,
                };
                let mut maps: Vec<&Translation> = kept.iter().collect();
                let mut from = to;
                while by_frame.get(from).is_some_and(|&(m, _)| m < n) {
                    from += 1;
                }
                to = from;
                while by_frame.get(to).is_some_and(|&(m, _)| m == n) {
                    to += 1;
                }
                maps.extend(by_frame[from..to].iter().map(|&(_, t)| t));
                maps.sort_by_key(|t| t.virt);
                mmap::check_frame(expect, n, info.word(n as usize), &maps, out);
            }
        }
        if let Some(bitmap) = &bitmap {
            let ctx = Ctx {
                hello,
                expect,
                bitmap,
            };
            d.added.sort_by_key(|c| c.frame >> 12);
            let path = |o| path_of(tree, o);
            self.owners
                .redo(&ctx, &frames, &d.added, &shared, path, out);
            decide_leaks(mem, &ctx, &mut self.owners, Some(&frames), out);
        }
        sharing::check(&shared, rec.info.as_ref(), bitmap.as_ref(), expect, out);
        (frames, bitmap)
    }

    /// The incremental check's swap store: its bookkeeping in full when it
    /// or an on-swap page changed, and the data of changed slots.
    pub(super) fn swap_again(
        &mut self,
        input: Inputs,
        rec: &mut Record,
        d: &Diff,
        out: &mut Vec<Violation>,
    ) {
        let (mem, hello, expect) = (input.mem, input.hello, input.expect);
        if let Some(store) = rec.swap.as_mut() {
            let mut moved = false;
            match refresh_store(mem, hello, store, &mut moved) {
                Err(why) => out.push(Violation::SwapStore { why }),
                Ok(lengths) if moved || d.swap => {
                    let found = check_store(store, &model_slots(expect), &mut self.units, out);
                    let mut wanted: Vec<u64> = slots_of(expect, input.changes, &d.slots);
                    wanted.extend(lengths.iter().flatten());
                    wanted.sort_unstable();
                    let again = |&(slot, _, _): &(u64, u64, u64)| {
                        lengths.is_none() || wanted.binary_search(&slot).is_ok()
                    };
                    let found = found.into_iter().filter(again);
                    slots::check_slots(mem, hello, store, expect, found, out);
                }
                Ok(_) => {}
            }
        }
    }
}

/// The present page at `virt` in `tree`, if any.
fn leaf_translation(tree: &Tree, virt: u64) -> Option<Translation> {
    let t = tree.find(virt & !0x1f_ffff, 1)?;
    leaf::translation(t, ((virt >> 12) & 511) as usize)
}

/// The swap slots the model puts the changed pages on (`verified`: those
/// of the pages verified again, found as they were).
fn slots_of(expect: &Expected, changes: &Changes, verified: &[u64]) -> Vec<u64> {
    let mut out = verified.to_vec();
    for &(s, e) in changes.pages() {
        for (rs, re, st) in expect.runs_in(s, e) {
            if let ModelState::OnSwap { slot } = st {
                out.extend(slot..slot + (re - rs));
            }
        }
    }
    out
}

/// What the walk of one incremental check leaves to the parts after it:
/// the record it brings up to date, the tree it walked, the diff, and the
/// pages to verify again (taken out of `d.verified` meanwhile).
pub(super) struct Walked<'a> {
    pub rec: &'a mut Record,
    pub tree: &'a Tree,
    pub d: &'a mut Diff,
    pub verified: &'a [Translation],
}

/// What every part of one incremental check reads.
#[derive(Clone, Copy)]
pub(super) struct Inputs<'a> {
    pub mem: &'a dyn GuestMemory,
    pub hello: &'a Hello,
    pub expect: &'a Expected<'a>,
    pub changes: &'a Changes,
}
