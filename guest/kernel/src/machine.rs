//! The kernel as the VMM core sees it: the boot layout, the VMM behind its
//! lock, and the hardware operations the dispatcher asks for.

use alloc::vec;
use vmm_core::conv::usize_of;

use protocol::{FaultReason, Hello, PhysRange, VirtRange, PAGE_SIZE};
use spin::{Mutex, Once};
use vmm_core::layout::{
    DIRECT_MAP_OFFSET, DIRECT_MAP_PML4_SLOT, HEAP_END, HEAP_START, KERNEL_PML4_SLOT,
    KERNEL_SPACE_END, KERNEL_SPACE_START, MAX_SPACES, USER_END, USER_START, VALLOC_PAGES,
    VALLOC_START,
};
use vmm_core::{BitmapFrameAllocator, FrameAllocator, Machine, Vmm, FAULT_AROUND_PAGES};
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use crate::memory::{self, PhysLayout};
use crate::paging::{self, DirectMap};
use crate::{exit, touch};

/// What boot found, kept for `Hello`.
#[derive(Debug)]
pub struct BootState {
    pub layout: PhysLayout,
    pub pml4: u64,
}

static BOOT: Once<BootState> = Once::new();

/// The VMM. Requests reach it through [`Machine::with_vmm`], page faults
/// through [`resolve_fault`]; both only ever `try_lock` it (one CPU, no
/// interrupts: a lock found taken is a kernel bug, never a wait).
static VMM: Mutex<Option<Vmm<DirectMap>>> = Mutex::new(None);

/// Records the boot state and builds the VMM over it: the frame allocator
/// on the bitmap after the kernel image, the boot PML4 as the root.
///
/// # Safety
/// Call once, after `paging::init` (the bitmap is reached through the
/// direct map, and the VMM gets the only [`DirectMap`]).
pub unsafe fn init(state: BootState) {
    let boot = BOOT.call_once(|| state);
    let l = &boot.layout;
    // The bitmap, its boot copy and the zero record, one after the other.
    let owned = |range: PhysRange| {
        let virt = paging::phys_to_virt(range.start) as *mut u8;
        // SAFETY: each of the three ranges lies on pages of RAM (checked
        // by PhysLayout), covered by the direct map, reserved from the
        // allocator and reached through nothing else; they are disjoint
        // (each on the pages after the one before), each taken once here,
        // and the allocator owns them for good.
        unsafe { core::slice::from_raw_parts_mut(virt, l.bitmap_len()) }
    };
    let bitmap = owned(l.bitmap);
    let boot_copy = owned(l.bitmap_boot);
    let zero = owned(l.bitmap_zero);
    let frames = BitmapFrameAllocator::new(bitmap, boot_copy, l.total_frames, &l.ram, &l.reserved)
        .with_zero_record(zero);
    assert_eq!(
        frames.free_frames(),
        l.boot_free_frames,
        "the frame allocator and the boot reservations disagree"
    );
    let pml4 = PhysFrame::containing_address(PhysAddr::new(boot.pml4));
    let free = memory::subtract(&l.ram, &l.reserved);
    let images: alloc::vec::Vec<PhysRange> = l
        .files
        .iter()
        .map(|f| PhysRange {
            start: f.start,
            end: f.start + f.pages * 4096,
        })
        .collect();
    // SAFETY: the only DirectMap, made once (this function runs once) after
    // paging::init, and given to the VMM; `free` is what the allocator
    // manages (RAM less the reservations, as it was built from), which
    // nothing but the VMM refers to.
    let mem = unsafe { DirectMap::new(&free, pml4, &images) };
    let files: &'static [vmm_core::config::FileImage] = alloc::vec::Vec::leak(l.files.clone());
    let config = vmm_core::Config {
        files,
        ..vmm_core::Config::for_frames(l.total_frames)
    };
    let vmm = Vmm::with_config(mem, frames, pml4, config);
    *VMM.try_lock().expect("VMM locked at boot") = Some(vmm);
    crate::heap::use_vmm_heap();
}

fn boot_state() -> &'static BootState {
    BOOT.get().expect("boot state not recorded")
}

/// The page-fault handler's way into the VMM: `None` when the VMM is
/// locked or not built yet (a fault inside the VMM or during boot: a kernel
/// bug the caller reports as an exception). Once the fault resolved, the
/// pages after it up to `around_end` (where the touch that faulted ends; 0:
/// none) are resolved too, at most [`FAULT_AROUND_PAGES`], as their own
/// faults would ([`Vmm::fault_around`]): under TCG the delivery of a page
/// fault costs more than resolving the page.
pub fn resolve_fault(addr: u64, write: bool, around_end: u64) -> Option<Result<(), FaultReason>> {
    let mut guard = VMM.try_lock()?;
    let vmm = guard.as_mut()?;
    let resolved = vmm.handle_fault(addr, write);
    if resolved.is_ok() {
        vmm.fault_around(addr, around_end, write, FAULT_AROUND_PAGES);
    }
    Some(resolved)
}

