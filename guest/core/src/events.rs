//! The VMM's events: the reclaim events of the answer being built
//! (`protocol::semantics`, "Reclaim events"), in a fixed array (recording
//! one never allocates), and the event counts of the stats.
//!
//! # Invariants
//! - At most [`RECLAIM_RING`] events; a push into a full ring is dropped
//!   (the pressure path stops reclaiming before that: [`Ring::full`]).
//! - Events leave oldest first ([`Ring::drain`]).
//! - The event counts (`faults_resolved`, `pages_scavenged`,
//!   `pages_evicted`, `pages_dropped`) change only here: a reclaim event is
//!   counted as it is recorded ([`Events::record`]), a resolved fault by
//!   [`Events::fault_resolved`]. They only grow, until `Reset`
//!   ([`Events::counts_cleared`]).

use protocol::{Reclaim, Stats, RECLAIM_RING};

/// The reclaim-event ring and the event counts.
#[derive(Debug, Default)]
pub(crate) struct Events {
    ring: Ring,
    faults_resolved: u64,
    pages_scavenged: u64,
    pages_evicted: u64,
    pages_dropped: u64,
}

impl Events {
    /// Records the pressure path's `e`: counted, and in the ring.
    pub fn record(&mut self, e: Reclaim) {
        match e {
            Reclaim::Swapped { .. } => self.pages_evicted += 1,
            Reclaim::Dropped { .. } => self.pages_dropped += 1,
            Reclaim::Scavenged { .. } => self.pages_scavenged += 1,
        }
        self.ring.push(e);
    }

    /// A fault of the managed space was resolved.
    pub fn fault_resolved(&mut self) {
        self.faults_resolved += 1;
    }

    /// Whether the ring is full (the pressure path reclaims no more).
    pub fn full(&self) -> bool {
        self.ring.full()
    }

    /// Moves up to `out.len()` events out of the ring, oldest first;
    /// answers how many.
    pub fn drain(&mut self, out: &mut [Reclaim]) -> usize {
        self.ring.drain(out)
    }

    /// Events waiting in the ring.
    pub fn pending(&self) -> usize {
        self.ring.len()
    }

    /// `Reset`: the counts back to zero (the ring is drained with the
    /// answer, as ever).
    pub fn counts_cleared(&mut self) {
        self.faults_resolved = 0;
        self.pages_scavenged = 0;
        self.pages_evicted = 0;
        self.pages_dropped = 0;
    }

    /// Fills the event counts of `s`.
    pub fn fill(&self, s: &mut Stats) {
        s.faults_resolved = self.faults_resolved;
        s.pages_scavenged = self.pages_scavenged;
        s.pages_evicted = self.pages_evicted;
        s.pages_dropped = self.pages_dropped;
    }
}

/// The events of the answer being built, in a fixed array.
#[derive(Debug)]
pub struct Ring {
    events: [Reclaim; RECLAIM_RING],
    len: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Ring {
            events: [Reclaim::Dropped { addr: 0 }; RECLAIM_RING],
            len: 0,
        }
    }
}

impl Ring {
    pub(crate) fn full(&self) -> bool {
        self.len == RECLAIM_RING
    }

    pub(crate) fn push(&mut self, e: Reclaim) {
        if let Some(slot) = self.events.get_mut(self.len) {
            *slot = e;
            self.len += 1;
        }
    }

    /// Moves up to `out.len()` events out, oldest first; answers how many.
    pub(crate) fn drain(&mut self, out: &mut [Reclaim]) -> usize {
        let n = out.len().min(self.len);
        out[..n].copy_from_slice(&self.events[..n]);
        self.events.copy_within(n..self.len, 0);
        self.len -= n;
        n
    }

    /// Events recorded.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
