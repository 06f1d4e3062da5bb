//! The convert to pinned (never-swap) RAM, [`PageTables::make_pinned`]:
//! every page of a range becomes pinned RAM (`protocol::semantics`,
//! "Pinned RAM"), entry by entry through [`PageTables::update`] (which
//! makes a whole allocate-on-write PD entry a page table first: pinned
//! pages have no whole-table form).

use super::PageTables;
use crate::backend::PhysMemory;
use crate::frame_alloc::FrameAllocator;
use crate::holders::Holders;
use crate::pte::Pte;
use crate::validate::Span;

/// The convert to pinned RAM for one page that holds nothing outside its
/// entry worth moving: the new state, or `None` to leave it. (A swapped
/// page needs its data back first, and a present file page its record
/// cleared: [`PageTables::make_pinned`] does those.)
fn to_pinned(old: Pte) -> Option<Pte> {
    match old {
        Pte::Unusable | Pte::AllocOnWrite | Pte::NotPresentMmap { .. } => {
            Some(Pte::PinnedAllocOnWrite)
        }
        // Code is left: it is read-only, so never evicted already, and
        // pinned RAM is data (NX set).
        Pte::PresentRam {
            executable: true, ..
        } => None,
        Pte::PresentRam {
            frame, writable, ..
        } => Some(Pte::PinnedRam { frame, writable }),
        Pte::PresentMmap { frame, .. } => Some(Pte::PinnedRam {
            frame,
            writable: true,
        }),
        // Shared RAM is never sent out already: left as it is.
        Pte::OnSwap { .. }
        | Pte::PinnedRam { .. }
        | Pte::PinnedAllocOnWrite
        | Pte::Shared { .. }
        | Pte::Corrupt(_) => None,
    }
}

impl<M: PhysMemory, A: FrameAllocator> PageTables<M, A> {
    /// Every page of `span` pinned RAM. The caller made every table the
    /// span needs and made sure a frame is free for each page on swap: its
    /// data comes back now ([`Holders::swap_in`]), in address order. A slot
    /// the store refuses (a corrupt store) leaves its page on swap.
    pub fn make_pinned(&mut self, span: Span, mut holders: Holders<'_>) {
        self.update(span, &mut |pt, _, old| match old {
            Pte::OnSwap { slot } => holders.swap_in(pt, slot).map(|frame| Pte::PinnedRam {
                frame,
                writable: true,
            }),
            Pte::PresentMmap { frame, .. } => {
                holders.forget_file_page(pt, frame);
                to_pinned(old)
            }
            _ => to_pinned(old),
        });
    }
}
