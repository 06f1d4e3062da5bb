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
//!   (writable, read-only, or executable and read-only); allocate-on-write;
//!   on swap; present mmap; not-present mmap; pinned present RAM (writable
//!   or not, never executable); pinned allocate-on-write; present shared
//!   RAM (writable or not, never executable).
//!   The *usable RAM* area type is present RAM, allocate-on-write and on
//!   swap; the *pinned RAM* area type (never swapped) is pinned present RAM
//!   and pinned allocate-on-write; present shared RAM is usable RAM whose
//!   frame other pages may map too (user half only, never swapped;
//!   *Shared memory*), a state `Share` makes, not an area type `Convert`
//!   names. A page whose tables do not exist is unusable.
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
//!    `OutOfMemory`. A request that needs no frame (a `Convert` to usable
//!    RAM or unusable, or a `MapFile`, whose tables all exist) never fails
//!    here; a `Convert → PinnedRam` also needs a frame for each page of its
//!    range on swap (*Pinned RAM*).
//!
//! `Write` and `Read` check, in order: `len > MAX_TOUCH_LEN` → `TooLarge`;
//! `len == 0` → `Done` / the checksum of no bytes, with no other check; then
//! steps 3–7 over the byte range `addr..addr + len` (no alignment rule).
//!
//! `Map` with both `writable` and `executable` answers `WriteAndExecute`
//! before any other check (W^X: no page is ever writable and executable).
//!
//! Kernel-only requests (`Panic`, `AllocFrames`, `FreeFrames`, `Valloc`,
//! `Vfree`, `Reset`, `Kmalloc`, `Kfree`, `HeapScavenge`, `CreateSpace`,
//! `SwitchSpace`, `DestroySpace`, `Share`) made as `User` answer
//! `PermissionDenied` before any other check.
//!
//! Step 9 in version 2: "free frames" means the free frames after the guest
//! reclaimed what it could (see *Memory pressure*): the guest answers
//! `OutOfMemory` only when reclaiming cannot free enough. The host applies
//! the answer's reclaim events first; then the request succeeds exactly when
//! the free frames (after the events) cover what it needs.
//!
//! # Requests
//! - **Map** `addr, pages, writable, executable, contiguous`: state rule:
//!   every page unusable. Needs `pages` data frames plus needed tables.
//!   Every page becomes present RAM with `writable` and `executable`, backed
//!   by a zeroed frame. `executable` is the only way a page of the managed
//!   space becomes executable: every page any other request or fault makes
//!   present (allocate-on-write, swap-in, file load, convert, the heap) is
//!   data, never executable. An executable page is read-only, so it is
//!   never evicted, and it stays executable until it is unmapped. With
//!   `contiguous` the data frames are one physically contiguous run; if no
//!   such run exists the answer is `OutOfMemory` even when enough frames are
//!   free in pieces (the host cannot predict fragmentation and accepts either
//!   answer when `free_frames` suffices).
//! - **Unmap** `addr, pages`: state rule: no page unusable. Every page
//!   becomes unusable: frames and swap slots are freed (a shared page's
//!   frame only with its last mapping, *Shared memory*), tables that become
//!   empty are freed.
//! - **Convert** `to = UsableRam`: unusable → allocate-on-write;
//!   not-present mmap → allocate-on-write; present mmap → present RAM
//!   (same frame, same data, writable); usable RAM pages unchanged; pinned
//!   RAM unpinned in place (pinned present → present RAM, same frame and
//!   writability; pinned allocate-on-write → allocate-on-write). No state
//!   rule; needs the tables of the pages that were unusable.
//!   `to = Unusable`: every page becomes unusable, freeing frames (a shared
//!   page's with its last mapping), swap slots and emptied tables. Needs nothing; never fails after validation.
//!   `to = PinnedRam`: see *Pinned RAM*; needs the tables of the pages that
//!   were unusable plus one frame per page on swap.
//! - **MapFile** `addr, pages, file, file_page`: steps 1–7, then
//!   `file >= files.len()` → `NoSuchFile`; `file_page + pages` (overflow
//!   included) above the file's `pages` → `BeyondFile`; then the state rule:
//!   every page unusable; then needed tables (step 9). Page `i` becomes
//!   not-present mmap of `(file, file_page + i)`. No data frame is used.
//! - **Evict** `addr, pages`: steps 1–7; no state rule; needs nothing. In
//!   ascending address order: present *writable* RAM → swapped (on swap,
//!   slot freshly allocated, frame freed); present private mmap → swapped
//!   (it is anonymous memory now: on swap it is usable RAM, and comes back as
//!   present RAM); present clean mmap → dropped (not-present mmap, same file
//!   and page, frame freed); every other state (read-only present RAM
//!   included: the on-swap entry has no room for writability; pinned RAM,
//!   present or not, too: that is what pinning means) is left. The
//!   walk stops at the first page whose compressed data does not fit in the
//!   swap store, or when the reclaim ring is full: that page and every later
//!   one are left. The answer is `Reclaimed { events, Evicted { swapped,
//!   dropped } }` with one event per page changed, in address order (a
//!   plain `Evicted { swapped: 0, dropped: 0 }` when no page changed, as
//!   `HeapScavenge` answers).
//! - **Kmalloc** `size, align` (kernel): `size == 0` → `ZeroCount`; `align`
//!   not a power of two → `Misaligned`; `align > MAX_KMALLOC_ALIGN` →
//!   `TooLarge`; no free run of the host's part of the heap fits →
//!   `OutOfMemory`. Answers `Kmalloc { addr }`, `addr % max(align, 16) ==
//!   0`. The block is `addr..addr + size'` where `size'` is `size` rounded
//!   up to a multiple of [`crate::KMALLOC_GRANULE`] (16): the heap hands
//!   out whole granules, so the bytes up to `size'` are the block's too
//!   (touchable, counted as live and, once freed, as freed). It lies inside
//!   the host's part of the heap, from `heap.start + host_heap_offset`
//!   ([`crate::host_heap_offset`]: the upper half) to `heap.start +
//!   heap_max_bytes`, and overlaps no live block (the kernel's own included). The lower half is
//!   the kernel's (see *The kernel's reserve*): however the host allocates,
//!   its blocks never take more than `heap_max_bytes - host_heap_offset`
//!   bytes. Uses no frame: the block's pages are allocate-on-write until
//!   touched, and a touch takes its frame as a request does (see *Memory
//!   pressure*).
//! - **Kfree** `addr` (kernel): `InvalidState { addr }` unless `addr` is the
//!   address of a live block the host got from `Kmalloc`; frees it (adds its
//!   size, rounded up as above, to `bytes_freed_since_check`). Frees no frame by itself.
//! - **HeapScavenge** (kernel): every present heap page that no live block
//!   overlaps loses its frame (allocate-on-write again), one
//!   `Reclaim::Scavenged` event each (up to the ring's capacity; a scan cut
//!   short by a full ring keeps `bytes_freed_since_check`, a complete one
//!   sets it to 0). Answers `Reclaimed { events, Scavenged { pages } }`, or
//!   plain `Scavenged { pages: 0 }` when nothing was freed.
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
//!   Version 2 adds, page by page: on swap → a fault takes a frame, the
//!   page's data comes back from its slot (present RAM, writable; the slot is
//!   freed when the request's answer is built, see *Reclaim events*);
//!   not-present mmap → a fault takes a frame and copies the file page into
//!   it, present mmap *private* (writable); present mmap clean → a fault
//!   makes it private in place (same frame, no frame taken; not counted in
//!   `faults_resolved`). The file's image never changes. With no frame left
//!   after reclaim: `Fault { reason: OutOfMemory }`. Pinned RAM as usable
//!   RAM, staying pinned: pinned allocate-on-write → a fault allocates a
//!   zeroed frame (pinned present RAM, writable; counted in
//!   `faults_resolved`); pinned present writable → stored; pinned present
//!   read-only → `Fault { reason: ReadOnly }`.
//!   Kernel `Write`s may also name bytes in the heap region, if all of them
//!   lie in one live block the host got from `Kmalloc` (else `Reserved`, as
//!   any other heap byte).
//! - **Read** `addr, len`: as `Write`, loading instead of storing: read-only
//!   pages read fine, allocate-on-write pages are allocated (zero-filled) on
//!   read too, swapped pages come back as on a write, a not-present mmap
//!   page is loaded *clean* (present mmap, not private), a pinned
//!   allocate-on-write page becomes pinned present RAM. Success answers the
//!   [`crate::pattern::checksum`] of the bytes. The same heap rule applies.
//! - **Query** `addr, pages`: each page's state; changes nothing.
//! - **AllocFrames** `count, contiguous`: `count == 0` → `ZeroCount`;
//!   `count > MAX_ALLOC_FRAMES` → `TooLarge`; `free_frames < count` after
//!   reclaim (as step 9) → `OutOfMemory`; contiguous with no run → `OutOfMemory`. The frames become
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
//!   boot or the last `Reset`, faults of the managed space only (a heap
//!   page's fault, the kernel's own or in a host block, is not counted: the
//!   kernel's are not predictable).
//! - **Reset**: every managed page unusable, every table of the managed
//!   space freed, every host frame freed, every `Valloc` run freed, every
//!   host heap block freed, then the heap scavenged as by `HeapScavenge`
//!   (so it holds the pages of the kernel's live blocks, as after boot: a
//!   sequence after a reset gets the frames, and the swap slots, it gets
//!   after a fresh boot; but like `HeapScavenge` it gives back at most
//!   [`crate::RECLAIM_RING`] pages (rule 5 of "Reclaim events"), so after a
//!   `Reset` whose events fill the ring free heap pages may stay present;
//!   and its answer, built after the scavenge, holds its events in the
//!   heap, so many events take heap pages a boot has not: the boot state
//!   takes one `Reset` more, or several, until one gives back few), then
//!   `faults_resolved`, `pages_scavenged`, `pages_evicted` and
//!   `pages_dropped` zero. Answers `Done`, inside `Reclaimed` with one
//!   `Scavenged` event per heap page given back; these are the only events
//!   of a `Reset` answer, and they happen *after* the reset (the host
//!   applies them after it, unlike other requests' events: see rule 2).
//!   Afterwards `swap_slots_used == 0` and `free_frames + heap_pages ==
//!   boot_free_frames` (the kernel's own heap blocks stay).
//! - **Batch**: more than [`crate::MAX_BATCH`] requests, the elements of
//!   nested batches counted too ([`crate::scan::batch_elements`]) → one
//!   `Error(TooLarge)` for the whole batch, refused before it is decoded
//!   ([`crate::scan`]); otherwise one answer each, in order; a nested
//!   `Batch` answers `Error(NestedBatch)` in its place. A frame nesting
//!   batches deeper than [`crate::scan::MAX_BATCH_DEPTH`], or with bytes
//!   after its request, answers `BadFrame(Decode)`.
//!   The answer must fit in one frame and in the kernel's reserve, so
//!   before executing element `i` the guest adds the encoded size of the
//!   answers to elements `0..i` ([`crate::budget::encoded_len`]) and
//!   element `i`'s largest possible answer
//!   ([`crate::budget::max_answer_bytes`]), and likewise their kernel
//!   memory ([`crate::budget::answer_memory`],
//!   [`crate::budget::max_answer_memory`]); when either sum exceeds its
//!   budget ([`crate::budget::ANSWER_BUDGET`],
//!   [`crate::budget::ANSWER_MEMORY_BUDGET`]) it executes nothing more and
//!   the answer holds the `i` answers followed by one `Error(BatchCut)`
//!   ([`crate::budget::Used::fits`]). The first element is never cut. The
//!   host checks the cut with the same functions, and sends the elements
//!   from `i` on again.
//! - **Panic** (kernel): the guest panics with the message
//!   `"panic requested by host"`; **Shutdown**: the guest exits through
//!   `isa-debug-exit` with [`crate::EXIT_SUCCESS`] and answers nothing.
//!
//! # Convert, and every other transition (version 2)
//!
//! The seed's two functions plus the requests of version 2, one row per
//! page state. "–" means the page is left as it is.
//!
//! | state | Convert → UsableRam | Convert → Unusable | MapFile | Evict | read touch | write touch |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | unusable | allocate-on-write (+ tables) | – | not-present mmap | – | Fault Unusable | Fault Unusable |
//! | present RAM, writable | – | unusable, frame freed | InvalidState | on swap, frame freed | read | stored |
//! | present RAM, read-only (executable or not) | – | unusable, frame freed | InvalidState | – | read | Fault ReadOnly |
//! | allocate-on-write | – | unusable | InvalidState | – | zeroed frame → present RAM | same |
//! | on swap | – | unusable, slot freed | InvalidState | – | frame, data back → present RAM | same |
//! | present mmap, clean | present RAM, writable (same frame and data) | unusable, frame freed | InvalidState | not-present mmap, frame freed (dropped) | read | private in place |
//! | present mmap, private | present RAM, writable (same frame and data) | unusable, frame freed | InvalidState | on swap (usable RAM now), frame freed | read | stored |
//! | not-present mmap | allocate-on-write (the file data is not loaded) | unusable | InvalidState | – | file page copied → present mmap clean | copied → present mmap private |
//! | pinned present RAM, writable | present RAM, writable (same frame) | unusable, frame freed | InvalidState | – | read | stored |
//! | pinned present RAM, read-only | present RAM, read-only (same frame) | unusable, frame freed | InvalidState | – | read | Fault ReadOnly |
//! | pinned allocate-on-write | allocate-on-write | unusable | InvalidState | – | zeroed frame → pinned present RAM, writable | same |
//! | present shared, writable | – | unusable, count − 1 (frame freed at 0) | InvalidState | – | read | stored (every mapping sees it) |
//! | present shared, read-only | – | unusable, count − 1 (frame freed at 0) | InvalidState | – | read | Fault ReadOnly |
//!
//! `Convert → PinnedRam`, one row per state:
//!
//! | state | Convert → PinnedRam |
//! | --- | --- |
//! | unusable | pinned allocate-on-write (+ tables) |
//! | present RAM, not executable | pinned present RAM (same frame, data and writability) |
//! | present RAM, executable | – (code stays code: it is read-only, so never sent out anyway, and pinned RAM is data) |
//! | allocate-on-write | pinned allocate-on-write |
//! | on swap | pinned present RAM, writable: a frame is taken (counted in step 9), the data comes back from the slot now, the slot freed when the answer is built (no fault: not counted in `faults_resolved`) |
//! | present mmap, clean or private | pinned present RAM, writable (same frame and data, as `→ UsableRam`) |
//! | not-present mmap | pinned allocate-on-write (the file data is not loaded) |
//! | pinned present RAM, pinned allocate-on-write | – |
//! | present shared | – (never sent out already) |
//!
//! Usable RAM, pinned RAM or unusable → mmap is `MapFile` on unusable pages
//! only (and `Map` likewise: a pinned page answers `InvalidState`): making
//! a page that holds data an mmap page would drop that data silently, so it
//! takes a `Convert → Unusable` first. Convert never fails for a page's
//! state.
//!
//! # Address spaces
//! The guest has up to `Hello::max_spaces` address spaces, numbered
//! `0..max_spaces`. Space 0 is the kernel's: it exists from boot, its PML4
//! is `Hello::page_table_root`, and it is never destroyed. Exactly one
//! space is *current* (the one in CR3): space 0 at boot and after `Reset`.
//! - Every space has a user half of its own; they all share one kernel
//!   half. A request, touch or fault at a user address acts on the
//!   current space's page; at a kernel address, on the one kernel page,
//!   whatever space is current. So a page is named by its address and, in
//!   the user half, by the space that was current.
//! - **CreateSpace** (kernel): every number `1..max_spaces` in use →
//!   `TooManySpaces`; then step 9 with one frame (the new PML4, with the
//!   reserve of *Memory pressure*) → `OutOfMemory`. The new space takes
//!   the lowest unused number; its user half is empty, its kernel half is
//!   the kernel's. Answers `Space { space, root }`, `root` the physical
//!   address of its PML4. The current space does not change.
//! - **SwitchSpace** `space` (kernel): `space` does not exist →
//!   `NoSuchSpace`. Makes it current (switching to the current space is
//!   allowed and changes nothing). Answers `Done`; no page changes, and no
//!   translation of the previous space's user half survives it (see
//!   *Stale translations*).
//! - **DestroySpace** `space` (kernel): `space` does not exist →
//!   `NoSuchSpace`; space 0 or the current space → `SpaceInUse`. Every user
//!   page of the space becomes unusable as `Unmap` would make it (frames,
//!   swap slots and frame-info records freed, a shared frame only with its
//!   last mapping; no reclaim event), and its
//!   tables and PML4 are freed. Needs nothing; never fails after those
//!   checks. Answers `Done`.
//! - `Reset` destroys every space but 0 and makes space 0 current first.
//!   A destroyed space's shared pages leave their frames as `Unmap` would
//!   (*Shared memory*).
//! - Pressure: the clock (*Memory pressure*) sweeps the current space's
//!   user half and the kernel space, in linear address order from its one
//!   hand (kept across switches); it never reclaims a page of a space that
//!   is not current. `Evict` acts on the current space.
//! - Stats: `present_pages` counts the data frames of every space (a
//!   shared frame once, *Shared memory*), `alloc_on_write_pages` and
//!   `swap_slots_used` the pages of every space; `page_table_frames` counts every
//!   space's tables and the PML4 of every space but 0.
//!
//! # Shared memory
//! A *shared* page is a present page whose frame other pages (of the same
//! space or of others) may map too. Every page mapping one shared frame is
//! present shared RAM with the same writability; the frame's *mapping
//! count* is the number of present shared pages, in all live spaces,
//! that map it (kept in the frame-info table, `formats`). The data is the
//! frame's: a `Write` through one mapping is what a `Read` through any
//! other returns.
//! - **Share** `addr, pages, space, to` (kernel): in this order, the first
//!   that applies is the answer, and nothing changes:
//!   1. `User` → `PermissionDenied`;
//!   2. validation steps 1–5 over `addr, pages`, then over `to, pages`;
//!   3. any byte of either range at or above `0x0000_8000_0000_0000` →
//!      `Reserved` (shared memory is user memory: the kernel half is one
//!      for every space already);
//!   4. `space` does not exist → `NoSuchSpace`;
//!   5. the source state rule, over the current space's pages at `addr`:
//!      every page present RAM that is not executable (writable or not),
//!      or present shared RAM → else `InvalidState` with the lowest
//!      offending source page;
//!   6. the target state rule, over space `space`'s pages at `to`: every
//!      page unusable → else `InvalidState` with the lowest offending
//!      target page (so ranges that overlap in one space fail here);
//!   7. a guest without a frame-info table (`Hello::frame_info` empty:
//!      no room for the VMM's metadata, which never happens from
//!      [`crate::MIN_RAM_MIB`] up) has nowhere to count mappings →
//!      `OutOfMemory`, reclaiming nothing; then step 9 with the needed
//!      tables of the target range in `space` (the reserve of *Memory
//!      pressure* included; the clock reclaims as for any request, never a
//!      page of the source range) → `OutOfMemory`. `Share` has no page
//!      limit of its own (step 1 answers no `TooLarge`).
//!
//!   Source pages are present RAM only: pinned present RAM and present
//!   mmap pages (clean or private) answer `InvalidState`, like executable
//!   RAM (a pinned page cannot be shared, though a shared page stays
//!   shared through `Convert → PinnedRam`).
//!
//!   Then, page by page: source page `addr + i*4096` becomes (or stays)
//!   present shared RAM with its frame, data and writability; target page
//!   `to + i*4096` of `space` becomes present shared RAM mapping the same
//!   frame with the same writability; the frame's mapping count becomes
//!   one more than its number of shared mappings before (a present RAM page
//!   shared for the first time counts itself: 2 after). No frame is
//!   taken or freed, and `present_pages` does not change. Answers `Done`.
//!   `space` may be the current space (two ranges of one space share).
//! - A shared page behaves as present RAM of its writability for every
//!   touch (a write to a read-only one faults `ReadOnly`), for every space
//!   that maps it. `Map` and `MapFile` answer `InvalidState` for it (it is
//!   not unusable).
//! - `Unmap`, `Convert → Unusable`, `DestroySpace` and `Reset` make a shared
//!   page unusable: the mapping count of its frame goes down by one, and
//!   the frame is freed (with its frame-info record) when the count reaches
//!   zero, by whichever mapping goes last. A page whose frame's count is 1
//!   stays shared RAM (it does not become plain present RAM again).
//! - `Convert → UsableRam` and `Convert → PinnedRam` leave a shared page as
//!   it is (it is usable RAM, and never sent out already).
//! - `Evict` and the pressure clock never send a shared page out: they pass
//!   it as they pass pinned RAM (no second chance given, accessed bits
//!   left). No reclaim event ever names one.
//! - `present_pages` counts data frames: a shared frame counts once,
//!   however many pages map it (so `free_frames + page_table_frames +
//!   present_pages + host_frames + heap_pages == boot_free_frames` holds).
//! - No invalidation is needed by `Share` (the source pages keep their
//!   frame and rights; the target pages were not present). Unmapping a
//!   shared page invalidates its translation in the current space as any
//!   other page; another space's translations are dropped by the CR3 write
//!   of the switch to it (*Stale translations*).
//!
//! # Pinned RAM
//! Pinned (never-swap) RAM is an area type of its own that behaves as
//! usable RAM, except that neither `Evict` nor the pressure path ever
//! sends its pages out: the clock passes them as it passes
//! read-only present RAM (no second chance given, their accessed bits left
//! as they are), and no reclaim event ever names one. Everything else is as
//! for usable RAM: pinned present pages count in `present_pages`, pinned
//! allocate-on-write pages in `alloc_on_write_pages`, a touch of a pinned
//! allocate-on-write page is a fault counted in `faults_resolved`, and
//! `Unmap`, `Convert → Unusable` and `Reset` free them as any other page.
//! `Convert → PinnedRam` needs `t + s` frames, `t` the needed tables and `s`
//! the pages of its range on swap (step 9, with the reserve of *Memory
//! pressure*: it reclaims, never a page of its own range, before it changes
//! anything, and fails with `OutOfMemory` if it cannot); the swapped pages
//! come back in ascending address order, each slot freed when the answer is
//! built (as a swap-in's, see *Reclaim events*).
//!
//! # Stale translations
//! The CPU may cache the translation of any page a `Write` or `Read` touched
//! (since boot or the last `Reset`) until the VMM invalidates it. The
//! touched pages are kept by address, for every space together. Before a
//! `SwitchSpace` or a `DestroySpace` the guest reads one byte of each
//! touched user page present in the current space (so the CPU holds their
//! translations); after it, one byte of every touched user page not
//! present in the (new) current space: each read must fault (a
//! translation of the previous space survived the switch otherwise, or the
//! destroy changed the current space's pages). Before an
//! `Unmap`, a `Convert`, an `Evict` or a `Reset` runs, the guest reads one
//! byte of each such page of the request's range that is present (every
//! touched page for `Reset`, and for `Reset` also of every touched page
//! that is not present: each such read must fault, since the reset will
//! drop every translation and hide one an earlier request failed to
//! invalidate), and of the first and last page of the range
//! when present, which join the touched pages: so the CPU holds their
//! translations when the VMM changes their entries, however long ago they
//! were touched (a TLB drops entries as it pleases). After answering such a
//! request, and after any answer with reclaim events, the guest reads one
//! byte of every touched page the request (or its reclaims) left not
//! present, without resolving the fault: each read must fault. The reads
//! before and after are bounded (at most 128 loads and 1,024 page walks
//! each, the highest pages first) and change nothing but accessed bits. One that does not shows a stale TLB entry,
//! and the answer becomes `Stale { addr, response }` with the lowest such
//! page (a VMM bug the host reports as a broken invariant). The reads change
//! nothing: a fault from them never reaches the VMM. The guest may read
//! more pages than these (it keeps the touched pages as ranges, merged when
//! too many): a read of a not-present page faults anyway.
//!
//! # Reclaim events
//! Which page the guest evicts, drops or scavenges is its own choice, so it
//! reports each one as a [`crate::Reclaim`]: the VMM records every reclaim
//! in a ring of [`crate::RECLAIM_RING`] entries (no allocation), and every
//! answer built while the ring holds events comes as
//! `Reclaimed { events, response }` (inside a `Batch`, per element; the
//! `Batch` answer itself is never wrapped). Rules the host may rely on:
//! 1. Every reclaim is reported exactly once, in the first answer built after
//!    it, in the order they happened (reclaims between two requests, e.g.
//!    while the kernel's own heap grows, go to the next answer).
//! 2. No reclaim changes a page of the range of the request being answered
//!    (its page range, or the pages of its touch range), except `Evict`'s
//!    own events; and a swap slot freed by a swap-in stays allocated until
//!    the answer is built. So the host may apply an answer's events *before*
//!    the request itself, then predict the request as usual; except a
//!    `Reset`'s, which come from its own scavenge of the heap, after it.
//! 3. Each event freed exactly one frame; `Swapped` also took its slot.
//! 4. The guest reclaims only when it needs a frame and none is free (or for
//!    `Evict` / `HeapScavenge`, and the heap scavenge of `Reset`).
//! 5. With the ring full, nothing more is reclaimed until the answer is
//!    built: the request may fail with `OutOfMemory`.
//!
//! # Memory pressure
//! Every frame the VMM takes (data, tables, heap pages, swap-in) comes from
//! one path; when the allocator is empty it tries, in order, until a frame
//! is free: (1) heap scavenge, when `bytes_freed_since_check > 0` or the
//! previous scan was cut short (as `HeapScavenge`, except that the lowest
//! 8 wholly free present heap pages are kept, for the kernel's own
//! allocations while it builds an answer); (2) drop one clean
//! present file page; (3) evict one present writable RAM page (not
//! pinned, not shared) or private mmap page to swap; else `OutOfMemory`. Steps 2–3 pick by a clock over the
//! current space's user half and the kernel space (second chance on the
//! accessed bit, one hand kept across requests and switches; pages of the
//! request's range are skipped). Read-only present
//! RAM, pinned RAM, shared RAM and heap pages are never evicted. A guest with a heap keeps
//! `reserve = `[`crate::heap_reserve_frames`]`(heap_max_bytes)` frames for
//! the kernel's own heap blocks alone: a frame for anything else (data,
//! tables, swap-in, file load, and the fault of a page of a *host* heap
//! block) is taken only while more than `reserve` are free (reclaiming
//! otherwise), and a request needing `n > 0` frames needs `n + reserve`
//! free (the bound of step 9 grows by the same); only the kernel's own
//! allocations (decoding a request, building an answer) take the last
//! ones. So requests run out of memory before the kernel does. A request
//! that needs no frame needs nothing of the reserve either: it neither
//! reclaims nor answers `OutOfMemory`, however few frames the kernel's
//! heap left free. Requests that need several frames (`Map`, `MapFile`,
//! `Convert`, `Share`) reclaim until enough are free before they change anything,
//! and fail with `OutOfMemory` (state unchanged apart from the reported
//! events, and the clock's own records in the entries: accessed bits
//! cleared, PD and PDPT entries' no-evictable marks set, `formats`) if they cannot; one that needs more than `free_frames +
//! present_pages + heap_pages` fails at once, reclaiming nothing
//! (`present_pages` of every space: a request that needs less may still
//! reclaim what the current space and the kernel space hold, then fail).
//!
//! # The kernel heap
//! `heap.start..heap.start + heap_max_bytes` (`heap_max_bytes` = RAM / 4,
//! whole pages, bounded by the heap region) is allocate-on-write from boot;
//! its tables exist from boot (`heap_table_frames`), are never freed and
//! are listed in `boot_reserved`.
//! The heap is also the kernel's own `#[global_allocator]`: the kernel's
//! blocks take frames and live bytes the host does not predict (reported in
//! `heap_pages`, `heap_bytes_live`). Heap pages are never swapped; only
//! wholly free ones are scavenged. The host's blocks are host memory: touch
//! them with `Write`/`Read`; they never move or overlap another live block.
//!
//! # The kernel's reserve
//! No request, and no sequence of requests, may leave the kernel unable to
//! decode the next request and build its answer: whatever the host asked
//! before (every frame, heap byte, swap slot and `Valloc` page taken, the
//! reclaim ring full), the next request gets its right answer. Four rules
//! hold it:
//! 1. *Heap room.* Host blocks lie in the upper half of the heap only
//!    (*Kmalloc*); the kernel's blocks are first fit from the heap's start,
//!    so the lower half is always theirs.
//! 2. *Frames.* Requests, host blocks' touches included, leave
//!    `heap_reserve_frames(heap_max_bytes)` frames free for the kernel's
//!    blocks (*Memory pressure*); heap pages are never evicted, and the
//!    pressure path keeps a few wholly free heap pages committed.
//! 3. *Bounded need.* One request frame makes the kernel allocate at most
//!    [`crate::budget::KERNEL_REQUEST_MEMORY`] bytes of heap: the decoded
//!    requests (a `Batch` of at most [`crate::MAX_BATCH`]) and an answer
//!    within [`crate::budget::ANSWER_MEMORY_BUDGET`] (the memory cut of
//!    *Batch*); all of it is freed once the answer is sent. The reserve
//!    ([`crate::HEAP_RESERVE_FRAMES`] frames) and the kernel's half of the
//!    heap cover it on any guest of at least 8 MiB.
//! 4. *No leak.* Once an answer is sent, the kernel's own live heap bytes
//!    are what they were before the request (`heap_bytes_live` less the
//!    host's live blocks is the same before and after any request).
//!
//! # Stats in version 2
//! Determined by the history (the host predicts them exactly):
//! `total_frames`, `boot_free_frames`, `page_table_frames`, `present_pages`
//! (the managed space only), `alloc_on_write_pages`, `host_frames`,
//! `valloc_pages`, `faults_resolved`, `swap_slots_used` (pages on swap; heap
//! pages are in neither `present_pages` nor `alloc_on_write_pages`),
//! `swap_bytes_total`, `heap_max_bytes`, `heap_table_frames`, and the event
//! counts `pages_scavenged`, `pages_evicted`, `pages_dropped`. The guest's
//! own (checked against guest memory, not predicted): `swap_bytes_used`,
//! `heap_pages`, `heap_bytes_live`, `bytes_freed_since_check`. Always:
//! `free_frames + page_table_frames + present_pages + host_frames +
//! heap_pages == boot_free_frames`.
