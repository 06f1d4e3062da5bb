//! The frame allocator as the VMM sees it: a trait (the backend behind the
//! VMM, as arceos's `axmm` puts a mapping backend behind a trait and the
//! `x86_64` crate its `FrameAllocator`), so that the VMM's core is generic
//! over where frames come from. Its one implementation is the bitmap of
//! [`crate::frames`].
//!
//! # Invariants (what every implementation keeps)
//! - A frame answered by an `alloc*` method was free and is used from then
//!   on, until [`FrameAllocator::free`] takes it back; no frame is answered
//!   twice while used. `free` refuses (`Err`) a frame that is not in use or
//!   not managed, changing nothing.
//! - [`FrameAllocator::free_frames`] is the number of managed frames free
//!   now, `total_frames - used`; every `alloc*` that answers a frame takes
//!   exactly the frames it answers, every successful `free` gives back one.
//! - An `alloc*` method answers `None` only when no free frame (no run of
//!   the length) is left, and changes nothing then.
//! - Placement is deterministic: which frame an `alloc*` answers depends
//!   only on the calls made since construction or the last
//!   [`FrameAllocator::back_to_boot_point`] (the host predicts the frames `AllocFrames`
//!   answers, and a sequence run after `Reset` must get the frames it gets
//!   after a fresh boot).
//!
//! Soundness does not rest on the allocator: a wrong one can make the VMM
//! hand a frame out twice (a VMM bug the host's checks report), but the VMM
//! reaches memory only through [`crate::backend::PhysMemory`], whose
//! implementation refuses every frame that is not managed RAM. So the trait
//! is safe to implement, unlike `x86_64`'s.

use x86_64::structures::paging::PhysFrame;

/// Why a frame could not be freed (a bug of the caller: the VMM never frees a
/// frame it does not own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is past the frames the allocator manages.
    OutOfRange,
    /// The frame is free already.
    NotUsed,
}

/// Why a frame could not be claimed (a bug of the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// The frame is past the frames the allocator manages.
    OutOfRange,
    /// The frame is used already.
    Used,
}

/// No free frame was left for what the VMM needed (a page table, a data
/// frame, a run of frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoFrame;

/// Single and contiguous allocation of physical frames, with the counts the
/// VMM reports in `Stats`.
pub trait FrameAllocator {
    /// Frames managed.
    fn total_frames(&self) -> u64;

    /// Frames free now.
    fn free_frames(&self) -> u64;

    /// Frames free at the boot point (what every `Reset` returns to).
    fn boot_free_frames(&self) -> u64;

    /// Whether frame number `n` is in use (frames past the end are).
    fn is_used(&self, n: u64) -> bool;

    /// One free frame (next fit from where the previous one was found), or
    /// `None` when none is left.
    fn alloc(&mut self) -> Option<PhysFrame>;

    /// The frame [`FrameAllocator::alloc`] would answer, taken the same
    /// way, with only zero bytes: `zero` writes them unless the frame is
    /// known to hold only zeros already (`crate::zeroes`), and it is known
    /// to from then on. The caller maps it for a page to read zeros from,
    /// or forgets it ([`FrameAllocator::set_zero`]) if it writes it
    /// otherwise.
    fn alloc_zeroed(&mut self, zero: impl FnOnce(PhysFrame)) -> Option<PhysFrame>;

    /// The run [`FrameAllocator::alloc_contiguous`] would answer, taken
    /// the same way, its frames made to hold only zeros as
    /// [`FrameAllocator::alloc_zeroed`]'s (`zero` called for each frame not
    /// known to hold only zeros).
    fn alloc_contiguous_zeroed(
        &mut self,
        count: u64,
        zero: impl FnMut(PhysFrame),
    ) -> Option<PhysFrame>;

    /// Records whether `frame` is known to hold only zeros, under the
    /// rules of `crate::zeroes`.
    fn set_zero(&mut self, frame: PhysFrame, zero: bool);

    /// Whether `frame` is known to hold only zeros (`crate::zeroes`: but
    /// for what was written through a present entry with its dirty bit
    /// set).
    fn is_zero(&self, frame: PhysFrame) -> bool;

    /// The highest free frame, or `None` when none is left. The kernel heap
    /// takes its frames from the top, the rest from the bottom: which
    /// frames the heap holds (it keeps what it grew into across `Reset`)
    /// then does not change which frames the host's requests get, until
    /// memory is nearly full.
    fn alloc_high(&mut self) -> Option<PhysFrame>;

    /// `count` physically contiguous free frames (first fit), or `None`.
    fn alloc_contiguous(&mut self, count: u64) -> Option<PhysFrame>;

    /// Frees `frame`.
    fn free(&mut self, frame: PhysFrame) -> Result<(), FreeError>;

    /// Takes the free frame `frame` (one the VMM knows it keeps across a
    /// return to the boot point, such as a heap page's).
    fn claim(&mut self, frame: PhysFrame) -> Result<(), ClaimError>;

    /// Records the current state as the boot point (after the VMM took its
    /// own metadata frames): the boot count, and which frames are used.
    fn set_boot_point(&mut self);

    /// Back to the boot point: every frame used or free as it was then, and
    /// the placement rewound (the next single frame is searched from the
    /// start again), so that a run after `Reset` allocates the same frames
    /// as a run after a fresh boot. The frames taken since are all free
    /// again, whoever held them: the caller claims back those it keeps.
    fn back_to_boot_point(&mut self);
}
