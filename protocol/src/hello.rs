//! The handshake: the guest's layout, as the host checker needs it.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A range of physical memory, `start..end` in bytes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PhysRange {
    pub start: u64,
    pub end: u64,
}

/// A range of virtual memory, `start..end` in bytes (`end` may be 0 to mean
/// the top of the address space).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VirtRange {
    pub start: u64,
    pub end: u64,
}

impl PhysRange {
    /// Whether `addr` lies in the range.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

impl VirtRange {
    /// Whether `addr` lies in the range (an `end` of 0 means the top).
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && (self.end == 0 || addr < self.end)
    }
}

/// The guest's answer to `Hello`: protocol version and memory layout.
/// (`Default`: every field zero or empty, for fixtures that name only what
/// they need.)
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    /// [`crate::PROTOCOL_VERSION`] of the guest.
    pub protocol_version: u32,
    /// Bytes of usable RAM the guest found in its memory map.
    pub ram_bytes: u64,
    /// Frames the frame allocator manages: frame `n` is at `n * 4096`.
    pub total_frames: u64,
    /// Frames free after boot (and after every `Reset`).
    pub boot_free_frames: u64,
    /// Physical address of space 0's PML4 (the value in CR3 at boot and
    /// after `Reset`; see `semantics`, **Address spaces**).
    pub page_table_root: u64,
    /// How many address spaces may exist at once, space 0 included: space
    /// numbers are `0..max_spaces`.
    pub max_spaces: u16,
    /// The direct map: virtual `direct_map_offset + p` maps physical `p`.
    pub direct_map_offset: u64,
    /// The frame allocator's bitmap (format: [`crate::formats`]).
    pub frame_bitmap: PhysRange,
    /// Physical memory used at boot: the kernel image, boot page tables,
    /// the bitmap, stacks, firmware areas. Exactly the frames marked used
    /// right after boot.
    pub boot_reserved: Vec<PhysRange>,
    /// The kernel image, physical.
    pub kernel_image: PhysRange,
    /// Where user requests may act (the lower canonical half).
    pub user_space: VirtRange,
    /// The kernel space the VMM manages (kernel requests may act here, less
    /// the heap region).
    pub kernel_space: VirtRange,
    /// The kernel heap's region inside `kernel_space` (reserved to the heap).
    pub heap: VirtRange,
    /// The region `Valloc` hands out, inside `kernel_space`.
    pub valloc: VirtRange,
    /// PML4 slots that hold the direct map and the kernel image, which the
    /// VMM does not manage (their tables are boot reservations).
    pub reserved_pml4_slots: Vec<u16>,
    /// The files the host supplied at boot, file `n` at index `n` (their
    /// images are boot reservations).
    pub files: Vec<FileInfo>,
    /// The swap store (format: [`crate::formats`]), a boot reservation.
    pub swap: PhysRange,
    /// The frame-info table (format: [`crate::formats`]), a boot
    /// reservation.
    pub frame_info: PhysRange,
    /// The heap's fixed maximum size: its pages are
    /// `heap.start..heap.start + heap_max_bytes`.
    pub heap_max_bytes: u64,
    /// The shared-memory transport (layout and rules: [`crate::ring`]),
    /// inside the kernel image.
    pub ring: PhysRange,
    /// The guest's code-coverage counters and their PC table, when the
    /// kernel was built with SanitizerCoverage (format: [`crate::formats`],
    /// "Coverage counters"); `None` for an uninstrumented build.
    pub coverage: Option<CoverageInfo>,
}

/// Where the kernel's SanitizerCoverage data lies in physical memory (both
/// inside [`Hello::kernel_image`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoverageInfo {
    /// The inline 8-bit counters: one byte per instrumented edge.
    pub counters: PhysRange,
    /// The PC table: one `(pc, flags)` pair of little-endian `u64`s per
    /// counter, in the counters' order.
    pub pcs: PhysRange,
}

impl CoverageInfo {
    /// Number of counters (instrumented edges).
    pub fn edges(&self) -> u64 {
        self.counters.end.saturating_sub(self.counters.start)
    }
}

/// One file the host supplied at boot.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileInfo {
    /// Length in pages.
    pub pages: u64,
    /// Where its bytes lie in physical memory (`pages * 4096` bytes).
    pub image: PhysRange,
}
