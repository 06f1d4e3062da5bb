//! Putting back what a judged answer's reclaim events changed when the
//! answer diverges: the model judges answers with events on itself, not on
//! a copy, so each event records what it replaced.

use super::pages::ModelState;
use super::{Model, PageBytes};

/// Events applied to the model, and what they replaced
/// ([`Model::undo_events`], [`Model::keep_events`]).
#[derive(Debug)]
pub(super) struct Applied {
    /// Per event, in order.
    pub(super) replaced: Vec<Replaced>,
    /// The reclaim counters before the events.
    pub(super) reclaims: [u64; 3],
    pub(super) scavenged_since: u64,
}

/// What one event replaced.
#[derive(Debug)]
pub(super) enum Replaced {
    /// A page swapped or dropped: its state, and its frame with the page
    /// recorded for that frame.
    Page {
        vpn: u64,
        state: ModelState,
        frame: Option<(u64, Option<u64>)>,
    },
    /// A heap page scavenged: whether it was present, and its bytes.
    Heap {
        vpn: u64,
        present: bool,
        data: Option<PageBytes>,
    },
}

impl Model {
    /// The pages the applied events changed are changed for the memory
    /// checker too: the answer was judged right.
    pub(super) fn keep_events(&mut self, applied: Applied) {
        for r in &applied.replaced {
            let (Replaced::Page { vpn, .. } | Replaced::Heap { vpn, .. }) = *r;
            self.dirty.page(vpn);
        }
    }

    /// Puts back what the applied events replaced, last first.
    pub(super) fn undo_events(&mut self, applied: Applied) {
        for r in applied.replaced.into_iter().rev() {
            match r {
                Replaced::Page { vpn, state, frame } => {
                    self.pages.set(vpn, vpn + 1, Some(state));
                    if let Some((f, owner)) = frame {
                        self.page_frames.insert(vpn, f);
                        if let Some(p) = owner {
                            self.frame_pages.insert(f, p);
                        }
                    }
                }
                Replaced::Heap { vpn, present, data } => {
                    if present {
                        self.heap.present.insert(vpn);
                    }
                    if let Some(d) = data {
                        self.data.insert(vpn, d);
                    }
                }
            }
        }
        self.reclaims = applied.reclaims;
        self.heap.scavenged_since = applied.scavenged_since;
    }
}
