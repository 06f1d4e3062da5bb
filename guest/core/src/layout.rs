//! The guest's virtual address map. The host learns it from `Hello`; these
//! constants are the guest's own and are not shared with the host.
//!
//! | PML4 slots | range | what |
//! | --- | --- | --- |
//! | 0–255 | `0x0000_0000_0000_0000..0x0000_8000_0000_0000` | user space (managed) |
//! | 256 | `0xffff_8000_0000_0000..` | direct map of all RAM (reserved) |
//! | 384 | `0xffff_c000_0000_0000..0xffff_c080_0000_0000` | kernel heap region (reserved to the heap) |
//! | 385–510 | `0xffff_c080_0000_0000..0xffff_ff80_0000_0000` | kernel space for requests (managed) |
//! | 386 | `0xffff_c100_0000_0000..+1 GiB` | `Valloc` region (inside the above) |
//! | 511 | `0xffff_ff80_0000_0000..` | kernel image at `KERNEL_BASE + phys` (reserved) |

/// First address of user space.
pub const USER_START: u64 = 0;
/// End (exclusive) of user space: the lower canonical half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Virtual address of physical address 0 in the direct map.
pub const DIRECT_MAP_OFFSET: u64 = 0xffff_8000_0000_0000;
/// PML4 slot of the direct map.
pub const DIRECT_MAP_PML4_SLOT: u16 = 256;
/// Start of the kernel space the VMM manages (the heap region first).
pub const KERNEL_SPACE_START: u64 = 0xffff_c000_0000_0000;
/// End (exclusive) of the kernel space the VMM manages.
pub const KERNEL_SPACE_END: u64 = 0xffff_ff80_0000_0000;
/// The kernel heap's region: one PML4 slot, reserved to the heap.
pub const HEAP_START: u64 = 0xffff_c000_0000_0000;
/// End (exclusive) of the heap region.
pub const HEAP_END: u64 = 0xffff_c080_0000_0000;
/// Start of the region `Valloc` hands out.
pub const VALLOC_START: u64 = 0xffff_c100_0000_0000;
/// Pages in the `Valloc` region (1 GiB).
pub const VALLOC_PAGES: u64 = (1 << 30) / 4096;
/// Frames of the `Valloc` bitmap (one bit per page of the region), part of
/// the VMM's metadata.
pub const VALLOC_BITMAP_FRAMES: u64 = VALLOC_PAGES.div_ceil(4096 * 8);
/// Virtual address of physical address 0 in the kernel image mapping.
pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
/// PML4 slot of the kernel image.
pub const KERNEL_PML4_SLOT: u16 = 511;
/// Address spaces that may exist at once, space 0 (the boot PML4's)
/// included: `Hello::max_spaces` (see `protocol::semantics`, **Address
/// spaces**).
pub const MAX_SPACES: u16 = 16;
