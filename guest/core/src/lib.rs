//! The guest's virtual memory manager, as portable logic.
//!
//! Everything that decides something lives here; the bare-metal kernel only
//! supplies a [`backend::PhysMemory`] (physical memory through the direct map,
//! `invlpg`) and a [`machine::Machine`] (touches from the CPU, the handshake,
//! panic and shutdown), and turns page faults into
//! [`vmm::Vmm::handle_fault`]. On the host the same code runs over the
//! simulated memory of `sim` (feature `sim`).
//!
//! Module map:
//! - [`backend`]: the memory/TLB trait (an `unsafe trait`: the backend
//!   refuses every frame that is not the VMM's, so a wrong VMM cannot write
//!   over the kernel) and the `#[must_use]` flush token;
//! - [`pte`]: the page-state enum and its one encode/decode pair;
//! - [`frame_alloc`]: the frame allocator as the VMM sees it (a trait, the
//!   VMM generic over it), and [`frames`] its one implementation (a bitmap
//!   in guest RAM);
//! - [`validate`]: request input checks, in the order of the specification;
//! - `walk`: the one walk over the page tables (entries a range covers,
//!   descent into the tables that exist), which every walker is built on;
//! - `paging`: the table walkers (create on demand, free when empty), and
//!   the address spaces (`paging::spaces`: one PML4 each, one kernel half);
//! - [`vmm`]: the VMM, whose parts only it and its children (the
//!   requests: `ops`, `fault`, `kheap`, `files`, `reclaim`) reach, and the
//!   parts it hands what they need (`hostframes`, [`kvalloc`]);
//! - [`machine`], [`dispatch`]: requests in, responses out.
//!
//! # What the kernel must do
//! - Build a [`BitmapFrameAllocator`] over the bitmap at `Hello::frame_bitmap`,
//!   then [`Vmm::new`]: it takes one contiguous run of frames for its own
//!   metadata (the host-frame and `Valloc` bitmaps) before recording the
//!   boot free count. List [`Vmm::metadata_range`] in
//!   `Hello::boot_reserved` and report `boot_free_frames` from the VMM.
//! - Give the VMM a PML4 whose managed slots (0–255, 384–510) are empty; it
//!   never writes slots 256 and 511, and only reads them to copy the whole
//!   kernel half into the PML4 of each address space it creates (space 0
//!   is that PML4; see `paging::spaces`).
//! - Implement [`PhysMemory::load_root`] as a CR3 write: the VMM switches
//!   address spaces through it (`SwitchSpace`, `Reset`), and report
//!   [`layout::MAX_SPACES`] in `Hello::max_spaces`.
//! - Call [`Vmm::handle_fault`] from the page-fault handler (with CR2 and
//!   the W bit of the error code); `Ok` means retry the access, `Err` is the
//!   fault a touch reports. Set CR0.WP so that writes to read-only pages
//!   fault in ring 0 too.
//! - Never touch managed memory inside [`Machine::with_vmm`]:
//!   [`dispatch::handle`] validates under it, releases it, then touches.
#![cfg_attr(not(test), no_std)]
// No unsafe code runs here: the one `unsafe` is the declaration of
// `PhysMemory`'s contract (and the simulated memory's promise to keep it).
#![deny(unsafe_code)]

extern crate alloc;

pub mod backend;
mod bits;
mod clock;
pub mod config;
pub mod conv;
mod counters;
pub mod dispatch;
pub mod errors;
mod events;
mod extent;
pub mod frame_alloc;
mod frameinfo;
pub mod frames;
mod heapmap;
mod holders;
mod hostframes;
pub mod kvalloc;
pub mod layout;
mod linear;
pub mod machine;
mod paging;
pub mod pte;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
mod stale;
pub mod swap;
pub mod touched;
pub mod validate;
pub mod vmm;
mod walk;
mod zeroes;

#[cfg(test)]
mod tests;

pub use backend::{Flush, FrameAccess, FrameRefused, PhysMemory};
pub use config::Config;
pub use frame_alloc::FrameAllocator;
pub use frames::BitmapFrameAllocator;
pub use machine::Machine;
pub use vmm::fault::FAULT_AROUND_PAGES;
pub use vmm::Vmm;
