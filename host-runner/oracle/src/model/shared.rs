//! Shared memory (semantics, **Shared memory**): `Share` validated in the
//! spec's order and carried out, and what other requests do to shared
//! pages (a mapping dropped, a write seen through every mapping).
//!
//! # Groups
//! The model names each shared frame by a *group* number, given when the
//! frame is first shared and kept until its last mapping goes: a shared
//! page's state is [`ModelState::Shared`] with its group, and
//! [`Groups`] keeps, for each group, the keys of the pages that map it (its
//! mapping count is their number). A `Share` of `n` pages numbers the
//! frames it shares for the first time `base..base + n`, page for page, so
//! a run of shared pages counts its groups up as a run of swapped pages
//! counts its slots. The bytes of a shared frame are kept under each page
//! that maps it (the checker compares each mapping's bytes): a write
//! through one page copies them to the others.

use std::collections::{BTreeMap, BTreeSet};

use protocol::{Error, Response};

use super::keys::{tag, untag};
use super::pages::ModelState;
use super::plan::{Effect, Plan};
use super::validate::{page_range, LOWER_END};
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

    /// The pages (keys) mapping group `g`.
    pub fn members(&self, g: u64) -> impl Iterator<Item = u64> + '_ {
        self.members.get(&g).into_iter().flatten().copied()
    }
}

/// A validated `Share`: page numbers (keys) of the source range and of the
/// target range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ShareRanges {
    pub source: u64,
    pub target: u64,
    pub pages: u64,
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

    /// `Share` (kernel), steps 2–7 of its validation (step 1, the
    /// privilege, is every kernel request's).
    pub(super) fn plan_share(
        &self,
        addr: u64,
        pages: u64,
        space: u16,
        to: u64,
    ) -> Result<Plan, Error> {
        // Step 2: steps 1–5 over the source, then over the target.
        let source_end = steps_1_to_5(addr, pages)?;
        let target_end = steps_1_to_5(to, pages)?;
        // Step 3: user memory only (the managed user space is the lower half).
        let user = self.hello.user_space;
        let in_user =
            |a: u64, e: u64| e <= LOWER_END && user.start <= a && (user.end == 0 || e <= user.end);
        if !in_user(addr, source_end) || !in_user(to, target_end) {
            return Err(Error::Reserved);
        }
        // Step 4.
        if !self.spaces.live(space) {
            return Err(Error::NoSuchSpace);
        }
        let source = tag(self.spaces.current, addr) >> 12;
        let target = tag(space, to) >> 12;
        // Step 5: the source state rule.
        let mut at = source;
        for (s, e, st) in self.pages.runs_in(source, source + pages) {
            if s > at {
                return Err(invalid(at));
            }
            if !sharable(st) {
                return Err(invalid(s));
            }
            at = e;
        }
        if at < source + pages {
            return Err(invalid(at));
        }
        // Step 6: the target state rule.
        if let Some((s, _, _)) = self.pages.runs_in(target, target + pages).next() {
            return Err(invalid(s));
        }
        // Step 7: the target's tables.
        let need = self.pages.needed_tables(target, target + pages);
        let outcome = self.outcome(need, source, source + pages);
        let effect = if outcome.ok {
            Effect::Share(ShareRanges {
                source,
                target,
                pages,
            })
        } else {
            Effect::None
        };
        Ok(Plan {
            prediction: outcome.predict(Response::Done),
            effect,
        })
    }

    /// Carries out a `Share` that succeeded: source pages become (or stay)
    /// shared, target pages map the same frames, the counts grow by one.
    pub(super) fn commit_share(&mut self, r: ShareRanges) {
        let ShareRanges {
            source,
            target,
            pages,
        } = r;
        let base = self.shared.next;
        self.shared.next = self.shared.next.saturating_add(pages);
        self.dirty.pages(source, source + pages);
        self.dirty.pages(target, target + pages);
        let runs: Vec<_> = self.pages.runs_in(source, source + pages).collect();
        for (s, e, st) in runs {
            let shared = match st {
                ModelState::PresentRam { writable, .. } => ModelState::Shared {
                    writable,
                    group: base + (s - source),
                },
                other => other,
            };
            self.pages.set(s, e, Some(shared));
            let t = target + (s - source);
            self.pages.set(t, t + (e - s), Some(shared));
            let ModelState::Shared { group, .. } = shared else {
                continue;
            };
            for (k, p) in (s..e).enumerate() {
                let members = self.shared.members.entry(group + k as u64).or_default();
                let q = t + k as u64;
                members.insert(p);
                members.insert(q);
                if let Some(bytes) = self.data.get(&p).cloned() {
                    self.data.insert(q, bytes);
                }
                if let Some(&f) = self.page_frames.get(&p) {
                    self.page_frames.insert(q, f);
                }
            }
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
                }
            }
        }
    }

    /// After a write to pages `first..end`: the bytes of each shared page
    /// written are every other mapping's bytes too.
    pub(super) fn spread_writes(&mut self, first: u64, end: u64) {
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
                let Some(bytes) = self.data.get(&p).cloned() else {
                    continue;
                };
                let others: Vec<u64> = self
                    .shared
                    .members(group + k as u64)
                    .filter(|&q| q != p)
                    .collect();
                for q in others {
                    self.data.insert(q, bytes.clone());
                    self.dirty.page(q);
                }
            }
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

/// Validation steps 1–5 of one range of `Share` (no limit on `pages`);
/// answers its end.
fn steps_1_to_5(addr: u64, pages: u64) -> Result<u64, Error> {
    let end = page_range(addr, pages, u64::MAX)?;
    if addr < LOWER_END && end > LOWER_END {
        return Err(Error::CrossesCanonicalHole);
    }
    Ok(end)
}

/// Whether a source page in state `st` may be shared: present RAM that is
/// not executable, or shared RAM already.
fn sharable(st: ModelState) -> bool {
    matches!(
        st,
        ModelState::PresentRam {
            executable: false,
            ..
        } | ModelState::Shared { .. }
    )
}

/// `InvalidState` naming key page `p` by its plain address.
fn invalid(p: u64) -> Error {
    Error::InvalidState {
        addr: untag(p << 12).1,
    }
}
