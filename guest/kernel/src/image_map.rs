//! The kernel image map with per-section permissions.
//!
//! The entry code maps the first GiB at `KERNEL_BASE` with writable,
//! executable 2 MiB pages. Once in Rust, the 2 MiB pages that hold the image
//! are replaced by 4 KiB page tables (statics of the image) that map only the
//! image, each part with what it needs:
//!
//! | part | mapping |
//! | --- | --- |
//! | boot section (entry code, boot GDT, boot page tables) | read/write, no execute |
//! | `.text` | read/execute |
//! | `.rodata`, `.extable` | read only, no execute |
//! | `.data`, `.bss` (stacks, early heap, static tables) | read/write, no execute |
//! | the page below the boot stack | not mapped (an overflow faults) |
//!
//! With CR0.WP the kernel cannot write its code or read-only data either.
//! Everything else the kernel reaches (page tables, frames, the bitmap) is
//! reached through the direct map.

use vmm_core::conv::usize_of;
use x86_64::structures::paging::{PageTable, PageTableFlags as F};
use x86_64::PhysAddr;

use vmm_core::layout::KERNEL_BASE;

const HUGE: u64 = 2 << 20;

/// 2 MiB chunks of physical memory the image may span (from 0).
const MAX_CHUNKS: usize = 16;

#[repr(C, align(4096))]
struct ImageTables([PageTable; MAX_CHUNKS]);

static mut IMAGE_TABLES: ImageTables = ImageTables([const { PageTable::new() }; MAX_CHUNKS]);

unsafe extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
    static boot_stack_guard: u8;
}

/// Physical address of the kernel-image virtual address `virt`.
fn phys_of(virt: u64) -> u64 {
    virt - KERNEL_BASE
}

/// The flags of the image page at physical `phys`, or `None` to leave it
/// unmapped.
fn flags_for(phys: u64, image: (u64, u64)) -> Option<F> {
    let text = phys_of(core::ptr::addr_of!(__text_start) as u64);
    let rodata = phys_of(core::ptr::addr_of!(__rodata_start) as u64);
    let data = phys_of(core::ptr::addr_of!(__data_start) as u64);
    let guard = phys_of(core::ptr::addr_of!(boot_stack_guard) as u64);
    let rw = F::PRESENT | F::WRITABLE | F::NO_EXECUTE;
    match phys {
        p if p < image.0 || p >= image.1 || p == guard => None,
        p if p < text => Some(rw),
        p if p < rodata => Some(F::PRESENT),
        p if p < data => Some(F::PRESENT | F::NO_EXECUTE),
        _ => Some(rw),
    }
}

/// Replaces the 2 MiB pages of the image in the boot page directory `pd`
/// by 4 KiB tables with the permissions above, and drops the rest of the
/// first GiB from the kernel map. The caller flushes the TLB.
///
/// # Safety
/// Call once, at boot. `pd` must be the boot page directory of the kernel
/// map (PML4 511, PDPT 510), and `image` the kernel image's physical range:
/// the new tables map every page the kernel runs from at the same address,
/// so the switch is seamless.
pub unsafe fn remap(pd: &mut PageTable, image: (u64, u64)) {
    let chunks = usize_of(image.1.div_ceil(HUGE));
    assert!(
        chunks <= MAX_CHUNKS,
        "kernel image ends at {:#x}, beyond the {} MiB the image map covers",
        image.1,
        MAX_CHUNKS * 2
    );
    // SAFETY: called once at boot, before anything else refers to the
    // image tables.
    let tables = unsafe { &mut (*core::ptr::addr_of_mut!(IMAGE_TABLES)).0 };
    for (i, pt) in tables.iter_mut().enumerate().take(chunks) {
        for (j, entry) in pt.iter_mut().enumerate() {
            let phys = i as u64 * HUGE + j as u64 * 4096;
            match flags_for(phys, image) {
                Some(flags) => entry.set_addr(PhysAddr::new(phys), flags),
                None => entry.set_unused(),
            }
        }
    }
    for (i, entry) in pd.iter_mut().enumerate() {
        if i < chunks {
            let pt_phys = phys_of(core::ptr::addr_of!(tables[i]) as u64);
            entry.set_addr(PhysAddr::new(pt_phys), F::PRESENT | F::WRITABLE);
        } else {
            entry.set_unused();
        }
    }
}
