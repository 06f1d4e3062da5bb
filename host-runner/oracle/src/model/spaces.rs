//! Address spaces (semantics, **Address spaces**): which spaces live, their
//! roots (learned from `CreateSpace`'s answers, as frames are from
//! `Query`'s), which one is current, and the three requests that change
//! them. Pages are named by keys ([`super::keys`]).

use std::collections::{BTreeMap, VecDeque};

use protocol::{Error, Response, PAGE_SIZE};

use super::keys::{tag, user_pages, SpaceAddr};
use super::plan::{Effect, Plan};
use super::prediction::Prediction;
use super::Model;

/// How many destroyed spaces' roots the model remembers for the checker
/// (the newest ones).
const RETIRED: usize = 64;

/// The spaces of one guest.
#[derive(Clone, Debug)]
pub(super) struct Spaces {
    /// `Hello::max_spaces`: space numbers are `0..max`.
    max: u16,
    /// The space in CR3.
    pub current: u16,
    /// Live spaces other than 0: number → root (the physical address of
    /// its PML4).
    pub roots: BTreeMap<u16, u64>,
    /// The roots of the newest destroyed spaces (by `DestroySpace` or
    /// `Reset`) with their numbers, oldest first; a root leaves the list
    /// when a new space gets its frame.
    pub retired: VecDeque<(u64, u16)>,
}

impl Spaces {
    pub fn new(max: u16) -> Self {
        Spaces {
            max,
            current: 0,
            roots: BTreeMap::new(),
            retired: VecDeque::new(),
        }
    }

    /// Whether space `s` exists.
    pub fn live(&self, s: u16) -> bool {
        s == 0 || self.roots.contains_key(&s)
    }

    /// The lowest unused number `1..max`, if any.
    fn lowest_free(&self) -> Option<u16> {
        (1..self.max).find(|s| !self.roots.contains_key(s))
    }

    /// The space whose PML4 is the frame at `addr`, if a live one's is.
    pub fn root_of_frame(&self, addr: u64) -> Option<u16> {
        self.roots.iter().find(|(_, &r)| r == addr).map(|(&s, _)| s)
    }

    /// Remembers that space `s`, whose root was `root`, is gone.
    pub fn retire(&mut self, s: u16, root: u64) {
        self.retired.retain(|&(r, _)| r != root);
        if self.retired.len() == RETIRED {
            self.retired.pop_front();
        }
        self.retired.push_back((root, s));
    }

    /// Every live space but 0 destroyed, space 0 current (a `Reset`); the
    /// destroyed ones' roots retired.
    pub fn reset(&mut self) {
        for (s, root) in std::mem::take(&mut self.roots) {
            self.retire(s, root);
        }
        self.current = 0;
    }

    /// The key offset of a plain address: the current space's tag for a
    /// user address, 0 for a kernel one.
    pub fn offset(&self, addr: u64) -> u64 {
        tag(self.current, addr) - addr
    }
}

impl Model {
    /// The space current now (0 at boot and after `Reset`).
    pub fn current_space(&self) -> u16 {
        self.spaces.current
    }

    /// The live spaces other than 0 with their roots (the physical
    /// address of each one's PML4, as its `CreateSpace` answer gave it).
    /// Space 0's root is `Hello::page_table_root`.
    pub fn space_roots(&self) -> &BTreeMap<u16, u64> {
        &self.spaces.roots
    }

    /// The root of space `s`, if it lives.
    pub fn space_root(&self, s: u16) -> Option<u64> {
        match s {
            0 => Some(self.hello.page_table_root),
            s => self.spaces.roots.get(&s).copied(),
        }
    }

    /// The key of address `addr` in the current space ([`super::keys`]).
    pub fn key(&self, addr: u64) -> u64 {
        addr + self.spaces.offset(addr)
    }

    /// Page numbers `first..end` of the current space, as keys: those of
    /// `first`'s half (a range that leaves its half is refused anyway, so
    /// they are as good as any for it).
    pub(super) fn keys(&self, (first, end): (u64, u64)) -> (u64, u64) {
        let off = self.spaces.offset(first << 12) >> 12;
        (first + off, end.saturating_add(off))
    }

    /// `CreateSpace` (kernel): the lowest unused number, one frame for its
    /// PML4 (step 9 with the reserve).
    pub(super) fn plan_create_space(&self) -> Result<Plan, Error> {
        let space = self.spaces.lowest_free().ok_or(Error::TooManySpaces)?;
        let outcome = self.outcome(1, 0, 0);
        if !outcome.ok {
            return Ok(Plan {
                prediction: outcome.predict(Response::Done),
                effect: Effect::None,
            });
        }
        Ok(Plan {
            prediction: Prediction::Space {
                space,
                oom: outcome.oom,
            },
            effect: Effect::CreateSpace { space },
        })
    }

    /// `SwitchSpace` (kernel).
    pub(super) fn plan_switch_space(&self, space: u16) -> Result<Plan, Error> {
        if !self.spaces.live(space) {
            return Err(Error::NoSuchSpace);
        }
        Ok(Plan::done(Effect::SwitchSpace { space }))
    }

    /// `DestroySpace` (kernel): never space 0 nor the current one.
    pub(super) fn plan_destroy_space(&self, space: u16) -> Result<Plan, Error> {
        if !self.spaces.live(space) {
            return Err(Error::NoSuchSpace);
        }
        if space == 0 || space == self.spaces.current {
            return Err(Error::SpaceInUse);
        }
        Ok(Plan::done(Effect::DestroySpace { space }))
    }

    /// Takes space `space` with the root its answer gave: a frame the
    /// model knows nothing else of.
    pub(super) fn commit_create_space(&mut self, space: u16, root: u64) -> Result<(), String> {
        if root % PAGE_SIZE != 0 {
            return Err(format!("root {root:#x} is not page aligned"));
        }
        if let Some(why) = self.frame_conflict(root >> 12, None) {
            return Err(format!("root: {why}"));
        }
        self.spaces.retired.retain(|&(r, _)| r != root);
        self.spaces.roots.insert(space, root);
        Ok(())
    }

    /// Destroys space `space`: every user page unusable as `Unmap` makes
    /// it (frames, slots, data and frame identities forgotten), its root
    /// retired.
    pub(super) fn commit_destroy_space(&mut self, space: u16) {
        let (first, end) = user_pages(space);
        self.dirty.pages(first, end);
        self.forget(first, end);
        self.pages.set(first, end, None);
        if let Some(root) = self.spaces.roots.remove(&space) {
            self.spaces.retire(space, root);
        }
    }

    /// Whether the model's pages of space `space` (a live one) hold any
    /// page that is not unusable.
    pub(super) fn space_holds_pages(&self, space: u16) -> bool {
        let (first, end) = user_pages(space);
        self.pages.runs_in(first, end).next().is_some()
    }

    /// The frame `f` (a number) is a live space's PML4: why it cannot be
    /// anything else.
    pub(super) fn root_conflict(&self, f: u64) -> Option<String> {
        let s = self.spaces.root_of_frame(f << 12)?;
        Some(format!("frame {:#x} is the PML4 of space {s}", f << 12))
    }

    /// A page key shown for a divergence.
    pub(super) fn show(key_page: u64) -> SpaceAddr {
        SpaceAddr(key_page << 12)
    }
}
