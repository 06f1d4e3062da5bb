//! Shared memory: `share` of a range the generator wrote before (so its
//! pages are mostly present RAM in the current space) with a range of a
//! live space, and the pattern that shows a sharing bug at once: "change in
//! one space, touch in the other".
//!
//! The source is mostly a user range written in the current space (its
//! pages present RAM, or shared already, so counts grow past two). The
//! target is most often the same address in another space (two processes
//! mapping one buffer where each expects it), else a range of a window of
//! user space other draws rarely reach, in another space or the current
//! one, else any user range. Half the shares that
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

/// The share window: 64 GiB of user space from here, where share targets
/// are drawn page-aligned.
const WINDOW: u64 = 0x5000_0000_0000;
const WINDOW_PAGES: u64 = 1 << 24;

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
        let to = self.share_target(addr, pages, space != current);
        let exists = space == 0 || self.spaces.live.contains(&space);
        if privilege == Privilege::Kernel && exists && to < USER_END {
            let offset = bytes.0.wrapping_sub(addr);
            let mirror = (to.wrapping_add(offset), bytes.1);
            remember(&mut self.writes, mirror);
            // The target is shared RAM of `space` now: a later share from
            // there shares a shared page (its frame's count grows).
            remember(&mut self.user_writes, (space, mirror.0, mirror.1));
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

    /// A write the generator just made: kept with the current space when
    /// it is a user range, as a share's likely source.
    pub(super) fn wrote_in(&mut self, addr: u64, len: u64) {
        if addr < USER_END && len > 0 {
            remember(&mut self.user_writes, (self.spaces.current, addr, len));
        }
    }

    /// The source: the pages under a user byte range written before in the
    /// current space (whole, or its first pages), else under any range
    /// written before, else a range aimed at where data lives. Returns the
    /// page range and the byte range inside it that holds written data.
    fn share_source(&mut self) -> (u64, u64, (u64, u64)) {
        let current = self.spaces.current;
        let here: Vec<(u64, u64)> = self
            .user_writes
            .iter()
            .filter(|w| w.0 == current)
            .map(|w| (w.1, w.2))
            .collect();
        let written = if !here.is_empty() && self.rng.random_bool(0.85) {
            here.choose(&mut self.rng).copied()
        } else if self.rng.random_bool(0.5) {
            self.writes.choose(&mut self.rng).copied()
        } else {
            None
        };
        if let Some((a, len)) = written {
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
        let (addr, pages, _) = self.range_aimed(0.8);
        let pages = pages.min(MAX_SHARE_PAGES);
        (addr, pages, (addr, pages.saturating_mul(PAGE_SIZE)))
    }

    /// The target of a share of `pages` pages at `addr`: the same address
    /// when the target space is another (two processes mapping one buffer
    /// where each expects it), a range of the share window (where other
    /// draws rarely land, so mostly unusable), or a user range drawn as
    /// any range is.
    fn share_target(&mut self, addr: u64, pages: u64, other_space: bool) -> u64 {
        match self.rng.random_range(0..10) {
            0..5 if other_space => addr,
            0..8 => {
                let slots = WINDOW_PAGES.saturating_sub(pages).max(1);
                WINDOW + self.rng.random_range(0..slots) * PAGE_SIZE
            }
            // Up to four draws, the first in the user half (else the last).
            _ => {
                let mut to = 0;
                for _ in 0..4 {
                    to = strategy::range_addr(&mut self.rng, pages, &self.ranges, &self.targets);
                    if to < USER_END {
                        break;
                    }
                }
                to
            }
        }
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
