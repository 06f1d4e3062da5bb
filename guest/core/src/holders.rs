//! What pages hold outside the page tables, and the changes of one page
//! that let go of it or move it: [`Holders`], the frame-info table (which
//! file page a present mmap frame holds) and the swap store (the slots of
//! swapped pages), lent by the VMM to the walkers and the pressure path
//! together with the [`PageTables`].
//!
//! # Invariants
//! - A page's frame-info record is cleared whenever its frame leaves it
//!   (released, dropped, swapped out) and its swap slot freed when the page
//!   is made unusable; the entry itself is always written through
//!   [`PageTables`] (so its counts stay exact).
//! - A shared page lets go of one mapping of its frame: the frame's
//!   mapping count (its frame-info record) drops by one, and the frame and
//!   its record go with the last mapping ([`Holders::drop_shared`]).
//! - Nothing here changes when a page cannot be sent out ([`NotSent`]);
//!   a shared page is never sent out.

use protocol::Reclaim;
use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess as _, PhysMemory};
use crate::frame_alloc::FrameAllocator;
use crate::frameinfo::FrameInfo;
use crate::paging::PageTables;
use crate::pte::{self, Pte};
use crate::swap::SwapStore;
use crate::validate::canonical;

/// Why a page was not sent out (nothing changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotSent {
    /// The swap store has no room for it (or there is no swap store).
    NoSwapRoom,
    /// The page is not present.
    NotPresent,
    /// The page is pinned RAM, which is never sent out.
    Pinned,
    /// The page is shared RAM, which is never sent out.
    Shared,
}

/// What pages hold outside the page tables: the frame-info table (which
/// file page a present mmap frame holds) and the swap store (the slots of
/// swapped pages), each if the VMM has it.
pub(crate) struct Holders<'a> {
    pub finfo: Option<FrameInfo>,
    pub swap: Option<&'a mut SwapStore>,
}

