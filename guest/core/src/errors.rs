//! What each operation of the VMM can fail with, one small enum per
//! operation (the `x86_64` crate's style: `MapToError`, `UnmapError`), so
//! that a signature says which failures an operation has. They become the
//! protocol's [`protocol::Error`] in one place, at the dispatch edge
//! (`dispatch::wire`), and nowhere else.
//!
//! Every input check of `protocol::semantics` (steps 1–7, and the count
//! checks of the kernel-only requests) is an [`Invalid`]; the state and
//! memory steps are the operation's own variants.

use crate::frame_alloc::NoFrame;
pub use crate::validate::Invalid;

/// `Map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The request's input was refused.
    Invalid(Invalid),
    /// The page at `addr` (canonical, the lowest) is not unusable.
    NotUnusable { addr: u64 },
    /// Not enough frames, even after reclaiming (nothing changed).
    OutOfMemory,
    /// Writable and executable at once (W^X), refused before any other
    /// check.
    WriteAndExecute,
}

/// `Unmap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapError {
    /// The request's input was refused.
    Invalid(Invalid),
    /// The page at `addr` (canonical, the lowest) is unusable already (or
    /// its entry is corrupt).
    NotMapped { addr: u64 },
}

/// `Convert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvertError {
    /// The request's input was refused.
    Invalid(Invalid),
    /// Not enough frames for the missing tables (nothing changed).
    OutOfMemory,
}

/// `MapFile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapFileError {
    /// The request's input was refused.
    Invalid(Invalid),
    /// No file of that number was supplied at boot.
    NoSuchFile,
    /// The range runs past the end of the file.
    BeyondFile,
    /// The page at `addr` (canonical, the lowest) is not unusable.
    NotUnusable { addr: u64 },
    /// Not enough frames for the missing tables (nothing changed).
    OutOfMemory,
}

/// `Valloc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VallocError {
    /// The count was refused.
    Invalid(Invalid),
    /// No free run of that many pages is left in the region (or the VMM has
    /// no metadata for it).
    NoVirtualSpace,
}

/// `Vfree`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VfreeError {
    /// The request's input was refused.
    Invalid(Invalid),
    /// The page at `addr` (the lowest) is not handed out by `Valloc`.
    NotHandedOut { addr: u64 },
}

/// `AllocFrames`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocFramesError {
    /// The count was refused.
    Invalid(Invalid),
    /// Not enough free frames (a run of them with `contiguous`), even after
    /// reclaiming.
    OutOfMemory,
}

/// `FreeFrames`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeFramesError {
    /// The request's input was refused.
    Invalid(Invalid),
    /// The range runs past the frames the allocator manages.
    OutOfRange,
    /// The host does not hold the frame at physical address `frame` (the
    /// lowest such).
    NotOwned { frame: u64 },
}

/// `Kmalloc` (and the kernel's own heap blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmallocError {
    /// The size or alignment was refused.
    Invalid(Invalid),
    /// No room in the heap (or no heap).
    OutOfMemory,
}

/// `Kfree` (and the kernel's own heap blocks): `addr` is not the start of
/// a live block of that owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotABlock {
    /// The address given.
    pub addr: u64,
}

/// `CreateSpace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateSpaceError {
    /// Every space number but 0 is in use.
    TooManySpaces,
    /// No frame for the new PML4, even after reclaiming (nothing changed).
    OutOfMemory,
}

/// `SwitchSpace` (and `DestroySpace`): no live space has that number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchSpace;

/// `DestroySpace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestroySpaceError {
    /// No live space has that number.
    NoSuchSpace,
    /// Space 0 (the kernel's) or the current space.
    SpaceInUse,
}

/// `Share`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// A range was refused (steps 1–5 over either range; `Reserved` for a
    /// byte of either outside the user half).
    Invalid(Invalid),
    /// No live space has the target's number.
    NoSuchSpace,
    /// The source page at `addr` (the lowest) is neither present
    /// non-executable RAM nor present shared RAM.
    NotShareable { addr: u64 },
    /// The target page at `addr` (the lowest, in the target space) is not
    /// unusable.
    NotUnusable { addr: u64 },
    /// Not enough frames for the target's missing tables, even after
    /// reclaiming (nothing changed).
    OutOfMemory,
}

/// Committing heap pages (the kernel's own blocks) stopped; the pages
/// committed before keep their frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// A page of the range has no page table: it is not a heap page.
    NotHeap,
    /// No frame was left, even after reclaiming.
    OutOfFrames,
}

/// A page is not unusable where an operation needs every page unusable
/// (`Map`, `MapFile`): the lowest such, canonical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NotUnusable {
    pub addr: u64,
}

impl From<NotUnusable> for MapError {
    fn from(NotUnusable { addr }: NotUnusable) -> Self {
        MapError::NotUnusable { addr }
    }
}

impl From<NotUnusable> for MapFileError {
    fn from(NotUnusable { addr }: NotUnusable) -> Self {
        MapFileError::NotUnusable { addr }
    }
}

/// The request's input was refused, as any operation's error.
macro_rules! from_invalid {
    ($($t:ident),*) => {$(
        impl From<Invalid> for $t {
            fn from(e: Invalid) -> Self {
                $t::Invalid(e)
            }
        }
    )*};
}
from_invalid!(
    MapError,
    UnmapError,
    ConvertError,
    MapFileError,
    VallocError,
    VfreeError,
    AllocFramesError,
    FreeFramesError,
    KmallocError,
    ShareError
);

/// No frame was left, as the operations that need frames answer it.
macro_rules! from_no_frame {
    ($($t:ident),*) => {$(
        impl From<NoFrame> for $t {
            fn from(_: NoFrame) -> Self {
                $t::OutOfMemory
            }
        }
    )*};
}
from_no_frame!(
    MapError,
    ConvertError,
    MapFileError,
    AllocFramesError,
    CreateSpaceError,
    ShareError
);
