//! Shared memory (semantics, **Shared memory**): `Share` validated in the
//! spec's order and carried out; what other requests do to shared pages
//! is `super::shared_frames`'.
//!
//! # Groups
//! The model names each shared frame by a *group* number, given when the
//! frame is first shared and kept until its last mapping goes: a shared
//! page's state is [`ModelState::Shared`] with its group, and
//! [`super::shared_frames::Groups`] keeps, for each group, the keys of the pages that map it (its
//! mapping count is their number). A `Share` of `n` pages numbers the
//! frames it shares for the first time `base..base + n`, page for page, so
//! a run of shared pages counts its groups up as a run of swapped pages
//! counts its slots. The bytes of a shared frame are kept under each page
//! that maps it (the checker compares each mapping's bytes): a write
//! through one page copies them to the others.

use protocol::{Error, Response};

use super::keys::{tag, untag};
use super::pages::ModelState;
use super::plan::{Effect, Plan};
use super::validate::{page_range, LOWER_END};
use super::Model;

/// A validated `Share`: page numbers (keys) of the source range and of the
/// target range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ShareRanges {
    pub source: u64,
    pub target: u64,
    pub pages: u64,
}

impl Model {
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
        // Step 7: no frame-info table, nowhere to count (before any
        // reclaim); then the target's tables.
        if self.hello.frame_info.end <= self.hello.frame_info.start {
            return Err(Error::OutOfMemory);
        }
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
        let base = self.shared.fresh(pages);
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
                let (g, q) = (group + k as u64, t + k as u64);
                self.shared.join(g, p);
                self.shared.join(g, q);
                if let Some(bytes) = self.data.get(&p).cloned() {
                    self.data.insert(q, bytes);
                }
                if let Some(&f) = self.page_frames.get(&p) {
                    self.page_frames.insert(q, f);
                }
            }
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
