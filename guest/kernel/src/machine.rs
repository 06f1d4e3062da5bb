//! The kernel as the VMM core sees it: the boot layout, the VMM behind its
//! lock, and the hardware operations the dispatcher asks for.

use alloc::vec;

use protocol::{FaultReason, Hello, PhysRange, VirtRange, PAGE_SIZE};
use spin::Once;
use vmm_core::layout::{
    DIRECT_MAP_OFFSET, DIRECT_MAP_PML4_SLOT, HEAP_END, HEAP_START, KERNEL_PML4_SLOT,
    KERNEL_SPACE_END, KERNEL_SPACE_START, USER_END, USER_START, VALLOC_PAGES, VALLOC_START,
};

use crate::memory::PhysLayout;
use crate::{exit, touch};

/// What boot found, kept for `Hello`.
#[derive(Debug)]
pub struct BootState {
    pub layout: PhysLayout,
    pub pml4: u64,
}

static BOOT: Once<BootState> = Once::new();

/// Records the boot state (once).
pub fn set_boot_state(state: BootState) {
    BOOT.call_once(|| state);
}

fn boot_state() -> &'static BootState {
    BOOT.get().expect("boot state not recorded")
}

/// The page-fault handler's way into the VMM: `None` when the VMM is locked
/// (a fault inside the VMM: a kernel bug the caller reports).
pub fn resolve_fault(_addr: u64, _write: bool) -> Option<Result<(), FaultReason>> {
    Some(Err(FaultReason::Unusable))
}

/// The kernel, as the dispatcher's machine.
#[derive(Debug)]
pub struct Kernel {
    _private: (),
}

impl Kernel {
    /// The machine. Call after boot recorded its state.
    pub fn new() -> Kernel {
        boot_state();
        Kernel { _private: () }
    }

    pub fn hello(&mut self) -> Hello {
        let boot = boot_state();
        let l = &boot.layout;
        Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            ram_bytes: l.ram_bytes,
            total_frames: l.total_frames,
            boot_free_frames: l.boot_free_frames,
            page_table_root: boot.pml4,
            direct_map_offset: DIRECT_MAP_OFFSET,
            frame_bitmap: l.bitmap,
            boot_reserved: l.boot_reserved.clone(),
            kernel_image: l.kernel_image,
            user_space: VirtRange {
                start: USER_START,
                end: USER_END,
            },
            kernel_space: VirtRange {
                start: KERNEL_SPACE_START,
                end: KERNEL_SPACE_END,
            },
            heap: VirtRange {
                start: HEAP_START,
                end: HEAP_END,
            },
            valloc: VirtRange {
                start: VALLOC_START,
                end: VALLOC_START + VALLOC_PAGES * PAGE_SIZE,
            },
            reserved_pml4_slots: vec![DIRECT_MAP_PML4_SLOT, KERNEL_PML4_SLOT],
        }
    }

    pub fn touch_write(
        &mut self,
        addr: u64,
        len: u64,
        seed: u64,
    ) -> Result<(), (u64, FaultReason)> {
        touch::write(addr, len, seed)
    }

    pub fn touch_read(&mut self, addr: u64, len: u64) -> Result<u32, (u64, FaultReason)> {
        touch::read(addr, len)
    }

    pub fn panic_now(&mut self) -> ! {
        panic!("panic requested by host")
    }

    pub fn shutdown(&mut self) -> ! {
        exit::exit(protocol::EXIT_SUCCESS)
    }
}

#[allow(dead_code)]
fn _unused(_: PhysRange) {}
