//! The vmmfuzz wire protocol, shared by the guest kernel and the host runner.
//!
//! Everything that crosses the serial line is defined here and nowhere else:
//! the requests the host sends ([`Request`]), what the guest says back
//! ([`GuestMessage`], [`Response`]), the layout report of the handshake
//! ([`Hello`]), the framing ([`frame`]) and the data pattern and checksum both
//! sides use to agree on memory contents ([`pattern`]).
//!
//! The in-memory formats the host checker reads from guest RAM (page-table
//! entry software bits, the frame bitmap) are specified in [`formats`] as
//! prose and tables only: the guest and the host each implement them on their
//! own, so that a wrong implementation on one side is caught by the other.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod budget;
pub mod formats;
pub mod frame;
mod hello;
mod message;
pub mod pattern;
mod request;
mod response;
pub mod ring;
pub mod scan;
pub mod semantics;

pub use hello::{CoverageInfo, FileInfo, Hello, PhysRange, VirtRange};
pub use message::{ExceptionReport, GuestMessage, PanicReport};
pub use request::{AreaType, Privilege, Request};
pub use response::{Error, ErrorKind, FaultReason, FrameRun, PageState, Reclaim, Response, Stats};

/// Version of this protocol. The guest reports it in [`Hello`]; the host
/// refuses to talk to a guest of another version. Version 7: `Read`
/// answers [`pattern::checksum`]'s polynomial hash, not CRC-32C.
pub const PROTOCOL_VERSION: u32 = 7;

/// Size of a page and of a frame, in bytes.
pub const PAGE_SIZE: u64 = 4096;

/// Largest `len` a single `Write` or `Read` may name (256 MiB).
pub const MAX_TOUCH_LEN: u64 = 256 << 20;

/// Largest `pages` a single `Query` may name.
pub const MAX_QUERY_PAGES: u64 = 4096;

/// Largest `count` a single `AllocFrames` may name (its answer, up to one
/// run per frame, must fit in a frame: see [`budget`]).
pub const MAX_ALLOC_FRAMES: u64 = 4096;

/// Largest number of requests in one `Batch`.
pub const MAX_BATCH: usize = 4096;

/// Capacity of the guest's reclaim-event ring: at most this many
/// [`Reclaim`] events per answer. With the ring full the guest reclaims
/// nothing more until the answer is built (see `semantics`).
pub const RECLAIM_RING: usize = 512;

/// Frames a guest with a kernel heap keeps for the kernel's own heap
/// blocks (at most; see [`heap_reserve_frames`]): every other frame the VMM
/// takes, a host heap block's included, leaves at least this many free (see
/// `semantics`, **Memory pressure** and **The kernel's reserve**), so the
/// kernel can always decode the next request and build its answer. It
/// covers [`budget::KERNEL_REQUEST_MEMORY`] (a test holds it so).
pub const HEAP_RESERVE_FRAMES: u64 = 256;

/// The frames kept for the kernel's own heap blocks in a guest whose heap
/// is `heap_max_bytes` long: [`HEAP_RESERVE_FRAMES`], but never more than
/// the pages of the kernel's half of the heap (none without a heap).
pub const fn heap_reserve_frames(heap_max_bytes: u64) -> u64 {
    let half = host_heap_offset(heap_max_bytes) / PAGE_SIZE;
    if half < HEAP_RESERVE_FRAMES {
        half
    } else {
        HEAP_RESERVE_FRAMES
    }
}

/// Where the host's part of the heap starts, from `heap.start`: host
/// blocks (`Kmalloc`) lie from `heap.start + host_heap_offset(max)` to
/// `heap.start + max`, the upper half; the lower half is the kernel's alone
/// (see `semantics`, **Kmalloc**).
pub const fn host_heap_offset(heap_max_bytes: u64) -> u64 {
    heap_max_bytes / 2 / KMALLOC_GRANULE * KMALLOC_GRANULE
}

/// The smallest guest RAM, in MiB, the kernel's guarantees hold on (see
/// `semantics`, **The kernel's reserve**: its heap's half and the reserve
/// cover the most one request frame needs). Measured: the guest boots and
/// answers from 4 MiB (3 MiB and less triple fault at boot), but below
/// 8 MiB its heap cannot hold [`budget::KERNEL_REQUEST_MEMORY`]; the
/// runner boots no smaller guest.
pub const MIN_RAM_MIB: u32 = 8;

/// Largest number of files the host may supply (file numbers are 8 bits).
pub const MAX_FILES: usize = 255;

/// Largest `align` a `Kmalloc` may name.
pub const MAX_KMALLOC_ALIGN: u64 = 4096;

/// The kernel heap hands out whole granules of this many bytes: a
/// `Kmalloc` of `size` bytes gets the block `addr..addr + size` rounded up
/// to a multiple of it (see `semantics`, **Kmalloc**).
pub const KMALLOC_GRANULE: u64 = 16;

/// Exit value the guest writes to `isa-debug-exit` after a `Shutdown`
/// request. QEMU exits with `(value << 1) | 1` = 33: the only success code.
pub const EXIT_SUCCESS: u8 = 0x10;
/// Exit value after a Rust panic in the guest (QEMU status 65).
pub const EXIT_PANIC: u8 = 0x20;
/// Exit value after an unexpected CPU exception (QEMU status 67).
pub const EXIT_EXCEPTION: u8 = 0x21;

/// QEMU's process exit status for a guest that wrote `value` to
/// `isa-debug-exit`.
pub const fn qemu_exit_status(value: u8) -> i32 {
    ((value as i32) << 1) | 1
}
