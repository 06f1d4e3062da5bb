//! Fixtures the library's unit tests share.

use protocol::{Hello, PhysRange, VirtRange};

/// The `Hello` of a 128 MiB guest with the guest's virtual layout (user
/// half, kernel space, heap and valloc regions, PML4 slots 256 and 511
/// reserved), no files, swap, ring or coverage.
pub(crate) fn hello() -> Hello {
    Hello {
        protocol_version: 1,
        ram_bytes: 128 << 20,
        total_frames: 32768,
        boot_free_frames: 30000,
        page_table_root: 0x1000,
        direct_map_offset: 0xffff_8000_0000_0000,
        frame_bitmap: PhysRange {
            start: 0x10_0000,
            end: 0x10_1000,
        },
        boot_reserved: vec![],
        kernel_image: PhysRange {
            start: 0x20_0000,
            end: 0x40_0000,
        },
        user_space: VirtRange {
            start: 0,
            end: 0x0000_8000_0000_0000,
        },
        kernel_space: VirtRange {
            start: 0xffff_c080_0000_0000,
            end: 0xffff_ff80_0000_0000,
        },
        heap: VirtRange {
            start: 0xffff_c080_0000_0000,
            end: 0xffff_c080_0200_0000,
        },
        valloc: VirtRange {
            start: 0xffff_d000_0000_0000,
            end: 0xffff_d000_1000_0000,
        },
        reserved_pml4_slots: vec![256, 511],
        ..Hello::default()
    }
}
