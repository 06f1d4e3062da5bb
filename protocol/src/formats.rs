//! The in-memory formats the host checker reads from guest RAM.
//!
//! This module is a specification only: it holds no code on purpose. The
//! guest encodes these formats and the host checker decodes them, each with
//! its own implementation, so a bug in one is caught by the other.
//!
//! # Page-table entries of the managed space
//!
//! The VMM manages the lower half (user space, PML4 slots 0–255) and the
//! kernel space of [`crate::Hello::kernel_space`]. Every page's area type and
//! page state lives in its level-1 (4 KiB) entry; there is no side table.
//! Huge pages are never used in the managed space.
//!
//! ## Level-1 entries
//!
//! | entry | page state |
//! | --- | --- |
//! | `0` | unusable (a zero entry, so untouched space needs no tables) |
//! | `P=1`, bits 9–11 = `0b001` | present usable RAM |
//! | `P=1`, bits 9–11 = `0b010` | present memory-mapped file, clean |
//! | `P=1`, bits 9–11 = `0b011` | present memory-mapped file, private (written) |
//! | `P=0`, bits 1–3 = `1`, all other bits 0 | usable RAM, allocate on write |
//! | `P=0`, bits 1–3 = `2`, bits 12–51 = swap slot | usable RAM, on swap |
//! | `P=0`, bits 1–3 = `3`, bits 4–11 = file, bits 12–51 = file page | memory-mapped file, not present |
//!
//! Any other value is corrupt. In a present entry: bit 1 (W) is the page's
//! writability; bit 2 (U) is set exactly in the lower half; bits 12–51 hold
//! the frame's physical address; bits 3, 4, 7, 8 (PWT, PCD, PAT, G) and
//! 52–63 are zero; bits 5 and 6 (accessed, dirty) are the CPU's and may have
//! any value. In a not-present entry every bit not named above is zero.
//!
//! ## Upper-level entries (PML4, PDPT, PD)
//!
//! Either `0` (no table below), or `P=1`, `W=1`, `U` set exactly in the
//! lower half, bits 12–51 the physical address of the next table, every other
//! bit zero except accessed (bit 5). A table of the managed space whose 512
//! entries are all zero must not exist: the VMM frees it and clears the entry
//! that pointed to it.
//!
//! The PML4 slots in [`crate::Hello::reserved_pml4_slots`] (the direct map and
//! the kernel image) are the kernel's own and may use huge pages; their
//! tables are boot reservations.
//!
//! # The frame bitmap
//!
//! At [`crate::Hello::frame_bitmap`] in physical memory: bit `n` (byte
//! `n / 8`, bit `n % 8`, least significant bit first) is 1 when frame `n`
//! (physical address `n * 4096`) is in use, 0 when free. It covers
//! [`crate::Hello::total_frames`] frames; the bits past the last frame in
//! its last byte are 1. Frames that are not RAM (holes in the memory map, the
//! first MiB) are marked in use and listed in
//! [`crate::Hello::boot_reserved`].
//!
//! A frame is in use exactly when one of these owns it: a boot reservation,
//! a page table of the managed space, a present page of the managed space, or
//! the host (through `AllocFrames`).
