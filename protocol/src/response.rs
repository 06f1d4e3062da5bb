//! Answers from the guest to the host.

use alloc::boxed::Box;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

use crate::frame::FrameError;
use crate::Hello;

/// The answer to one [`crate::Request`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answer to `Hello` (boxed: the layout is ten times bigger than any
    /// other answer, and every answer of a batch is as big as the biggest
    /// variant).
    Hello(Box<Hello>),
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
    /// Answer to `Evict`: pages sent to the swap store and clean file pages
    /// dropped (always inside `Reclaimed`, whose events name them).
    Evicted { swapped: u64, dropped: u64 },
    /// Answer to `Kmalloc`: the block's address.
    Kmalloc { addr: u64 },
    /// Answer to `HeapScavenge`: heap pages whose frames were returned.
    Scavenged { pages: u64 },
    /// Answer to `CreateSpace`: the new space's number and the physical
    /// address of its PML4 (its CR3 value).
    Space { space: u16, root: u64 },
    /// `response`, preceded by the reclaims the guest made since the
    /// previous answer was built (see `semantics`, "Reclaim events"). Never
    /// nested; inside a `Batch` each element carries its own.
    Reclaimed {
        events: Vec<Reclaim>,
        response: Box<Response>,
    },
    /// `response` (the request's answer, `Reclaimed` included), after
    /// which a page the request made not present still read through a
    /// stale translation: the VMM changed a present entry without
    /// invalidating its TLB entry (see `semantics`, **Stale
    /// translations**). `addr` is the lowest such page.
    Stale { addr: u64, response: Box<Response> },
}

impl Response {
    /// The reclaim events (empty when none) and the plain answer.
    pub fn split_reclaimed(self) -> (Vec<Reclaim>, Response) {
        match self {
            Response::Reclaimed { events, response } => (events, *response),
            r => (Vec::new(), r),
        }
    }
}

/// One page the guest reclaimed on its own (under memory pressure, or for
/// `Evict`/`HeapScavenge`): facts the host cannot predict, reported so that
/// its model stays exact. Each freed exactly one frame.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reclaim {
    /// The present page at `addr` (present RAM or a private file page) went
    /// to swap slot `slot`; it is usable RAM on swap now.
    Swapped { addr: u64, slot: u64 },
    /// The clean present file page at `addr` was dropped: not-present mmap
    /// again, same file and page.
    Dropped { addr: u64 },
    /// The wholly free heap page at `addr` lost its frame: allocate-on-write
    /// again.
    Scavenged { addr: u64 },
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
    /// Usable RAM, present. `executable` is the NX bit cleared: only a
    /// `Map` with `executable` makes such a page, never writable too.
    PresentRam {
        writable: bool,
        executable: bool,
        frame: u64,
    },
    /// Usable RAM, not present: a frame is allocated on first touch.
    AllocOnWrite,
    /// Usable RAM, not present: the data is in swap slot `slot`.
    OnSwap { slot: u64 },
    /// Memory-mapped file, present, holding page `page` of file `file` (from
    /// the frame-info table). `private` once written (copy on write).
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
    /// Pinned usable RAM, present: as `PresentRam`, but never evicted nor
    /// picked by the pressure path.
    PinnedRam { writable: bool, frame: u64 },
    /// Pinned usable RAM, not present: a zeroed frame is allocated on first
    /// touch (and the page becomes `PinnedRam`, writable).
    PinnedAllocOnWrite,
    /// Shared usable RAM, present: its frame is mapped by `mappings` present
    /// shared pages of all live spaces (this one included; from the
    /// frame-info table), all with this writability. Never executable,
    /// never evicted nor picked by the pressure path.
    Shared {
        writable: bool,
        mappings: u64,
        frame: u64,
    },
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
    /// Present data pages in the managed space, counted by frame: a shared
    /// frame counts once, however many pages map it.
    pub present_pages: u64,
    /// Allocate-on-write pages in the managed space.
    pub alloc_on_write_pages: u64,
    /// Frames the host holds through `AllocFrames`.
    pub host_frames: u64,
    /// Pages of kernel virtual space handed out by `Valloc`.
    pub valloc_pages: u64,
    /// Page faults resolved by giving a page a frame (allocate-on-write,
    /// file load, swap-in; not the copy-on-write of a present file page).
    pub faults_resolved: u64,
    /// Swap slots in use (pages on swap).
    pub swap_slots_used: u64,
    /// Bytes of compressed data in the swap store.
    pub swap_bytes_used: u64,
    /// Bytes of the swap store's data area.
    pub swap_bytes_total: u64,
    /// The kernel heap's fixed maximum size.
    pub heap_max_bytes: u64,
    /// Present heap pages (each holds a frame).
    pub heap_pages: u64,
    /// Page-table frames of the heap region (fixed since boot).
    pub heap_table_frames: u64,
    /// Bytes in live heap blocks (the kernel's and the host's).
    pub heap_bytes_live: u64,
    /// Bytes freed in the heap since its last complete scavenge.
    pub bytes_freed_since_check: u64,
    /// `Reclaim::Scavenged` events since boot or `Reset`.
    pub pages_scavenged: u64,
    /// `Reclaim::Swapped` events since boot or `Reset`.
    pub pages_evicted: u64,
    /// `Reclaim::Dropped` events since boot or `Reset`.
    pub pages_dropped: u64,
}

/// Defines [`Error`] and [`ErrorKind`] from one list of variants, so that
/// the kinds are the errors' own.
macro_rules! errors {
    ($(#[$meta:meta])* pub enum Error {
        $($(#[$doc:meta])* $variant:ident $({ $field:ident: u64 })?,)*
    }) => {
        $(#[$meta])*
        pub enum Error {
            $($(#[$doc])* $variant $({ $field: u64 })?,)*
        }

        /// An [`Error`] without its payload (the address of
        /// `InvalidState`, the frame of `NotOwned`), in the same order.
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ErrorKind {
            $($variant,)*
        }

        impl Error {
            /// Which error this is, without its payload.
            pub fn kind(&self) -> ErrorKind {
                match self {
                    $(Error::$variant { .. } => ErrorKind::$variant,)*
                }
            }
        }
    };
}

errors! {
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
        /// `MapFile` named a file the guest was not given.
        NoSuchFile,
        /// `MapFile`'s `file_page + pages` exceeds the file's pages.
        BeyondFile,
        /// The `Batch` was cut here: the answers so far and this request's
        /// largest possible answer might not fit in one frame, so this request
        /// and the rest were not executed (see [`crate::budget`]). Send them
        /// again in another batch.
        BatchCut,
        /// `Map` asked for pages both writable and executable: no page is
        /// ever both (W^X).
        WriteAndExecute,
        /// `SwitchSpace`, `DestroySpace` or `Share` named a space that does
        /// not exist.
        NoSuchSpace,
        /// `CreateSpace` found every space number of `Hello::max_spaces`
        /// in use.
        TooManySpaces,
        /// `DestroySpace` named space 0 (the kernel's) or the current space.
        SpaceInUse,
    }
}