/// A kernel heap block of `size` bytes aligned to `align`, committed (its
/// pages have frames, from the heap's reserve first); `None` if the heap or
/// the frames are exhausted, or if the VMM is locked (an allocation under
/// the VMM's lock is a bug).
pub fn heap_alloc(size: u64, align: u64) -> Option<u64> {
    let mut guard = VMM.try_lock()?;
    guard.as_mut()?.kernel_alloc(size, align)
}

/// Why a kernel heap block could not be freed (each a bug of the kernel).
#[derive(Debug)]
pub enum HeapFreeError {
    /// The VMM is locked (freeing while it is held).
    Locked,
    /// The VMM is not set up yet.
    NoVmm,
    /// `addr` is not a live kernel block.
    NotABlock,
}

/// Frees a kernel heap block.
pub fn heap_free(addr: u64) -> Result<(), HeapFreeError> {
    let mut guard = VMM.try_lock().ok_or(HeapFreeError::Locked)?;
    let vmm = guard.as_mut().ok_or(HeapFreeError::NoVmm)?;
    vmm.kernel_free(addr)
        .map_err(|vmm_core::errors::NotABlock { .. }| HeapFreeError::NotABlock)
}

/// The kernel, as the dispatcher's machine.
#[derive(Debug)]
pub struct Kernel {
    touched: vmm_core::touched::Touched,
}

impl Kernel {
    /// The machine. Call after [`init`].
    pub fn new() -> Kernel {
        boot_state();
        Kernel {
            touched: Default::default(),
        }
    }
}

impl Machine for Kernel {
    type Mem = DirectMap;
    type Frames = BitmapFrameAllocator;

    fn hello(&mut self) -> Hello {
        let boot = boot_state();
        let l = &boot.layout;
        let mut reserved = l.boot_reserved.clone();
        // Room for the heap's tables, reserved before the VMM is locked (no
        // allocation under the lock).
        reserved.reserve(usize_of(self.with_vmm(|v| v.stats().heap_table_frames)) + 1);
        let (meta, total_frames, boot_free_frames, swap, frame_info, heap_max_bytes) = self
            .with_vmm(|v| {
                v.heap_tables(|f| {
                    let start = f.start_address().as_u64();
                    reserved.push(PhysRange {
                        start,
                        end: start + PAGE_SIZE,
                    });
                });
                (
                    v.metadata_range(),
                    v.frames().total_frames(),
                    v.frames().boot_free_frames(),
                    v.swap_range(),
                    v.frame_info_range(),
                    v.heap_max_bytes(),
                )
            });
        reserved.push(meta);
        let files = l
            .files
            .iter()
            .map(|f| protocol::FileInfo {
                pages: f.pages,
                image: PhysRange {
                    start: f.start,
                    end: f.start + f.pages * PAGE_SIZE,
                },
            })
            .collect();
        Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            ram_bytes: l.ram_bytes,
            total_frames,
            boot_free_frames,
            page_table_root: boot.pml4,
            max_spaces: MAX_SPACES,
            direct_map_offset: DIRECT_MAP_OFFSET,
            frame_bitmap: l.bitmap,
            boot_reserved: memory::normalize(reserved),
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
            files,
            swap,
            frame_info,
            heap_max_bytes,
            ring: crate::ring::range(),
            coverage: crate::coverage::info(),
        }
    }

    fn with_vmm<R>(&mut self, f: impl FnOnce(&mut Vmm<DirectMap>) -> R) -> R {
        let mut guard = VMM.try_lock().expect("VMM already locked");
        f(guard.as_mut().expect("VMM not built"))
    }

    fn touch_write(&mut self, addr: u64, len: u64, seed: u64) -> Result<(), (u64, FaultReason)> {
        touch::write(addr, len, seed)
    }

    fn touch_read(&mut self, addr: u64, len: u64) -> Result<u32, (u64, FaultReason)> {
        touch::read(addr, len)
    }

    fn probe(&mut self, addr: u64) -> bool {
        touch::probe(addr)
    }

    fn touched(&mut self) -> &mut vmm_core::touched::Touched {
        &mut self.touched
    }

    fn panic_now(&mut self) -> ! {
        panic!("panic requested by host")
    }

    fn shutdown(&mut self) -> ! {
        exit::exit(protocol::EXIT_SUCCESS)
    }
}
