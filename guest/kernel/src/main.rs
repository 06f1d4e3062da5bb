//! vmmfuzz guest kernel: the bare-metal glue around `vmm-core`.
//!
//! Boot (PVH, `boot`), physical memory at boot (`memory`), CPU tables
//! (`gdt`, `interrupts`), the kernel's own mappings (`paging`, `image_map`),
//! the early heap (`heap`), the serial line (`serial`), panics (`panic`,
//! `exit`), memory touches with exception fixup (`touch`), `memset` and
//! `memcpy` (`mem`), and the request
//! loop (`rpc`), and where the coverage counters are (`coverage`) that hands every request to the VMM core's
//! dispatcher through [`machine::Kernel`].
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

mod boot;
mod coverage;
mod exit;
mod gdt;
mod heap;
mod image_map;
mod interrupts;
mod irq;
mod machine;
mod mem;
mod memory;
mod paging;
mod panic;
mod ring;
mod rpc;
mod serial;
mod touch;

use protocol::GuestMessage;

use crate::machine::{BootState, Kernel};
use crate::memory::PhysLayout;

/// The Rust entry, called by the PVH entry code in long mode on the boot
/// stack, with the physical address of `hvm_start_info`.
#[unsafe(no_mangle)]
extern "C" fn kmain(start_info: u64) -> ! {
    heap::init();
    serial::init();
    serial::send(&GuestMessage::Ready {
        protocol_version: protocol::PROTOCOL_VERSION,
    });
    gdt::init();
    interrupts::init();
    ring::init();
    // SAFETY: the identity map is still in place and `start_info` is what
    // QEMU passed (the entry code checked its magic).
    let info = unsafe { boot::read_start_info(start_info) };
    let layout = PhysLayout::new(&info);
    // SAFETY: once, after the GDT and IDT moved to the higher half and the
    // start info was read: nothing uses the identity map any more.
    unsafe { paging::init(&layout) };
    irq::init();
    // SAFETY: once, after paging::init.
    unsafe {
        machine::init(BootState {
            layout,
            pml4: boot::pml4_phys(),
        })
    };
    let mut kernel = Kernel::new();
    rpc::serve(&mut kernel)
}
