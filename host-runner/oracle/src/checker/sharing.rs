//! The sharing rule (formats.rs, "The sharing rule"): a data frame is
//! named by one leaf entry, unless every entry naming it is present shared;
//! then they all have the same W bit, their number is the count in the
//! frame's shared frame-info record (`1 << 62 | n`), the frame is in use,
//! and no shared entry is in the kernel half. A shared record on a frame
//! no shared entry names is a leak.
//!
//! The shared entries are few: both the full and the incremental check
//! gather every one of them from the whole tree they read ([`SharedIndex`])
//! and decide the rule for every shared frame, so that a count changed by
//! an unmap in one space is checked against the entries of every other
//! space, and both checks report the same. (A frame named by a shared and
//! a non-shared entry is reported by the claims: [`super::claims`].) The
//! frames memory shares are compared with the model's groups too.

use std::collections::BTreeMap;

use super::bitmap::Bitmap;
use super::claims::{Claim, Owner};
use super::copies::Mirror;
use super::entry::{ADDR, P, W};
use super::leaf::entry_virt;
use super::violation::{Path, Step, Violation};
use super::walk::Tree;
use crate::model::keys::{is_user, SpaceAddr};
use crate::model::{Expected, ModelState};

/// A shared frame-info record's mark (bit 62; bit 63 clear).
const SHARED: u64 = 1 << 62;
/// The mapping count of a shared record (bits 0–39).
const COUNT: u64 = (1 << 40) - 1;

/// The software bits 9–11 of a present shared entry, in place.
const SHARED_KIND: u64 = 0b101 << 9;

/// Whether a frame-info record is a shared one (bit 62 set, bit 63
/// clear): its other bits are judged here, not by `super::mmap`.
pub fn is_shared_record(record: u64) -> bool {
    record >> 62 == 1
}

/// One present shared entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedEntry {
    /// The frame's number.
    pub frame: u64,
    /// The page's key.
    pub virt: u64,
    pub writable: bool,
    pub path: Path,
}

/// Every present shared entry of a tree, by frame then key.
#[derive(Clone, Debug, Default)]
pub struct SharedIndex {
    entries: Vec<SharedEntry>,
}

impl SharedIndex {
    /// The shared entries of every level-1 table of `tree` (every live
    /// space's user half and the kernel half).
    pub fn read(tree: &Tree) -> SharedIndex {
        let mut entries = Vec::new();
        // A table with no present entry holds no shared one (the heap's
        // allocate-on-write tables, most of the time).
        for t in tree.leaf_tables().filter(|t| t.present > 0) {
            for (i, &raw) in t.entries.iter().enumerate() {
                if raw & P == 0 || raw & (7 << 9) != SHARED_KIND {
                    continue;
                }
                let virt = entry_virt(t, i);
                let mut steps = t.steps().to_vec();
                steps.push(Step {
                    table: t.frame,
                    index: i as u16,
                    raw,
                });
                entries.push(SharedEntry {
                    frame: (raw & ADDR) >> 12,
                    virt,
                    writable: raw & W != 0,
                    path: Path { virt, steps },
                });
            }
        }
        entries.sort_by_key(|e| (e.frame, e.virt));
        SharedIndex { entries }
    }

    /// The shared entries naming frame number `n`.
    pub fn of_frame(&self, n: u64) -> &[SharedEntry] {
        let from = self.entries.partition_point(|e| e.frame < n);
        let to = self.entries.partition_point(|e| e.frame <= n);
        &self.entries[from..to]
    }

    /// The claims of frame number `n` by shared entries.
    pub fn claims_of(&self, n: u64) -> impl Iterator<Item = Claim> + '_ {
        self.of_frame(n).iter().map(|e| Claim {
            frame: e.frame << 12,
            owner: Owner::Shared { virt: e.virt },
        })
    }
}

/// Keys of entries.
fn keys(entries: &[SharedEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.virt).collect()
}

