//! Requests from the host to the guest.

use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Who makes a request. User requests may only name lower-half canonical
/// addresses; kernel requests may name the lower half and the kernel's
/// managed space (see [`crate::Hello`]).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Privilege {
    Kernel,
    User,
}

/// The area type a `Convert` turns a range into (the seed thread's
/// `VMM_convertPageAreaTypeTo…` functions).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AreaType {
    /// Usable RAM: pages keep their data and frames when they have them, and
    /// become allocate-on-write otherwise.
    UsableRam,
    /// Unusable: frames and swap slots are freed, entries become zero.
    Unusable,
    /// Pinned (never-swap) usable RAM: like usable RAM, but `Evict` and the
    /// pressure path's clock never send its pages out. Swapped pages come
    /// back into a frame at once (`semantics`, "Pinned RAM").
    PinnedRam,
}

/// A request. Every request is answered by exactly one [`crate::Response`].
///
/// # Validation order
/// Range requests (`Map`, `Unmap`, `Convert`, `Query`, and `Write`/`Read`
/// with their byte range) check their input in this order and answer the
/// first error that applies; state is never changed by a request that fails:
/// 1. `pages == 0` → [`crate::Error::ZeroCount`] (a zero `len` is not an error
///    for `Write`/`Read`: it succeeds and touches nothing);
///    a count above the request's limit → [`crate::Error::TooLarge`];
/// 2. address not page aligned (page requests only) → `Misaligned`;
/// 3. start address not canonical → `NonCanonical`;
/// 4. `addr + pages * 4096` (or `addr + len`) overflows 64 bits → `Overflow`;
/// 5. range leaves the canonical half it starts in → `CrossesCanonicalHole`;
/// 6. `User` privilege and any part of the range outside the lower half →
///    `PermissionDenied`;
/// 7. range not wholly inside memory the VMM manages (user space, or the
///    kernel's managed space minus the heap region) → `Reserved`;
/// 8. a page in a state the request does not apply to → `InvalidState`
///    (with the first such page);
/// 9. not enough free frames for data and page tables → `OutOfMemory`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Handshake: answered with [`crate::Response::Hello`].
    Hello,
    /// Answered with `Pong` carrying the same nonce.
    Ping { nonce: u64 },
    /// Many requests in one frame, answered by one `Batch` response with one
    /// answer per request, in order. A `Batch` inside a `Batch` is answered
    /// with `Error(NestedBatch)` in its place.
    Batch(Vec<Request>),
    /// Makes the guest panic (to test failure capture). Kernel only.
    Panic { privilege: Privilege },
    /// Shuts the guest down through `isa-debug-exit` with
    /// [`crate::EXIT_SUCCESS`]. No answer is sent.
    Shutdown,

    /// Allocates `pages` frames now and maps them present as usable RAM.
    /// Every page must be unusable (else `InvalidState`). With `contiguous`,
    /// the frames are one physically contiguous run. With `executable` the
    /// pages may be executed (their NX bit clear); every other page of the
    /// managed space is data and never executable. `writable` and
    /// `executable` together are refused (`WriteAndExecute`, W^X).
    Map {
        addr: u64,
        pages: u64,
        writable: bool,
        executable: bool,
        contiguous: bool,
        privilege: Privilege,
    },
    /// Releases the pages' frames and swap slots; entries become unusable.
    /// No page may be unusable already (else `InvalidState`).
    Unmap {
        addr: u64,
        pages: u64,
        privilege: Privilege,
    },
    /// Converts every page of the range to `to`; pages already of that type
    /// are left as they are. Never fails for a page's state.
    Convert {
        addr: u64,
        pages: u64,
        to: AreaType,
        privilege: Privilege,
    },
    /// Writes `len` bytes of the pattern of `seed` ([`crate::pattern`]) at
    /// `addr`, from the guest CPU: faults are real page faults.
    Write {
        addr: u64,
        len: u64,
        seed: u64,
        privilege: Privilege,
    },
    /// Reads `len` bytes at `addr` from the guest CPU and answers their
    /// checksum ([`crate::pattern::checksum`]).
    Read {
        addr: u64,
        len: u64,
        privilege: Privilege,
    },
    /// Answers each page's state as the guest's page tables hold it.
    Query {
        addr: u64,
        pages: u64,
        privilege: Privilege,
    },
    /// Allocates `count` frames for the host (contiguous or not). Kernel only.
    AllocFrames {
        count: u64,
        contiguous: bool,
        privilege: Privilege,
    },
    /// Frees `count` frames from `frame` (a physical address); every one must
    /// have been allocated by `AllocFrames` and not freed since. Kernel only.
    FreeFrames {
        frame: u64,
        count: u64,
        privilege: Privilege,
    },
    /// Finds `pages` free pages of kernel virtual space (the seed's "get me n
    /// free virtual pages"); maps nothing. Kernel only.
    Valloc { pages: u64, privilege: Privilege },
    /// Gives back kernel virtual space obtained from `Valloc`. Kernel only.
    Vfree {
        addr: u64,
        pages: u64,
        privilege: Privilege,
    },
    /// Counters of the VMM and the frame allocator.
    Stats,
    /// Back to the boot state: every managed page unusable, every host frame,
    /// every virtual range and every host heap block freed, the heap
    /// scavenged (at most a reclaim ring of pages: another `Reset` gives back
    /// more; `semantics`, **Reset**). Kernel only.
    Reset { privilege: Privilege },

    /// Makes `pages` unusable pages at `addr` a memory-mapped-file area over
    /// pages `file_page..file_page + pages` of file `file` (one of
    /// [`crate::Hello::files`]): every entry becomes not-present mmap; no
    /// data frame is used until a touch loads the page.
    MapFile {
        addr: u64,
        pages: u64,
        file: u8,
        file_page: u64,
        privilege: Privilege,
    },
    /// Sends the range's present pages out, in ascending order: RAM and
    /// private file pages to the swap store, clean file pages dropped
    /// (read-only and pinned RAM are left).
    /// Answered with `Evicted` (inside `Reclaimed`, which names every page).
    Evict {
        addr: u64,
        pages: u64,
        privilege: Privilege,
    },
    /// Allocates a kernel heap block of `size` bytes aligned to `align` (a
    /// power of two up to 4096) for the host. Kernel only.
    Kmalloc {
        size: u64,
        align: u64,
        privilege: Privilege,
    },
    /// Frees a heap block the host got from `Kmalloc`. Kernel only.
    Kfree { addr: u64, privilege: Privilege },
    /// Returns the frames of every wholly free present heap page. Kernel only.
    HeapScavenge { privilege: Privilege },

    /// Makes a new address space: a PML4 of its own whose user half is
    /// empty and whose kernel half is the kernel's (`semantics`, **Address
    /// spaces**). Answered with `Space`. Kernel only.
    CreateSpace { privilege: Privilege },
    /// Makes `space` the current address space (CR3): every range request,
    /// touch and fault after it acts on its user half. Kernel only.
    SwitchSpace { space: u16, privilege: Privilege },
    /// Frees every user page, swap slot and table of `space` and its PML4;
    /// the kernel half is untouched. Not space 0, not the current space.
    /// Kernel only.
    DestroySpace { space: u16, privilege: Privilege },
    /// Shared memory: makes the `pages` unusable pages at `to` in space
    /// `space` map the frames of the current space's present pages at
    /// `addr`, page for page, with the same writability; both become
    /// present shared RAM (`semantics`, **Shared memory**). User-half
    /// ranges only; `space` may be the current space. Kernel only.
    Share {
        addr: u64,
        pages: u64,
        space: u16,
        to: u64,
        privilege: Privilege,
    },
}