impl Holders<'_> {
    /// Frees what a page in state `old` holds (its frame in `pt`'s
    /// allocator and its frame-info record, or its swap slot) and answers
    /// its unusable state (`None` when it is unusable already).
    pub fn release<M: PhysMemory, A: FrameAllocator>(
        &mut self,
        pt: &mut PageTables<M, A>,
        old: Pte,
    ) -> Option<Pte> {
        match old {
            Pte::Unusable => None,
            Pte::PresentRam { frame, .. }
            | Pte::PresentMmap { frame, .. }
            | Pte::PinnedRam { frame, .. } => {
                self.forget_file_page(pt, frame);
                let freed = pt.frames_mut().free(frame);
                debug_assert!(freed.is_ok(), "data frame {frame:?} was not in use");
                Some(Pte::Unusable)
            }
            Pte::Shared { frame, .. } => {
                self.drop_shared(pt, frame);
                Some(Pte::Unusable)
            }
            Pte::OnSwap { slot } => {
                if let Some(s) = self.swap.as_mut() {
                    s.free(pt.mem(), slot);
                }
                Some(Pte::Unusable)
            }
            Pte::AllocOnWrite
            | Pte::PinnedAllocOnWrite
            | Pte::NotPresentMmap { .. }
            | Pte::Corrupt(_) => Some(Pte::Unusable),
        }
    }

    /// Brings the data of swap slot `slot` back into a frame taken from
    /// `pt`'s allocator (the caller made sure one is free: no reclaim
    /// here), the slot pending until the answer is built, as a swap-in's.
    /// `None` (nothing taken, the slot kept) when no frame is free or the
    /// store refuses the slot.
    pub fn swap_in<M: PhysMemory, A: FrameAllocator>(
        &mut self,
        pt: &mut PageTables<M, A>,
        slot: u64,
    ) -> Option<PhysFrame> {
        let store = self.swap.as_mut()?;
        let frame = pt.frames_mut().alloc()?;
        if store.load(pt.mem(), slot, frame).is_err() {
            let _ = pt.frames_mut().free(frame);
            return None;
        }
        Some(frame)
    }

    /// One shared mapping of `frame` goes: its mapping count drops by one,
    /// and when that was the last mapping the frame is freed, its record
    /// cleared and it no longer counts as a present frame. (Without a
    /// frame-info table no frame is ever shared: `Share` refuses.)
    ///
    /// `inject-shared-unmap-frees`: a deliberate bug, for the tests that
    /// must catch it: the frame is freed whatever its count (which is kept
    /// right), so the other mappings name a free frame.
    pub fn drop_shared<M: PhysMemory, A: FrameAllocator>(
        &mut self,
        pt: &mut PageTables<M, A>,
        frame: PhysFrame,
    ) {
        let count = self.finfo.map_or(1, |t| t.shared_count(pt.mem(), frame));
        if let Some(t) = self.finfo {
            t.set_shared(pt.mem(), frame, count.saturating_sub(1));
        }
        if count > 1 {
            if cfg!(feature = "inject-shared-unmap-frees") {
                let _ = pt.frames_mut().free(frame);
            }
            return;
        }
        let freed = pt.frames_mut().free(frame);
        debug_assert!(freed.is_ok(), "shared frame {frame:?} was not in use");
        if freed.is_ok() {
            pt.shared_frame(false);
        }
    }

    /// Clears the file-page record of `frame`.
    pub fn forget_file_page<M: PhysMemory, A: FrameAllocator>(
        &self,
        pt: &mut PageTables<M, A>,
        frame: PhysFrame,
    ) {
        if let Some(t) = self.finfo {
            t.set(pt.mem(), frame, None);
        }
    }

    /// Sends the present page at `linear` (entry `table[i]` of `pt`, state
    /// `old`) out: drops a clean file page, swaps anything else; its frame
    /// goes back to the allocator. Answers the event to record.
    pub fn send_out<M: PhysMemory, A: FrameAllocator>(
        &mut self,
        pt: &mut PageTables<M, A>,
        table: PhysFrame,
        i: usize,
        linear: u64,
        old: Pte,
    ) -> Result<Reclaim, NotSent> {
        let addr = canonical(linear);
        let (new, event, frame) = match old {
            Pte::PresentMmap {
                frame,
                private: false,
                ..
            } => {
                let info = self.finfo.and_then(|t| t.get(pt.mem(), frame));
                let (file, page) = info.unwrap_or((0, 0));
                (
                    Pte::NotPresentMmap { file, page },
                    Reclaim::Dropped { addr },
                    frame,
                )
            }
            // Pinned RAM never goes out. `inject-evict-pinned` puts in a
            // deliberate bug, only for host-runner's test that a pinned page
            // sent to swap is caught (host-runner/tests/it/inject_bugs.rs):
            // it goes out like any other RAM page.
            Pte::PinnedRam { .. } if !cfg!(feature = "inject-evict-pinned") => {
                return Err(NotSent::Pinned)
            }
            Pte::Shared { .. } => return Err(NotSent::Shared),
            Pte::PresentRam { frame, .. }
            | Pte::PresentMmap { frame, .. }
            | Pte::PinnedRam { frame, .. } => {
                // A frame known to hold only zeros, mapped by an entry
                // without its dirty bit, was never written since (the rules
                // of `crate::zeroes`): its page goes out as zeros without a
                // look at its 4096 bytes. Most pages sent out are mapped
                // and never written.
                let written = pte::written_frame(pt.read_entry(table, i)).is_some();
                let zeros = !written && pt.frames().is_zero(frame);
                debug_assert!(
                    !zeros || crate::swap::all_zero(pt.mem().frame_bytes(frame)),
                    "frame {frame:?} is known to hold only zeros, its entry has no D, \
                     yet it holds other bytes"
                );
                let stored = self.swap.as_mut().map(|s| {
                    if zeros {
                        s.store_zeros(pt.mem())
                    } else {
                        s.store(pt.mem(), frame)
                    }
                });
                let Some(Ok(slot)) = stored else {
                    return Err(NotSent::NoSwapRoom);
                };
                (Pte::OnSwap { slot }, Reclaim::Swapped { addr, slot }, frame)
            }
            _ => return Err(NotSent::NotPresent),
        };
        pt.set_leaf_flushed(table, i, linear, old, new);
        self.forget_file_page(pt, frame);
        let freed = pt.frames_mut().free(frame);
        debug_assert!(freed.is_ok(), "evicted frame {frame:?} was not in use");
        Ok(event)
    }
}
