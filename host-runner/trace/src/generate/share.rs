//! Shared memory: `share` of a range the generator wrote before (so its
//! pages are mostly present RAM in the current space) with a range of a
//! live space, and the pattern that shows a sharing bug at once: "change in
//! one space, touch in the other".
//!
//! The target is most often the same address in another space (two
//! processes mapping one buffer where each expects it), else a fresh range
//! of user space, in another space or the current one. Half the shares that
//! the generator predicts succeed are followed by: a read of the target
//! (it must read what the source holds), a write there, and a read back
//! through the source (it must read the new data), with the switches that
//! requires. Where a guess is wrong (the source was not present, the target
//! not unusable), the guest refuses and the model judges the refusal like
//! any other.

use protocol::{Privilege, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::{remember, Generator};
use crate::op::Op;
use crate::strategy::{self, USER_END};

/// The most pages one drawn `share` names (beyond a whole page table).
const MAX_SHARE_PAGES: u64 = 600;

impl Generator {
    pub(super) fn share(&mut self) -> Op {
        let privilege = self.kernel_only();
        let (addr, pages, bytes) = self.share_source();
        let current = self.spaces.current;
        let others: Vec<u16> = self
            .spaces
            .live
            .iter()
            .copied()
            .chain([0])
            .filter(|&s| s != current)
            .collect();
        let space = match self.rng.random_range(0..10) {
            0..6 => others.choose(&mut self.rng).copied().unwrap_or(current),
            6..9 => current,
            // One that may not exist.
            _ => self.rng.random_range(0..self.spaces.max.saturating_add(2)),
        };
        let to = if space != current && self.rng.random_bool(0.5) {
            addr
        } else {
            self.share_target(pages)
        };
        let exists = space == 0 || self.spaces.live.contains(&space);
        if privilege == Privilege::Kernel && exists && to < USER_END {
            let offset = bytes.0.wrapping_sub(addr);
            let mirror = (to.wrapping_add(offset), bytes.1);
            remember(&mut self.writes, mirror);
            if self.rng.random_bool(0.5) {
                self.change_across(space, mirror, bytes);
            }
        }
        Op::Share {
            addr,
            pages,
            space,
            to,
            privilege,
        }
    }

    /// The source: the pages under a byte range written before (whole, or
    /// a part), else a range aimed at where data lives. Returns the page
    /// range and the byte range inside it that holds written data.
    fn share_source(&mut self) -> (u64, u64, (u64, u64)) {
        if let Some(&(a, len)) = self.writes.choose(&mut self.rng) {
            if self.rng.random_bool(0.8) {
                let start = a & !(PAGE_SIZE - 1);
                let last = a.saturating_add(len.max(1) - 1) / PAGE_SIZE;
                let pages = (last - start / PAGE_SIZE + 1).min(MAX_SHARE_PAGES);
                let pages = if self.rng.random_bool(0.3) {
                    self.rng.random_range(1..=pages)
                } else {
                    pages
                };
                let len = len.min(pages * PAGE_SIZE - (a - start));
                return (start, pages, (a, len));
            }
        }
        let (addr, pages, _) = self.range_aimed(0.8);
        let pages = pages.min(MAX_SHARE_PAGES);
        (addr, pages, (addr, pages.saturating_mul(PAGE_SIZE)))
    }

    /// A user range of `pages` pages drawn as any range is, so mostly
    /// unusable where it lands.
    fn share_target(&mut self, pages: u64) -> u64 {
        for _ in 0..3 {
            let to = strategy::range_addr(&mut self.rng, pages, &self.ranges, &self.targets);
            if to < USER_END {
                return to;
            }
        }
        strategy::range_addr(&mut self.rng, pages, &self.ranges, &self.targets)
    }

    /// Queues: switch to `space` (if it is not current), read the target
    /// bytes `to`, write them, switch back, read the source bytes `from`.
    fn change_across(&mut self, space: u16, to: (u64, u64), from: (u64, u64)) {
        let home = self.spaces.current;
        let k = Privilege::Kernel;
        if space != home {
            self.follow.push_back(Op::SwitchSpace {
                space,
                privilege: k,
            });
        }
        self.follow.push_back(Op::Read {
            addr: to.0,
            len: to.1,
            privilege: k,
        });
        self.follow.push_back(Op::Write {
            addr: to.0,
            len: to.1,
            seed: self.rng.random(),
            privilege: Privilege::User,
        });
        if space != home {
            self.follow.push_back(Op::SwitchSpace {
                space: home,
                privilege: k,
            });
        }
        self.follow.push_back(Op::Read {
            addr: from.0,
            len: from.1,
            privilege: Privilege::User,
        });
    }
}
