//! The kernel's global allocator: the VMM's own heap (`vmm_core`'s
//! `vmm/kheap.rs`), allocate-on-write pages in PML4 slot 384, from the
//! moment the VMM exists; before that, a small boot heap in `.bss` (part of
//! the kernel image, a boot reservation) for what boot itself allocates.
//!
//! Every block of the VMM heap is committed when it is handed out (its pages
//! get frames then, through the VMM's pressure path), so the kernel never
//! takes a page fault on its own heap: a fault while the VMM is locked
//! cannot come from here. An allocation while the VMM is locked (a bug:
//! the VMM core allocates nothing) gets a null pointer, which Rust turns
//! into an allocation-failure panic with a clear report. A block is freed
//! by whichever heap its address belongs to.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicBool, Ordering};

use linked_list_allocator::LockedHeap;

use crate::machine;

/// Bytes of the boot heap (only what boot allocates lives there).
pub const BOOT_HEAP_SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct HeapSpace([u8; BOOT_HEAP_SIZE]);

static mut BOOT_SPACE: HeapSpace = HeapSpace([0; BOOT_HEAP_SIZE]);

static BOOT_HEAP: LockedHeap = LockedHeap::empty();

/// Whether new blocks come from the VMM heap.
static VMM_HEAP: AtomicBool = AtomicBool::new(false);

struct KernelHeap;

#[global_allocator]
static ALLOCATOR: KernelHeap = KernelHeap;

fn in_boot_heap(ptr: *mut u8) -> bool {
    let start = core::ptr::addr_of!(BOOT_SPACE) as usize;
    (start..start + BOOT_HEAP_SIZE).contains(&(ptr as usize))
}

// SAFETY: blocks come from the boot heap (a correct allocator over memory it
// owns) or from the VMM heap, whose blocks never overlap a live block, are
// aligned as asked and are committed (mapped writable) before being handed
// out; each is freed by the heap that made it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !VMM_HEAP.load(Ordering::Acquire) {
            // SAFETY: forwarded with the caller's layout.
            return unsafe { BOOT_HEAP.alloc(layout) };
        }
        machine::heap_alloc(layout.size() as u64, layout.align() as u64)
            .map_or(core::ptr::null_mut(), |a| a as *mut u8)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_boot_heap(ptr) {
            // SAFETY: the block came from the boot heap with this layout.
            unsafe { BOOT_HEAP.dealloc(ptr, layout) };
            return;
        }
        if let Err(e) = machine::heap_free(ptr as u64) {
            panic!("kernel heap: freeing {ptr:p}, which is not a live kernel block ({e:?})");
        }
    }
}

/// Hands the boot region to the boot heap. Call once, before anything
/// allocates.
pub fn init() {
    // SAFETY: called once at boot (kmain), before any allocation; from then
    // on the region is only ever reached through the boot heap, which owns it
    // for good.
    unsafe {
        let start = core::ptr::addr_of_mut!(BOOT_SPACE) as *mut u8;
        BOOT_HEAP.lock().init(start, BOOT_HEAP_SIZE);
    }
}

/// From now on new blocks come from the VMM heap. Call once the VMM exists.
pub fn use_vmm_heap() {
    VMM_HEAP.store(true, Ordering::Release);
}
