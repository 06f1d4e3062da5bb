//! Free frames in version 2 and the `OutOfMemory` judgement under memory
//! pressure (semantics, "Memory pressure" and step 9).
//!
//! The kernel's own heap blocks take frames the host does not predict, so
//! the free frames are known only within bounds: `heap_pages` is at least
//! what the last `Stats` said less the pages scavenged since (heap pages
//! lose frames only through reported `Scavenged` events) and at least the
//! heap pages the host's touches made present; at most the heap's pages.

use protocol::{Error, Response, RECLAIM_RING};

use super::keys::{user_pages, KERNEL_FIRST_PAGE};
use super::pages::ModelState;
use super::prediction::Prediction;
use super::Model;

/// Which answers a request needing frames may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    /// Success is possible: the need is at most the most frames that can be free.
    pub ok: bool,
    /// `OutOfMemory` is possible: the need is above the fewest frames that
    /// can be free, and reclaim is exhausted (the ring is full, or no clean
    /// file page outside the request's range is left to drop).
    pub oom: bool,
}

impl Outcome {
    /// The prediction of a request answering `ok` on success.
    pub fn predict(self, ok: Response) -> Prediction {
        let oom = Response::Error(Error::OutOfMemory);
        match (self.ok, self.oom) {
            (true, true) if ok == Response::Done => Prediction::DoneOrOutOfMemory,
            (true, _) => Prediction::Exact(ok),
            (false, true) => Prediction::Exact(oom),
            (false, false) => Prediction::Reclaim("clean file pages outside the range".into()),
        }
    }
}

impl Model {
    /// The fewest frames the heap can hold now.
    pub(super) fn heap_pages_min(&self) -> u64 {
        let h = &self.heap;
        h.stats_pages
            .saturating_sub(h.scavenged_since)
            .max(h.present.len() as u64)
    }

    /// The most frames the heap can hold.
    pub(super) fn heap_pages_max(&self) -> u64 {
        (self.hello.heap_max_bytes / 4096).max(self.heap_pages_min())
    }

    /// Page-table frames of the managed space: every space's tables and
    /// the PML4 of every space but 0 (semantics, "Address spaces").
    pub(super) fn table_frames(&self) -> u64 {
        self.pages.tables() + self.spaces.roots.len() as u64
    }

    /// Frames the managed space, the tables and the host hold.
    fn used_frames(&self) -> u64 {
        self.table_frames() + self.present_frames() + self.host.len() as u64
    }

    /// The most frames that can be free now (exact when the heap's size is
    /// known, as in a guest without a heap).
    pub fn free_frames(&self) -> u64 {
        self.hello
            .boot_free_frames
            .saturating_sub(self.used_frames() + self.heap_pages_min())
    }

    /// The fewest frames that can be free now.
    pub(super) fn free_frames_min(&self) -> u64 {
        let slack = self.heap_pages_max() - self.heap_pages_min();
        self.free_frames().saturating_sub(slack)
    }

    /// Frames only the kernel's own heap blocks may take (semantics,
    /// "Memory pressure"): none in a guest without a heap.
    pub(super) fn heap_reserve(&self) -> u64 {
        protocol::heap_reserve_frames(self.hello.heap_max_bytes)
    }

    /// The fewest and the most frames a request (not the heap) can take
    /// without reclaiming: the free frames less the heap's reserve.
    pub(super) fn request_free_bounds(&self) -> (u64, u64) {
        let r = self.heap_reserve();
        (
            self.free_frames_min().saturating_sub(r),
            self.free_frames().saturating_sub(r),
        )
    }

    /// Whether reclaim may have given up: the ring is full, or no clean
    /// present file page the clock sweeps (the current space's user half
    /// and the kernel space) is left outside pages `first..end` (keys).
    pub(super) fn reclaim_exhausted(&self, first: u64, end: u64) -> bool {
        let (user, user_end) = user_pages(self.spaces.current);
        let mut swept = self
            .pages
            .runs_in(user, user_end)
            .chain(self.pages.runs_in(KERNEL_FIRST_PAGE, u64::MAX));
        self.ring_used >= RECLAIM_RING
            || !swept.any(|(s, e, st)| {
                matches!(st, ModelState::PresentMmap { private: false, .. })
                    && (s < first || e > end)
            })
    }

    /// The possible outcomes of a request needing `need` frames for pages
    /// `first..end`.
    /// A need above `free_frames + present_pages + heap_pages` (a bound on
    /// what reclaim could ever free: it counts read-only and pinned pages,
    /// which are never sent out, as the spec's bound does; the sum is
    /// `boot_free - tables - host`, known exactly) fails at once,
    /// reclaiming nothing.
    pub(super) fn outcome(&self, need: u64, first: u64, end: u64) -> Outcome {
        let hopeless = self
            .hello
            .boot_free_frames
            .saturating_sub(self.table_frames() + self.host.len() as u64 + self.heap_reserve());
        let (fewest, most) = self.request_free_bounds();
        Outcome {
            ok: need <= most,
            oom: need > fewest && (need > hopeless || self.reclaim_exhausted(first, end)),
        }
    }
}
