//! Shared frames in the model (semantics, **Shared memory**): the pages
//! mapping each one (its group, see `super::shared`), and what requests
//! other than `Share` do to them: a mapping dropped, the frame freed with
//! its last, a write seen through every mapping, the frames `Query`
//! reports, `present_pages` counting each frame once.

use std::collections::{BTreeMap, BTreeSet};

use super::pages::ModelState;
use super::Model;

/// The shared frames the model knows: group → keys (page numbers) of the
/// pages mapping it.
#[derive(Clone, Debug, Default)]
pub(super) struct Groups {
    members: BTreeMap<u64, BTreeSet<u64>>,
    /// The first group number not given yet.
    next: u64,
}

impl Groups {
    /// How many shared frames there are (each counts once in
    /// `present_pages`).
    pub fn frames(&self) -> u64 {
        self.members.len() as u64
    }

    /// The mapping count of group `g` (0: no such frame).
    pub fn count(&self, g: u64) -> u64 {
        self.members.get(&g).map_or(0, |m| m.len() as u64)
    }

    /// `n` group numbers never given: the first.
    pub fn fresh(&mut self, n: u64) -> u64 {
        let base = self.next;
        self.next = self.next.saturating_add(n);
        base
    }

    /// Page `p` (a key) maps group `g`'s frame.
    pub fn join(&mut self, g: u64, p: u64) {
        self.members.entry(g).or_default().insert(p);
    }

    /// The pages (keys) mapping group `g`.
    pub fn members(&self, g: u64) -> impl Iterator<Item = u64> + '_ {
        self.members.get(&g).into_iter().flatten().copied()
    }
}

impl Model {
    /// Data frames in use by pages: every frame a page owns alone, and
    /// each shared frame once (`Stats::present_pages`).
    pub(super) fn present_frames(&self) -> u64 {
        self.pages.count(ModelState::owns_frame) + self.shared.frames()
    }

    /// The mapping count the model expects for the shared page `vpn`'s
    /// frame (0 when the page is not shared).
    pub(super) fn mappings_of(&self, vpn: u64) -> u64 {
        match self.pages.get(vpn) {
            Some(ModelState::Shared { group, .. }) => self.shared.count(group),
            _ => 0,
        }
    }

    /// Pages `first..end` leave their shared frames (they become unusable):
    /// each frame's count goes down by one, the frame is gone with its
    /// last mapping. A frame recorded for a page that leaves is recorded
    /// for a page that stays.
    pub(super) fn unshare(&mut self, first: u64, end: u64) {
        let runs: Vec<_> = self
            .pages
            .runs_in(first, end)
            .filter(|r| matches!(r.2, ModelState::Shared { .. }))
            .collect();
        for (s, e, st) in runs {
            let ModelState::Shared { group, .. } = st else {
                continue;
            };
            for (k, p) in (s..e).enumerate() {
                let g = group + k as u64;
                let Some(members) = self.shared.members.get_mut(&g) else {
                    continue;
                };
                members.remove(&p);
                let heir = members.iter().copied().find(|q| !(first..end).contains(q));
                if members.is_empty() {
                    self.shared.members.remove(&g);
                }
                if let (Some(&f), Some(q)) = (self.page_frames.get(&p), heir) {
                    if self.frame_pages.get(&f) == Some(&p) {
                        self.frame_pages.insert(f, q);
                    }
                    // The heir maps the frame too: recorded as its, so that
                    // its own unmapping frees the frame (a frame learned
                    // after the share was recorded for the source only).
                    self.page_frames.insert(q, f);
                }
            }
        }
    }

    /// After a write to page `vpn`: if it is shared, its bytes are every
    /// other mapping's too. Called page by page as the write goes (in
    /// ascending address order, as the CPU stores), so a write across two
    /// pages of one frame (two ranges of one space sharing) leaves the
    /// later page's bytes on top, as the frame holds them.
    pub(super) fn spread_page(&mut self, vpn: u64) {
        // Most writes meet no shared frame: no page-map lookup for them.
        if self.shared.frames() == 0 {
            return;
        }
        let Some(ModelState::Shared { group, .. }) = self.pages.get(vpn) else {
            return;
        };
        let Some(bytes) = self.data.get(&vpn).cloned() else {
            return;
        };
        let others: Vec<u64> = self.shared.members(group).filter(|&q| q != vpn).collect();
        for q in others {
            self.data.insert(q, bytes.clone());
            self.dirty.page(q);
        }
    }

    /// Why shared page `vpn` cannot map frame number `f`: another page of
    /// its group was reported at another frame (None: it can).
    pub(super) fn peer_conflict(&self, vpn: u64, f: u64) -> Option<String> {
        let Some(ModelState::Shared { group, .. }) = self.pages.get(vpn) else {
            return None;
        };
        self.shared.members(group).find_map(|q| {
            let g = *self.page_frames.get(&q)?;
            (q != vpn && g != f).then(|| {
                format!(
                    "it shares its frame with page {}, which maps frame {:#x}, not {:#x}",
                    Model::show(q),
                    g << 12,
                    f << 12
                )
            })
        })
    }

    /// What making pages `first..end` unusable does to shared frames: a
    /// mapping dropped while others stay, a frame freed with its last.
    pub(super) fn shared_drops(&self, first: u64, end: u64) -> Vec<crate::coverage::Event> {
        use crate::coverage::Event;
        let (mut kept, mut freed) = (false, false);
        for (s, e, st) in self.pages.runs_in(first, end) {
            let ModelState::Shared { group, .. } = st else {
                continue;
            };
            for g in group..group + (e - s) {
                if self.shared.members(g).all(|q| (first..end).contains(&q)) {
                    freed = true;
                } else {
                    kept = true;
                }
            }
            if kept && freed {
                break;
            }
        }
        let events = [
            (kept, Event::SharedMappingDropped),
            (freed, Event::SharedFrameFreed),
        ];
        events.into_iter().filter(|e| e.0).map(|e| e.1).collect()
    }

    /// Whether pages `p` and `q` (keys) map one shared frame.
    pub(super) fn same_frame(&self, p: u64, q: u64) -> bool {
        match (self.pages.get(p), self.pages.get(q)) {
            (
                Some(ModelState::Shared { group: a, .. }),
                Some(ModelState::Shared { group: b, .. }),
            ) => a == b,
            _ => false,
        }
    }
}
