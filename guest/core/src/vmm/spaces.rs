//! The address-space requests (`protocol::semantics`, **Address spaces**):
//! `CreateSpace`, `SwitchSpace` and `DestroySpace`, each checked in the
//! specification's order, then done by the page tables' spaces part
//! (`paging::spaces`, which holds the invariants). The kernel-only check
//! is the dispatcher's.
//!
//! # Invariants
//! - A request that fails changes nothing: every check comes before the
//!   first change, and `CreateSpace` has its frame before it records the
//!   space.
//! - The frame of a new PML4 comes through the pressure path as any
//!   table's (`reserve`: the kernel's reserve kept, reclaiming first).

use x86_64::structures::paging::PhysFrame;

use super::Vmm;
use crate::backend::PhysMemory;
use crate::errors::{CreateSpaceError, DestroySpaceError, NoSuchSpace};
use crate::frame_alloc::FrameAllocator;

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// Makes a new address space: its PML4 (one frame, after reclaiming
    /// if only the reserve is left) with an empty user half and the
    /// kernel's half; the lowest unused number. Answers the number and the
    /// PML4. The current space stays.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn create_space(&mut self) -> Result<(u16, PhysFrame), CreateSpaceError> {
        let space = self
            .pt
            .spaces()
            .free_number()
            .ok_or(CreateSpaceError::TooManySpaces)?;
        self.reserve(1)?;
        let frame = self
            .pt
            .frames_mut()
            .alloc()
            .ok_or(CreateSpaceError::OutOfMemory)?;
        self.pt.add_space(space, frame);
        self.clock.space_made();
        Ok((space, frame))
    }

    /// Makes `space` current, its PML4 loaded into CR3. The
    /// `inject-switch-no-cr3` build (a deliberate bug, for the tests that
    /// must catch it) records the switch but leaves CR3 as it was.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn switch_space(&mut self, space: u16) -> Result<(), NoSuchSpace> {
        self.pt
            .enter(space, !cfg!(feature = "inject-switch-no-cr3"))
    }

    /// Destroys `space` (live, neither 0 nor current): its user pages as
    /// `Unmap` leaves them (frames, swap slots and frame-info records
    /// freed, no reclaim event), its tables and its PML4 freed.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn destroy_space(&mut self, space: u16) -> Result<(), DestroySpaceError> {
        let (pt, holders) = self.holders();
        pt.drop_space(space, holders)
    }

    /// The current address space.
    pub fn current_space(&self) -> u16 {
        self.pt.spaces().current()
    }

    /// The PML4 of `space`, if it is live.
    pub fn space_root(&self, space: u16) -> Option<PhysFrame> {
        self.pt.spaces().root(space)
    }
}