impl Request {
    /// A writable, not executable, not contiguous `Map` of `pages` pages
    /// at `addr`: the mapping most callers mean.
    pub fn map_writable(addr: u64, pages: u64, privilege: Privilege) -> Request {
        Request::Map {
            addr,
            pages,
            writable: true,
            executable: false,
            contiguous: false,
            privilege,
        }
    }

    /// The privilege the request is made with, for requests that carry one.
    pub fn privilege(&self) -> Option<Privilege> {
        match self {
            Request::Panic { privilege }
            | Request::Map { privilege, .. }
            | Request::Unmap { privilege, .. }
            | Request::Convert { privilege, .. }
            | Request::Write { privilege, .. }
            | Request::Read { privilege, .. }
            | Request::Query { privilege, .. }
            | Request::AllocFrames { privilege, .. }
            | Request::FreeFrames { privilege, .. }
            | Request::Valloc { privilege, .. }
            | Request::Vfree { privilege, .. }
            | Request::Reset { privilege }
            | Request::MapFile { privilege, .. }
            | Request::Evict { privilege, .. }
            | Request::Kmalloc { privilege, .. }
            | Request::Kfree { privilege, .. }
            | Request::HeapScavenge { privilege }
            | Request::CreateSpace { privilege }
            | Request::SwitchSpace { privilege, .. }
            | Request::DestroySpace { privilege, .. }
            | Request::Share { privilege, .. } => Some(*privilege),
            Request::Hello
            | Request::Ping { .. }
            | Request::Batch(_)
            | Request::Shutdown
            | Request::Stats => None,
        }
    }
}
