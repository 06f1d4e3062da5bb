//! Answers from the guest to the host.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::frame::FrameError;
use crate::Hello;

/// The answer to one [`crate::Request`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answer to `Hello`.
    Hello(Hello),
    /// Answer to `Ping`.
    Pong { nonce: u64 },
    /// Answer to `Batch`: one answer per request, in order.
    Batch(Vec<Response>),
    /// The request was carried out and has nothing to report (`Map`,
    /// `Unmap`, `Convert`, `Write`, `FreeFrames`, `Vfree`, `Reset`).
    Done,
    /// Answer to `Read`: the checksum of the bytes read.
    Checksum { checksum: u32 },
    /// A `Write` or `Read` touched memory it may not touch. `addr` is the
    /// first byte that could not be accessed; every byte before it was
    /// written (or read) and stays written.
    Fault {
        addr: u64,
        write: bool,
        reason: FaultReason,
    },
    /// Answer to `Query`: one state per page, in address order.
    Pages(Vec<PageState>),
    /// Answer to `AllocFrames`: the frames, as runs in allocation order.
    Frames(Vec<FrameRun>),
    /// Answer to `Valloc`: the start of the range found.
    Valloc { addr: u64 },
    /// Answer to `Stats`.
    Stats(Stats),
    /// The request was refused; nothing changed.
    Error(Error),
    /// The guest could not decode the frame it received; it kept serving.
    BadFrame(FrameError),
}

/// Why a touch of memory failed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultReason {
    /// The page is unusable (or in no state a touch can resolve).
    Unusable,
    /// A write to a page mapped read-only.
    ReadOnly,
    /// The page needed a frame (allocate-on-write) and none was free.
    OutOfMemory,
}

/// A run of physically contiguous frames.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameRun {
    /// Physical address of the first frame.
    pub start: u64,
    /// Number of frames.
    pub count: u64,
}

/// A page's state as the guest's page-table entry holds it.
///
/// `frame` fields are informational (the host does not predict which frame
/// backs a page, only that one does).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageState {
    /// Area type unusable: the entry is zero (or its table is absent).
    Unusable,
    /// Usable RAM, present.
    PresentRam { writable: bool, frame: u64 },
    /// Usable RAM, not present: a frame is allocated on first touch.
    AllocOnWrite,
    /// Usable RAM, not present: the data is in swap slot `slot`.
    OnSwap { slot: u64 },
    /// Memory-mapped file, present. `private` once written (copy on write).
    PresentMmap {
        file: u8,
        page: u64,
        private: bool,
        frame: u64,
    },
    /// Memory-mapped file, not present: page `page` of file `file`.
    NotPresentMmap { file: u8, page: u64 },
    /// The entry holds bits that decode to no state (a guest bug).
    Corrupt { raw: u64 },
}

/// Counters of the VMM and the frame allocator.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Frames the frame allocator manages (bits in its bitmap).
    pub total_frames: u64,
    /// Frames free now.
    pub free_frames: u64,
    /// Frames free right after boot (and after every `Reset`).
    pub boot_free_frames: u64,
    /// Frames holding page tables of the VMM-managed space (not the boot
    /// tables of the direct map and the kernel image).
    pub page_table_frames: u64,
    /// Present data pages in the managed space.
    pub present_pages: u64,
    /// Allocate-on-write pages in the managed space.
    pub alloc_on_write_pages: u64,
    /// Frames the host holds through `AllocFrames`.
    pub host_frames: u64,
    /// Pages of kernel virtual space handed out by `Valloc`.
    pub valloc_pages: u64,
    /// Page faults resolved by allocating a frame (allocate-on-write).
    pub faults_resolved: u64,
}

/// Why a request was refused. The request changed nothing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// A count of zero pages or frames.
    ZeroCount,
    /// A count or length above the request's limit.
    TooLarge,
    /// An address that must be page aligned is not.
    Misaligned,
    /// The start address is not canonical.
    NonCanonical,
    /// The range's end does not fit in 64 bits.
    Overflow,
    /// The range runs from one canonical half into the hole.
    CrossesCanonicalHole,
    /// A user request named kernel memory, or a kernel-only request came
    /// from a user.
    PermissionDenied,
    /// The range is not memory the VMM manages (the direct map, the kernel
    /// image, the heap region, or outside every managed region).
    Reserved,
    /// A page is in a state the request does not apply to.
    InvalidState { addr: u64 },
    /// Not enough free frames.
    OutOfMemory,
    /// A frame address beyond the RAM the allocator manages.
    OutOfRange,
    /// `FreeFrames` named a frame the host does not hold.
    NotOwned { frame: u64 },
    /// `Valloc` found no free range of that size.
    NoVirtualSpace,
    /// A `Batch` inside a `Batch`.
    NestedBatch,
}
