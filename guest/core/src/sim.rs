//! Host-only simulation (feature `sim`, and this crate's tests): a physical
//! memory of frames in a `Vec`, and a machine whose touches emulate the CPU
//! (walk the tables, access present frames, call
//! [`Vmm::handle_fault`](crate::vmm::Vmm::handle_fault) on a fault, report
//! what the handler cannot resolve), with a TLB: a translation walked once
//! is used until the VMM flushes its page, as on the real CPU, so a missing
//! flush shows here too.

mod kernel_heap;
mod machine;
mod memory;

pub use kernel_heap::KernelOutOfMemory;
pub use machine::{SimMachine, SIM_BOOT_FRAMES, SIM_KERNEL_SLOTS};
pub use memory::{Cached, SimMemory};
