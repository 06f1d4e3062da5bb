//! Test support: what this crate's tests reach past the requests: a page
//! put in any state, the page tables (to read and write entries as the CPU
//! does) and the swap store's own check. Compiled for tests only.

use protocol::Privilege;

use crate::backend::{FrameAccess, PhysMemory};
use crate::errors::MapError;
use crate::frame_alloc::FrameAllocator;
use crate::paging::PageTables;
use crate::pte::Pte;
use crate::validate;
use x86_64::structures::paging::PhysFrame;

use super::Vmm;

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// A frame from the allocator, every byte `fill`.
    fn filled_frame(&mut self, fill: u8) -> Result<PhysFrame, MapError> {
        let frame = self.pt.frames_mut().alloc().ok_or(MapError::OutOfMemory)?;
        self.pt.mem().frame_bytes(frame).fill(fill);
        Ok(frame)
    }

    /// Test support: puts the page at canonical `addr` in `state` whatever it
    /// was (its old frame freed; a present state gets a fresh frame filled
    /// with `fill`, its `frame` field ignored; a present mmap page records
    /// file 0 page 0; an on-swap page gets a real slot holding a page of
    /// `fill`).
    pub(crate) fn set_state_for_test(
        &mut self,
        addr: u64,
        state: Pte,
        fill: u8,
    ) -> Result<(), MapError> {
        let span = validate::check_pages(addr, 1, None, Privilege::Kernel)?;
        self.make_unusable(span);
        if state == Pte::Unusable {
            return Ok(());
        }
        self.pt.ensure_tables(span)?;
        let state = match state {
            Pte::PresentRam {
                writable,
                executable,
                ..
            } => {
                let frame = self.filled_frame(fill)?;
                Pte::PresentRam {
                    frame,
                    writable,
                    executable,
                }
            }
            Pte::PinnedRam { writable, .. } => {
                let frame = self.filled_frame(fill)?;
                Pte::PinnedRam { frame, writable }
            }
            Pte::PresentMmap {
                writable, private, ..
            } => {
                let frame = self.filled_frame(fill)?;
                self.set_frame_info(frame, Some((0, 0)));
                Pte::PresentMmap {
                    frame,
                    writable,
                    private,
                }
            }
            Pte::OnSwap { .. } => {
                let frame = self.filled_frame(fill)?;
                let slot = self
                    .swap
                    .as_mut()
                    .and_then(|s| s.store(self.pt.mem(), frame).ok());
                let _ = self.pt.frames_mut().free(frame);
                Pte::OnSwap {
                    slot: slot.ok_or(MapError::OutOfMemory)?,
                }
            }
            s => s,
        };
        self.pt.update(span, &mut |_, _, _| Some(state));
        Ok(())
    }

    /// The reclaim clock's state.
    pub(crate) fn clock_for_test(&mut self) -> &mut crate::clock::Clock {
        &mut self.clock
    }

    /// The page tables, with the memory and the frame allocator.
    pub(crate) fn tables_for_test(&mut self) -> &mut PageTables<M, A> {
        &mut self.pt
    }

    /// The swap store's check of itself (`SwapStore::check`): the slots in
    /// use, 0 without a store.
    pub(crate) fn check_swap_for_test(&mut self) -> Result<u64, alloc::string::String> {
        match self.swap {
            Some(s) => s.check(self.pt.mem()),
            None => Ok(0),
        }
    }
}
