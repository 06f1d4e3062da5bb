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

/// Bytes one PDPT entry maps as a huge page.
pub const GIB: u64 = 1 << 30;

/// Whether the direct map maps GiB `gib` of physical memory with one
/// 1 GiB page: the CPU has them (`gib_pages`), one range of `ram` (RAM,
/// sorted and disjoint) covers the whole GiB, and none of the `mmio`
/// addresses (registers the direct map maps uncached, apart) lies in it.
/// Anything else keeps 2 MiB pages over its RAM, so a 1 GiB page never
/// maps a hole or a device's registers write-back.
pub fn direct_map_gib_page(
    ram: &[protocol::PhysRange],
    mmio: &[u64],
    gib_pages: bool,
    gib: u64,
) -> bool {
    let Some((start, end)) = gib
        .checked_mul(GIB)
        .and_then(|s| Some((s, s.checked_add(GIB)?)))
    else {
        return false;
    };
    gib_pages
        && !mmio.iter().any(|&a| (start..end).contains(&a))
        && ram.iter().any(|r| r.start <= start && end <= r.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::PhysRange;

    const APICS: [u64; 2] = [0xfec0_0000, 0xfee0_0000];

    fn range(start: u64, end: u64) -> PhysRange {
        PhysRange { start, end }
    }

    #[test]
    fn a_gib_of_ram_throughout_is_one_page_when_the_cpu_has_them() {
        // RAM from 1 MiB to 3 GiB: GiB 0 has the hole below 1 MiB.
        let ram = [range(0, 0x9_f000), range(0x10_0000, 3 * GIB)];
        let pages = |has| (0..5).map(move |g| direct_map_gib_page(&ram, &APICS, has, g));
        assert_eq!(
            pages(true).collect::<Vec<_>>(),
            [false, true, true, false, false]
        );
        assert!(pages(false).all(|p| !p), "without 1 GiB pages, none");
    }

    #[test]
    fn a_gib_with_a_device_or_split_across_ranges_keeps_2_mib_pages() {
        // RAM over the APICs' GiB (no real map says so): still not whole.
        let ram = [range(0, 8 * GIB)];
        assert!(!direct_map_gib_page(&ram, &APICS, true, 3));
        assert!(direct_map_gib_page(&ram, &APICS, true, 2));
        // One GiB in two touching ranges: not one range's, so 2 MiB pages
        // (correct, only slower).
        let split = [range(0, GIB + GIB / 2), range(GIB + GIB / 2, 4 * GIB)];
        assert!(!direct_map_gib_page(&split, &[], true, 1));
        assert!(direct_map_gib_page(&split, &[], true, 2));
        // Past the address space: no page, no overflow.
        assert!(!direct_map_gib_page(&ram, &[], true, u64::MAX / 2));
    }
}
