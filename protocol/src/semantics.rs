//! What every request does: the specification both the guest VMM and the
//! host's model are written from (each on its own; neither imports the
//! other). Where this text and an implementation disagree, the text is right
//! and the implementation has a bug.
//!
//! # Words
//! - *Managed space*: user space `[0, 0x0000_8000_0000_0000)` and the
//!   kernel's request space `[0xffff_c080_0000_0000, 0xffff_ff80_0000_0000)`
//!   (the guest reports both in `Hello`: `user_space`, and `kernel_space`
//!   less `heap`).
//! - *Page states* ([`crate::PageState`]): unusable; present RAM
//!   (writable or not); allocate-on-write; on swap; present mmap; not-present
//!   mmap. The *usable RAM* area type is present RAM, allocate-on-write and on
//!   swap. A page whose tables do not exist is unusable.
//! - *Needed tables*: the page-table frames (PDPT, PD, PT; never the PML4) a
//!   request must create so that every page it makes non-unusable has a
//!   level-1 entry. A table exists exactly while one of its entries is
//!   non-zero.
//!
//! # Validation (every range request)
//! In this order, the first that applies is the answer, and nothing changes:
//! 1. `pages == 0` → `ZeroCount`; `pages` above the request's limit
//!    (`Query`: [`crate::MAX_QUERY_PAGES`]) → `TooLarge`;
//! 2. `addr % 4096 != 0` → `Misaligned`;
//! 3. `addr` not canonical → `NonCanonical`;
//! 4. `addr + pages * 4096` overflows 64 bits (the product included) →
//!    `Overflow`;
//! 5. `addr` in the lower half and the end above `0x0000_8000_0000_0000` →
//!    `CrossesCanonicalHole`;
//! 6. `User` and any byte of the range at or above `0x0000_8000_0000_0000` →
//!    `PermissionDenied`;
//! 7. any byte of the range outside the managed space → `Reserved`;
//! 8. the request's state rule (below) → `InvalidState { addr }` with the
//!    lowest offending page;
//! 9. `free_frames < frames needed` (data frames + needed tables) →
//!    `OutOfMemory`.
//!
//! `Write` and `Read` check, in order: `len > MAX_TOUCH_LEN` → `TooLarge`;
//! `len == 0` → `Done` / the checksum of no bytes, with no other check; then
//! steps 3–7 over the byte range `addr..addr + len` (no alignment rule).
//!
//! Kernel-only requests (`Panic`, `AllocFrames`, `FreeFrames`, `Valloc`,
//! `Vfree`, `Reset`) made as `User` answer `PermissionDenied` before any
//! other check.
//!
//! # Requests
//! - **Map** `addr, pages, writable, contiguous`: state rule: every page
//!   unusable. Needs `pages` data frames plus needed tables. Every page
//!   becomes present RAM with `writable`, backed by a zeroed frame. With
//!   `contiguous` the data frames are one physically contiguous run; if no
//!   such run exists the answer is `OutOfMemory` even when enough frames are
//!   free in pieces (the host cannot predict fragmentation and accepts either
//!   answer when `free_frames` suffices).
//! - **Unmap** `addr, pages`: state rule: no page unusable. Every page
//!   becomes unusable: frames and swap slots are freed, tables that become
//!   empty are freed.
//! - **Convert** `to = UsableRam`: unusable → allocate-on-write;
//!   not-present mmap → allocate-on-write; present mmap → present RAM
//!   (same frame, same data, writable); usable RAM pages unchanged. No state
//!   rule; needs the tables of the pages that were unusable.
//!   `to = Unusable`: every page becomes unusable, freeing frames, swap
//!   slots and emptied tables. Needs nothing; never fails after validation.
//! - **Write** `addr, len, seed`: the guest CPU stores the pattern of `seed`
//!   ([`crate::pattern`]) at every byte of `addr..addr + len`, in ascending
//!   address order. Page by page: present and writable → stored; present
//!   read-only → stop with `Fault { reason: ReadOnly }`; allocate-on-write →
//!   a page fault allocates a zeroed frame (present RAM, writable; counted in
//!   `faults_resolved`), or, with no free frame, stop with
//!   `Fault { reason: OutOfMemory }`; unusable → stop with
//!   `Fault { reason: Unusable }`. A fault's `addr` is the first byte not
//!   stored (the start of the page, or `addr` itself in the first page);
//!   every byte before it stays written. Success answers `Done`.
//! - **Read** `addr, len`: as `Write`, loading instead of storing: read-only
//!   pages read fine, allocate-on-write pages are allocated (zero-filled) on
//!   read too. Success answers the [`crate::pattern::checksum`] of the bytes.
//! - **Query** `addr, pages`: each page's state; changes nothing.
//! - **AllocFrames** `count, contiguous`: `count == 0` → `ZeroCount`;
//!   `count > MAX_ALLOC_FRAMES` → `TooLarge`; `free_frames < count` →
//!   `OutOfMemory`; contiguous with no run → `OutOfMemory`. The frames become
//!   the host's; answered as runs.
//! - **FreeFrames** `frame, count`: `ZeroCount`, `TooLarge` (as above),
//!   `Misaligned` (`frame % 4096`), `Overflow`, `OutOfRange` (past
//!   `total_frames`), `NotOwned { frame }` (the lowest frame of the run the
//!   host does not hold). Frees the run.
//! - **Valloc** `pages`: `ZeroCount`; more pages than the region →
//!   `TooLarge`; no free run of that length → `NoVirtualSpace`. Answers the
//!   start of a free run inside `Hello::valloc`; the run is reserved until
//!   `Vfree`. Maps nothing and needs no frames.
//! - **Vfree** `addr, pages`: range validation steps 1–4, then every page
//!   must be reserved by `Valloc` (any part of one or several runs) else
//!   `InvalidState { addr }` with the lowest page that is not.
//! - **Stats**: counters ([`crate::Stats`]); `faults_resolved` counts since
//!   boot or the last `Reset`.
//! - **Reset**: every managed page unusable, every table of the managed
//!   space freed, every host frame freed, every `Valloc` run freed,
//!   `faults_resolved` zero. Afterwards `free_frames == boot_free_frames`.
//! - **Batch**: more than [`crate::MAX_BATCH`] requests → one
//!   `Error(TooLarge)` for the whole batch; otherwise one answer each, in
//!   order; a nested `Batch` answers `Error(NestedBatch)` in its place.
//! - **Panic** (kernel): the guest panics with the message
//!   `"panic requested by host"`; **Shutdown**: the guest exits through
//!   `isa-debug-exit` with [`crate::EXIT_SUCCESS`] and answers nothing.
