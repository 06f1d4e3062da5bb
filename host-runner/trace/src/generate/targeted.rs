//! Targeted patterns: ranges aimed at what exists rather than drawn from
//! the address space. Unmap or convert exactly (or a part of) a range that
//! was mapped and touched; ask the frame allocator for exactly what it has
//! left; touch across the edges of the range just changed.

use protocol::{Privilege, MAX_ALLOC_FRAMES, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::Rng;

use super::Generator;
use crate::op::Op;

impl Generator {
    /// With probability `p`, a range aimed at one where data lives
    /// ([`Generator::aimed_range`]); else, or when nothing lives anywhere
    /// yet, one drawn from the address space.
    pub(super) fn range_aimed(&mut self, p: f64) -> (u64, u64, Privilege) {
        let aimed = self.rng.random_bool(p).then(|| self.aimed_range());
        aimed.flatten().unwrap_or_else(|| self.range())
    }

    /// A range aimed at one where data lives (mapped, converted to usable
    /// RAM, file-mapped): all of it, its first or last pages, one page
    /// inside, or the page just past its end. `None` when nothing lives
    /// anywhere yet.
    pub(super) fn aimed_range(&mut self) -> Option<(u64, u64, Privilege)> {
        let (a, p) = self.backed.choose(&mut self.rng).copied()?;
        let p = p.max(1);
        let (addr, pages) = match self.rng.random_range(0..10) {
            0..4 => (a, p),
            4..6 => (a, self.rng.random_range(1..=p)),
            6..8 => {
                let n = self.rng.random_range(1..=p);
                (a.wrapping_add((p - n) * PAGE_SIZE), n)
            }
            8 => (a.wrapping_add(self.rng.random_range(0..p) * PAGE_SIZE), 1),
            _ => (a.wrapping_add(p * PAGE_SIZE), 1),
        };
        Some((addr, pages, self.privilege_for(addr)))
    }

    /// A frame count near what the allocator has left, once a `stats`
    /// answer said how much that is (less what `alloc_frames` took since):
    /// all of it, one less, one more, half; or the most one request may
    /// take while more than that is left, so that a few requests in a row
    /// drain the allocator to its last frame.
    pub(super) fn aimed_count(&mut self) -> Option<u64> {
        let free = self.free_frames?;
        Some(match self.rng.random_range(0..5) {
            0 => free,
            1 => free.saturating_sub(1).max(1),
            2 => free + 1,
            3 => (free / 2).max(1),
            _ => free.clamp(1, MAX_ALLOC_FRAMES),
        })
    }

    /// The pressure pattern ([`crate::GenConfig::drain_from`]): from that
    /// operation on, about half the time, the host takes every frame the
    /// allocator has left (as far as the last `stats`, less what it took
    /// since, says), or asks `stats` when it does not know; once nothing
    /// is left it asks again now and then, so frames that a scavenge, an
    /// unmap or a free gave back are taken too. The operations drawn in
    /// between then all run with no frame to spare.
    pub(super) fn drain(&mut self) -> Option<Op> {
        if self.config.drain_from.is_none_or(|from| self.made < from) {
            return None;
        }
        match self.free_frames {
            None => self.rng.random_bool(0.5).then_some(Op::Stats),
            Some(0) => self.rng.random_bool(0.1).then_some(Op::Stats),
            Some(free) => self.rng.random_bool(0.6).then(|| Op::AllocFrames {
                count: free.min(MAX_ALLOC_FRAMES),
                contiguous: false,
                privilege: Privilege::Kernel,
            }),
        }
    }

    /// A touch across an edge of the range changed last: a few bytes
    /// before its start or its end through a few bytes after it.
    pub(super) fn edge_bytes(&mut self) -> Option<(u64, u64)> {
        let (a, p) = self.changed?;
        let edge = if self.rng.random_bool(0.5) {
            a
        } else {
            a.wrapping_add(p.min(1 << 20) * PAGE_SIZE)
        };
        let before = self.rng.random_range(1..=64);
        let after = self.rng.random_range(1..=64);
        Some((edge.wrapping_sub(before), before + after))
    }
}
