//! The reclaim events of the answer being built (`protocol::semantics`,
//! "Reclaim events"), in a fixed array: recording one never allocates.
//!
//! # Invariants
//! - At most [`RECLAIM_RING`] events; a push into a full ring is dropped
//!   (the pressure path stops reclaiming before that: [`Ring::full`]).
//! - Events leave oldest first ([`Ring::drain`]).

use protocol::{Reclaim, RECLAIM_RING};

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