/// Checks the sharing rule for every frame shared entries name, and every
/// shared record of `info` (`None`: unread, no record checks); `bitmap`
/// (`None`: unread) for frames marked free.
pub fn check(
    index: &SharedIndex,
    info: Option<&Mirror>,
    bitmap: Option<&Bitmap>,
    expect: &Expected,
    out: &mut Vec<Violation>,
) {
    let records = info.map_or(0, |i| (i.bytes.len() / 8) as u64);
    let record_of = |n: u64| (n < records).then(|| info.map_or(0, |i| i.word(n as usize)));
    for e in index.entries.iter().filter(|e| !is_user(e.virt)) {
        out.push(Violation::SharedInKernelHalf {
            path: e.path.clone(),
        });
    }
    for group in index.entries.chunk_by(|a, b| a.frame == b.frame) {
        let (n, frame) = (group[0].frame, group[0].frame << 12);
        let record = record_of(n);
        if bitmap.is_some_and(|b| n < b.total && !b.used(n)) {
            out.push(Violation::SharedFrameFree {
                frame,
                entries: keys(group),
                record: record.unwrap_or(0),
            });
        }
        if group.iter().any(|e| e.writable != group[0].writable) {
            let (w, r): (Vec<&SharedEntry>, Vec<&SharedEntry>) =
                group.iter().partition(|e| e.writable);
            out.push(Violation::SharedWritability {
                frame,
                writable: w.iter().map(|e| e.virt).collect(),
                read_only: r.iter().map(|e| e.virt).collect(),
            });
        }
        let well_formed = |r: u64| is_shared_record(r) && r & !(SHARED | COUNT) == 0;
        match record {
            None => {}
            Some(r) if well_formed(r) && r & COUNT == group.len() as u64 => {}
            Some(r) if well_formed(r) => out.push(Violation::SharedCount {
                frame,
                count: r & COUNT,
                entries: keys(group),
            }),
            Some(r) => out.push(Violation::SharedRecordMissing {
                frame,
                record: r,
                entries: keys(group),
            }),
        }
    }
    if let Some(info) = info {
        for &n in info.nonzero() {
            let r = info.word(n);
            if is_shared_record(r) && index.of_frame(n as u64).is_empty() {
                out.push(Violation::SharedRecordLeak {
                    frame: (n as u64) << 12,
                    record: r,
                });
            }
        }
    }
    against_model(index, expect, out);
}

/// The frames memory shares against the model's groups: the pages of one
/// group map one frame, and the pages mapping one frame are of one group.
fn against_model(index: &SharedIndex, expect: &Expected, out: &mut Vec<Violation>) {
    // Group → (key, frame) of its pages that memory maps shared.
    let mut groups: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for group in index.entries.chunk_by(|a, b| a.frame == b.frame) {
        let mut model: Vec<(u64, u64)> = group
            .iter()
            .filter_map(|e| match expect.state(e.virt) {
                Some(ModelState::Shared { group, .. }) => Some((group, e.virt)),
                _ => None,
            })
            .collect();
        for &(g, virt) in &model {
            groups.entry(g).or_default().push((virt, group[0].frame));
        }
        model.sort_unstable();
        model.dedup_by_key(|m| m.0);
        if model.len() > 1 {
            let pages: Vec<String> = model.iter().map(|m| SpaceAddr(m.1).to_string()).collect();
            out.push(Violation::SharedModel {
                frame: group[0].frame << 12,
                why: format!(
                    "{} all map it, but the model shares them as {} different frames \
                     (from unrelated Shares)",
                    pages.join(", "),
                    model.len()
                ),
            });
        }
    }
    for pages in groups.values_mut() {
        pages.sort_unstable();
        let first = pages[0].1;
        if pages.iter().any(|p| p.1 != first) {
            let maps: Vec<String> = pages
                .iter()
                .map(|&(k, f)| format!("{} → {:#x}", SpaceAddr(k), f << 12))
                .collect();
            out.push(Violation::SharedModel {
                frame: first << 12,
                why: format!(
                    "the model expects these pages to map one shared frame, but they map \
                     several: {}",
                    maps.join(", ")
                ),
            });
        }
    }
}
