//! Address spaces: which spaces the generator believes exist and which is
//! current, and the operations that create, switch and destroy them.
//!
//! The generator predicts instead of waiting for answers: `create_space`
//! takes the lowest free number (as `semantics.rs` says), a kernel
//! `switch_space` to a live space makes it current, a kernel
//! `destroy_space` of a live space other than 0 and the current one ends it,
//! and `reset` leaves space 0 alone. So no batch has to end for an answer;
//! where a guess is wrong (a `create_space` that ran out of memory) the next
//! operations aim at a space that is not there, a refusal the model judges
//! like any other.
//!
//! A switch is often followed by a touch of a range written before, in
//! whatever space that was: "change in one space, touch in the other", where
//! a translation that survived the switch, or a page of the wrong space,
//! shows.

use protocol::Privilege;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::Generator;
use crate::op::Op;

/// How many spaces a guest has (`Hello::max_spaces`) until its `hello`
/// answer says: the guest's own number.
const GUESSED_MAX_SPACES: u16 = 16;

/// The spaces the generator believes exist, besides space 0, and the current
/// one.
#[derive(Debug)]
pub(super) struct Spaces {
    pub(super) live: Vec<u16>,
    pub(super) current: u16,
    /// `Hello::max_spaces`: numbers `0..max` exist; past them a switch or
    /// destroy aims at a space that cannot exist.
    pub(super) max: u16,
}

impl Default for Spaces {
    fn default() -> Self {
        Spaces {
            live: Vec::new(),
            current: 0,
            max: GUESSED_MAX_SPACES,
        }
    }
}

impl Spaces {
    /// The number the next `create_space` gets, if one is free.
    fn next_free(&self) -> Option<u16> {
        (1..self.max).find(|n| !self.live.contains(n))
    }

    /// The guest's `Hello` said how many spaces it has.
    pub(super) fn learn(&mut self, max_spaces: u16) {
        self.max = max_spaces;
    }

    /// `reset`: only space 0, current.
    pub(super) fn reset(&mut self) {
        self.live.clear();
        self.current = 0;
    }
}

impl Generator {
    pub(super) fn create_space(&mut self) -> Op {
        let privilege = self.kernel_only();
        if privilege == Privilege::Kernel {
            if let Some(n) = self.spaces.next_free() {
                self.spaces.live.push(n);
            }
        }
        Op::CreateSpace { privilege }
    }

    pub(super) fn switch_space(&mut self) -> Op {
        let privilege = self.kernel_only();
        let space = match self.rng.random_range(0..10) {
            // Another live space (or back to 0).
            0..7 => {
                let mut others: Vec<u16> = self.spaces.live.clone();
                others.push(0);
                others.retain(|&s| s != self.spaces.current);
                others
                    .choose(&mut self.rng)
                    .copied()
                    .unwrap_or(self.spaces.current)
            }
            // The current one (allowed, changes nothing).
            7 => self.spaces.current,
            // One that may not exist.
            _ => self.rng.random_range(0..self.spaces.max.saturating_add(2)),
        };
        if privilege == Privilege::Kernel && (space == 0 || self.spaces.live.contains(&space)) {
            self.spaces.current = space;
            // Touch what was written before, now through this space.
            if self.rng.random_bool(0.5) {
                if let Some(op) = self.touch_written() {
                    self.follow.push_back(op);
                }
            }
        }
        Op::SwitchSpace { space, privilege }
    }

    pub(super) fn destroy_space(&mut self) -> Op {
        let privilege = self.kernel_only();
        let current = self.spaces.current;
        let idle: Vec<u16> = self
            .spaces
            .live
            .iter()
            .copied()
            .filter(|&s| s != current)
            .collect();
        let space = match idle.choose(&mut self.rng).copied() {
            Some(s) if self.rng.random_bool(0.8) => s,
            // Space 0, the current one, or one that may not exist: refused.
            _ => match self.rng.random_range(0..3) {
                0 => 0,
                1 => current,
                _ => self.rng.random_range(0..self.spaces.max.saturating_add(2)),
            },
        };
        if privilege == Privilege::Kernel && space != 0 && space != current {
            self.spaces.live.retain(|&s| s != space);
        }
        Op::DestroySpace { space, privilege }
    }

    /// A read or write of a byte range written before (in whatever space).
    fn touch_written(&mut self) -> Option<Op> {
        let (addr, len) = self.writes.choose(&mut self.rng).copied()?;
        let privilege = self.privilege_for(addr);
        Some(if self.rng.random_bool(0.6) {
            Op::Read {
                addr,
                len,
                privilege,
            }
        } else {
            Op::Write {
                addr,
                len,
                seed: self.rng.random(),
                privilege,
            }
        })
    }
}
