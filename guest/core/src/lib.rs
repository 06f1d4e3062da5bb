//! The guest's virtual memory manager, as portable logic.
//!
//! Everything that decides something lives here; the bare-metal kernel only
//! supplies a [`backend::PhysMemory`] (physical memory through the direct map,
//! `invlpg`) and a [`machine::Machine`] (touches from the CPU, the handshake,
//! panic and shutdown), and turns page faults into
//! [`vmm::Vmm::handle_fault`]. On the host the same code runs over the
//! simulated memory of [`sim`] (feature `sim`).
//!
//! Module map:
//! - [`backend`]: the memory/TLB trait and the `#[must_use]` flush token;
//! - [`pte`]: the page-state enum and its one encode/decode pair;
//! - [`frames`]: the physical frame allocator (bitmap in guest RAM);
//! - [`validate`]: request input checks, in the order of the specification;
//! - `paging`: the table walker (create on demand, free when empty);
//! - [`vmm`]: the VMM and its operations (`ops`, `hostframes`, [`kvalloc`]);
//! - [`machine`], [`dispatch`]: requests in, responses out.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod backend;
pub mod dispatch;
pub mod frames;
mod hostframes;
pub mod kvalloc;
pub mod layout;
pub mod machine;
mod ops;
mod paging;
pub mod pte;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
pub mod validate;
pub mod vmm;

#[cfg(test)]
mod tests;

pub use backend::{Flush, PhysMemory};
pub use frames::FrameAllocator;
pub use machine::Machine;
pub use vmm::Vmm;
