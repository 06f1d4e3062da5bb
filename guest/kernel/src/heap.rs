//! The kernel's temporary global allocator: a linked-list heap over a static
//! region in `.bss` (part of the kernel image, so a boot reservation).
//!
//! Isolated here on purpose: a later change replaces it with the VMM's own
//! allocate-on-write heap in the heap region of the layout.

use linked_list_allocator::LockedHeap;

/// Bytes of the early heap.
/// Enough to decode any frame: a 128 KiB frame holds at most ~131072
/// one-byte requests, a 4 MiB `Vec<Request>` (6 MiB while it grows).
pub const HEAP_SIZE: usize = 8 << 20;

#[repr(C, align(4096))]
struct HeapSpace([u8; HEAP_SIZE]);

static mut HEAP_SPACE: HeapSpace = HeapSpace([0; HEAP_SIZE]);

#[global_allocator]
static ALLOCATOR: LockedHeap = LockedHeap::empty();

/// Hands the static region to the allocator. Call once, before anything
/// allocates.
pub fn init() {
    // SAFETY: called once at boot (kmain), before any allocation; from then
    // on the region is only ever reached through the allocator, which owns
    // it for good.
    unsafe {
        let start = core::ptr::addr_of_mut!(HEAP_SPACE) as *mut u8;
        ALLOCATOR.lock().init(start, HEAP_SIZE);
    }
}
