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
//! | `P=1`, bits 9–11 = `0b100` | present pinned (never-swap) RAM |
//! | `P=0`, bits 1–3 = `4`, all other bits 0 | pinned RAM, allocate on write |
//! | `P=1`, bits 9–11 = `0b101` | present shared RAM (user half only) |
//!
//! Any other value is corrupt. In a present entry: bit 1 (W) is the page's
//! writability; bit 2 (U) is set exactly in the lower half; bits 12–51 hold
//! the frame's physical address; bit 63 (NX) is set, except in present
//! usable RAM mapped executable (`Map` with `executable`), which has NX
//! clear and W clear: no page is both writable and executable, and a
//! present mmap page is never executable; bits 3, 4, 7, 8 (PWT, PCD, PAT,
//! G) and 52–62 are zero (bits 52–62 hold the VMM's own records only in
//! PD and PDPT entries, below); bits 5 and 6 (accessed, dirty) are the
//! CPU's and may have any value. In a not-present entry every bit not
//! named above is zero.
//!
//! ## Upper-level entries (PML4, PDPT, PD)
//!
//! Either `0` (no table below), or `P=1`, `W=1`, `U` set exactly in the
//! lower half, bits 12–51 the physical address of the next table, every other
//! bit zero except accessed (bit 5) and, in a PD entry (one naming a page
//! table), bits 52–62: the present count and the no-evictable mark below;
//! in a PDPT entry, bit 62: the no-evictable mark (bits 52–61 are zero
//! there). The CPU ignores bits 52–62 of an entry that names a table; in PD
//! and PDPT entries the VMM keeps its own records there, so that a scan of
//! the page tables can pass a page table, or a whole page directory,
//! without reading it. A table of the managed space whose 512 entries are
//! all zero must not exist: the VMM frees it and clears the entry that
//! pointed to it (or, in a PD entry, may be the one exception below).
//!
//! Bits 52–61 of a PD entry are the **present count**, the number of
//! present entries in that page table (0–512). The VMM keeps the count with
//! every entry it makes present or not present, so a scan for present pages
//! (the reclaim clock, `Evict`) passes a page table that has none without
//! reading it.
//!
//! Bit 62 of a PD entry is the **no-evictable mark**. It may be set only
//! while no entry of that page table is a page the pressure path may send
//! out: a present memory-mapped file page, clean or private (`P=1`, bits
//! 9–11 = `0b010` or `0b011`), or present writable usable RAM (`P=1`, bits
//! 9–11 = `0b001`, `W=1`). Read-only usable RAM, pinned and shared RAM
//! (writable or not) and every not-present entry may be in a marked table.
//! The reclaim clock sets the mark when its scan of the whole table found
//! no such entry; the VMM clears it whenever it writes such an entry into
//! the table (a page mapped writable, a file page loaded, a page brought
//! back from swap, a page made writable, ...). A later sweep of the clock
//! then passes a marked page table without reading it, the same way the
//! present count lets it pass a table with no present entry. The mark is
//! optional: a PD entry without it is always valid (the clock reads that
//! table).
//!
//! Bit 62 of a PDPT entry is the same **no-evictable mark**, one level up:
//! it may be set only while no page table anywhere under that page
//! directory holds such a page (the same rule, for every page table its PD
//! entries name). The reclaim clock sets it when its scan of the whole page
//! directory found no such page; every write of such a page clears the mark
//! of its PD entry and of its PDPT entry both. So a later sweep may pass a
//! marked PDPT entry's page directory without reading it or any page table
//! under it. The PD entries under a marked PDPT entry need not be marked
//! themselves (one whose page table has no present page, say): a PDPT
//! entry's mark says nothing of theirs. It is optional too: a PDPT entry
//! without it is always valid.
//!
//! The mark has no meaning, and is zero, in a PML4 entry (the kernel half's
//! PML4 entries are copied into every space's PML4, while PDPT and PD
//! tables are shared: one entry to clear, not one per space) and in a
//! whole allocate-on-write PD entry. The host checker verifies that no page
//! table a PD or PDPT entry marks holds such a page.
//!
//! ## The whole allocate-on-write PD entry
//!
//! A PD entry of the managed space (the heap region's included) may instead be
//! `P=0`, bits 1–3 = `1`, bits 12–51 the physical address of a frame, every
//! other bit zero (the level-1 allocate-on-write encoding, plus a frame).
//! All 512 pages under it are usable RAM, allocate on write, exactly as if
//! the entry named a page table of 512 allocate-on-write entries; the frame
//! is that page table's, kept for it: in use in the bitmap and counted in
//! `page_table_frames` like any table of the managed space (in the heap
//! region, in `heap_table_frames` like the heap's tables), but its bytes
//! mean nothing and are not read. When the VMM needs the page table (a page
//! under the entry touched, or some of its pages changed) it fills the
//! frame with 512 allocate-on-write entries and makes the entry a table
//! entry (present count 0), taking no frame. So both forms own the same
//! frames, a request needs the same tables whichever form the VMM chose
//! (`semantics`, step 9), and the VMM may use either form for a 2 MiB
//! region whose pages are all allocate on write. The CPU faults on any
//! access under it (P is clear) and caches nothing of a not-present
//! entry: making it a table entry needs no invalidation, but making a
//! table entry whole allocate on write does (the CPU may hold the present
//! entry in its paging-structure caches and walk on to the frame), before
//! the frame can be freed or reused. Converting a whole 2 MiB of untouched
//! space to usable RAM, and back, costs one entry instead of a table's
//! 512. Pinned pages have no such form: a `Convert → PinnedRam` of pages
//! under a whole entry makes it a table entry first (taking no frame, so
//! the needed tables are the same), then pins the 512 entries.
//!
//! ## Address spaces
//!
//! Each address space has its PML4 (`Hello::page_table_root` for space 0,
//! the `root` of `CreateSpace`'s answer for the others; CR3 holds the
//! current space's). Between requests, entries 256–511 of every space's
//! PML4 equal space 0's, bit 5 (accessed, which the CPU sets in the PML4
//! it walks) aside: one kernel half, its PDPTs shared, not copied
//! (the VMM writes a kernel PML4 entry into every live space's PML4 when
//! it makes or frees the PDPT below it). Entries 0–255 are the space's own
//! user half, under the rules above. The PML4 of a space other than 0 is
//! a table of the managed space: in use in the bitmap and counted in
//! `page_table_frames`, even while its user half is empty; it is freed
//! with its space.
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
//! a page table of the managed space (a space's PML4 included), a present page of the managed space,
//! the host (through `AllocFrames`), or a present heap page. The heap's
//! page tables are made at boot and never freed: they are boot reservations
//! (listed in `boot_reserved`).
//!
//! # The heap region (PML4 slot 384)
//!
//! Pages `heap.start..heap.start + heap_max_bytes` are allocate on write
//! (`0b0010`) or present RAM (`P=1`, `W=1`, `U=0`, bits 9–11 = `0b001`,
//! NX set). Every other level-1 entry of slot 384 is zero. A 2 MiB region
//! of heap pages all allocate on write may be one whole allocate-on-write
//! PD entry (above) over its table's frame, as the heap's untouched
//! tables are from boot: so a walk of the tables reads one entry, not 512,
//! per 2 MiB of heap never used. Its frame is one of the heap's tables
//! all the same (a boot reservation, counted in `heap_table_frames`); the
//! first use of a page under it fills the table.
//!
//! # The frame-info table
//!
//! At [`crate::Hello::frame_info`]: one little-endian `u64` per frame
//! (`total_frames` of them, frame `n` at byte `8 n`). `0` = no record;
//! a frame backing a present mmap page (clean or private) holds
//! `1 << 63 | file << 40 | page` (file in bits 40–47, page in bits 0–39).
//! A frame mapped by present shared entries holds `1 << 62 | n`: `n`
//! (bits 0–39, at least 1) the number of present shared entries in the
//! user halves of all live spaces that name the frame (its mapping count).
//! Every other bit pattern is corrupt, and so is a record on a frame that no
//! present mmap (or shared) entry maps, or a missing one on a frame that one
//! does, or a count that is not the number of shared entries naming it.
//! A present mmap clean entry has W = 0 (a write faults and makes it private
//! in place); a private one has W = 1.
//!
//! ## The sharing rule
//!
//! Between requests, over the leaf entries of every live space (each
//! space's user half, and the one kernel half once): a frame that leaf
//! entries name is named by exactly one of them, unless every entry naming
//! it is present shared; then they all have the same W bit and their
//! number is the frame's count. So anonymous RAM is never mapped twice
//! (writable or not) unless it is shared, and a file page's frame is never
//! also mapped elsewhere (nor is a table's, a host frame or a boot
//! reservation ever a data page's). A shared entry never appears in the
//! kernel half. The accessed bits of shared entries are the CPU's; the
//! pressure clock never clears them (it passes shared pages), which only
//! the guest's own tests can see.
//!
//! # The file images
//!
//! The host passes one blob as QEMU's `-initrd`: a header page, then the
//! files. Header, little endian: magic `b"VMMFILES"` (8 bytes), `u32`
//! version (1), `u32` count (at most [`crate::MAX_FILES`]), then `count`
//! records `(u64 offset, u64 pages)`: file `n` is `pages * 4096` bytes at
//! byte `offset` of the blob (`offset` page aligned, files in order, not
//! overlapping, inside the blob). Byte `o` of file `n` built from
//! `(pages, seed)` is [`crate::pattern::pattern_byte`]`(seed, o)`. The guest
//! reports each file's bytes in [`crate::Hello::files`]; the whole blob's
//! frames are boot reservations and are never written.
//!
//! # The swap store
//!
//! At [`crate::Hello::swap`] (about RAM / 8, a boot reservation), little
//! endian:
//! - a header at offset 0: magic `b"VMMSWAP1"`, `u32` unit size (128),
//!   `u32` units `U`, `u64` offset of the used-unit bitmap, `u64` offset of
//!   the pending bitmap, `u64` offset of the length table, `u64` offset of
//!   the data area (all from the store's start, page aligned);
//! - the used-unit bitmap: `U` bits, bit `u` (byte `u / 8`, LSB first) set
//!   when unit `u` of the data area is in use;
//! - the pending bitmap: `U` bits, set on the first unit of a slot freed by
//!   a swap-in during the request in progress; all zero between requests;
//! - the length table: `U` `u16`s; entry `s` is the byte length of slot
//!   `s`'s data (0: no slot starts at unit `s`);
//! - the data area: `U * 128` bytes. Swap slot `s` (the number in an on-swap
//!   entry) is the data starting at unit `s`, occupying
//!   `ceil(len / 128)` units, all marked used. `len == 4096` means the page
//!   is stored raw; a smaller `len` is an LZ4 block (the `lz4_flex::block`
//!   format, no size prefix) that decompresses to exactly 4096 bytes.
//!
//! Between requests: the slots in use are exactly the on-swap entries' slots
//! (each named once), their units are disjoint, and the used bits are
//! exactly the union of their units. `swap_bytes_used` is the sum of the
//! slots' `len`; `swap_bytes_total` is `U * 128`.
//!
//! # Coverage counters
//!
//! When the kernel is built with SanitizerCoverage (inline 8-bit counters
//! and a PC table), [`crate::Hello::coverage`] names two ranges of the
//! kernel image in physical memory:
//! - the counters: one byte per instrumented edge, counter `i` at byte `i`.
//!   Each is incremented (wrapping at 256, never saturating) whenever its
//!   edge runs. All are zero when QEMU loads the image; neither boot nor
//!   `Reset` clears them, and the guest never reads them: the reader (the
//!   host) counts what changed between two of its reads, modulo 256.
//! - the PC table: `edges` pairs of little-endian `u64` `(pc, flags)`,
//!   pair `i` for counter `i`: `pc` is the (virtual) address of the
//!   instrumented block in the kernel ELF; bit 0 of `flags` is set when the
//!   block is a function's entry. The table is never written.
//!
//! Which code is instrumented is the kernel build's choice; the ELF's debug
//! information maps a `pc` to its function and source line.
