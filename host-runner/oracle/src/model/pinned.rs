//! `Convert → PinnedRam` (semantics, "Pinned RAM"): what it needs beyond
//! the tables (a frame for each swapped page of the range) and the states
//! it leaves.

use super::pages::ModelState;
use super::Model;

/// The pinned state a page in state `old` (`None`: unusable) converts to.
fn pinned(old: Option<ModelState>) -> ModelState {
    match old {
        None
        | Some(
            ModelState::AllocOnWrite
            | ModelState::NotPresentMmap { .. }
            | ModelState::PinnedAllocOnWrite,
        ) => ModelState::PinnedAllocOnWrite,
        // Shared pages are never sent out already: left as they are.
        Some(shared @ ModelState::Shared { .. }) => shared,
        // Code stays code (semantics: pinned RAM is data, and code is
        // read-only, never sent out anyway).
        Some(
            code @ ModelState::PresentRam {
                executable: true, ..
            },
        ) => code,
        Some(ModelState::PresentRam { writable, .. } | ModelState::PinnedRam { writable }) => {
            ModelState::PinnedRam { writable }
        }
        // Swapped pages come back now, file pages become anonymous: both
        // writable, as a swap-in or the convert to usable RAM leave them.
        Some(ModelState::OnSwap { .. } | ModelState::PresentMmap { .. }) => {
            ModelState::PinnedRam { writable: true }
        }
    }
}

impl Model {
    /// Pages of `first..end` on swap.
    pub(super) fn pages_on_swap(&self, first: u64, end: u64) -> u64 {
        self.pages
            .runs_in(first, end)
            .filter(|r| matches!(r.2, ModelState::OnSwap { .. }))
            .map(|(s, e, _)| e - s)
            .sum()
    }

    /// Carries out a convert of `first..end` to pinned RAM that succeeded:
    /// the clean file pages' bytes become the host's data (a swapped page's
    /// data is the model's already), and each page takes its pinned state.
    pub(super) fn commit_to_pinned(&mut self, first: u64, end: u64) {
        self.dirty.pages(first, end);
        self.materialize_clean(first, end);
        self.pages.update(first, end, |_, s| Some(pinned(s)));
    }
}
