//! The names a trace spells things with: kinds of answer, error codes, page
//! states, counters, fault reasons, privileges and area types. Each is a
//! unit enum whose serde form is its name, and a serde_with adapter for the
//! protocol type it names (`#[serde_as(as = "Who")] privilege: Privilege`).

use protocol::{AreaType, Error, ErrorKind, FaultReason, PageState, Privilege, Response, Stats};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_with::{DeserializeAs, SerializeAs};

macro_rules! names {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub const NAMES: &'static [&'static str] = &[$($text),*];
            pub fn name(self) -> &'static str { Self::NAMES[self as usize] }
        }
        /// Writes and reads the protocol type this names, by its name.
        impl<T: Copy + Into<$name>> SerializeAs<T> for $name {
            fn serialize_as<S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
                (*value).into().serialize(s)
            }
        }
        impl<'de, T: From<$name>> DeserializeAs<'de, T> for $name {
            fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
                $name::deserialize(d).map(T::from)
            }
        }
    };
}

/// Declares `From` both ways between a protocol enum and its names.
macro_rules! same_variants {
    ($names:ident <-> $protocol:ident { $($variant:ident),* }) => {
        impl From<$protocol> for $names {
            fn from(v: $protocol) -> Self {
                match v { $($protocol::$variant => $names::$variant),* }
            }
        }
        impl From<$names> for $protocol {
            fn from(v: $names) -> Self {
                match v { $($names::$variant => $protocol::$variant),* }
            }
        }
    };
}

names!(
    /// A kind of [`Response`].
    AnswerKind { Hello = "hello", Pong = "pong", Done = "done", Checksum = "checksum", Fault = "fault",
    Pages = "pages", Frames = "frames", Valloc = "valloc", Stats = "stats", Error = "error",
    BadFrame = "bad_frame", Batch = "batch", Evicted = "evicted", Kmalloc = "kmalloc",
    Scavenged = "scavenged", Reclaimed = "reclaimed", Stale = "stale", Space = "space" }
);
names!(
    /// A [`protocol::Error`] without its data.
    ErrorCode { ZeroCount = "zero_count", TooLarge = "too_large", Misaligned = "misaligned",
    NonCanonical = "non_canonical", Overflow = "overflow", CrossesCanonicalHole = "crosses_canonical_hole",
    PermissionDenied = "permission_denied", Reserved = "reserved", InvalidState = "invalid_state",
    OutOfMemory = "out_of_memory", OutOfRange = "out_of_range", NotOwned = "not_owned",
    NoVirtualSpace = "no_virtual_space", NestedBatch = "nested_batch", NoSuchFile = "no_such_file",
    BeyondFile = "beyond_file", BatchCut = "batch_cut", WriteAndExecute = "write_and_execute",
    NoSuchSpace = "no_such_space", TooManySpaces = "too_many_spaces", SpaceInUse = "space_in_use" }
);
names!(
    /// A [`PageState`] without frames and slots (which the host does not
    /// predict); `any` matches every state.
    PageKind { Any = "any", Unusable = "unusable", PresentRam = "present_ram", PresentRamRo = "present_ram_ro",
    PresentRamExec = "present_ram_exec", PresentRamWx = "present_ram_wx",
    AllocOnWrite = "alloc_on_write", OnSwap = "on_swap", PresentMmap = "present_mmap",
    NotPresentMmap = "not_present_mmap", Corrupt = "corrupt", PinnedRam = "pinned_ram",
    PinnedRamRo = "pinned_ram_ro", PinnedAllocOnWrite = "pinned_alloc_on_write", Shared = "shared",
    SharedRo = "shared_ro" }
);
names!(
    /// A counter of [`Stats`].
    StatField { TotalFrames = "total_frames", FreeFrames = "free_frames", BootFreeFrames = "boot_free_frames",
    PageTableFrames = "page_table_frames", PresentPages = "present_pages",
    AllocOnWritePages = "alloc_on_write_pages", HostFrames = "host_frames", VallocPages = "valloc_pages",
    FaultsResolved = "faults_resolved", SwapSlotsUsed = "swap_slots_used", SwapBytesUsed = "swap_bytes_used",
    SwapBytesTotal = "swap_bytes_total", HeapMaxBytes = "heap_max_bytes", HeapPages = "heap_pages",
    HeapTableFrames = "heap_table_frames", HeapBytesLive = "heap_bytes_live",
    BytesFreedSinceCheck = "bytes_freed_since_check", PagesScavenged = "pages_scavenged",
    PagesEvicted = "pages_evicted", PagesDropped = "pages_dropped" }
);
names!(
    /// A [`FaultReason`].
    FaultName { Unusable = "unusable", ReadOnly = "read_only", OutOfMemory = "out_of_memory" }
);
same_variants!(FaultName <-> FaultReason { Unusable, ReadOnly, OutOfMemory });
names!(
    /// A [`Privilege`]: an operation's `"as"`.
    Who { Kernel = "kernel", User = "user" }
);
same_variants!(Who <-> Privilege { Kernel, User });
names!(
    /// An [`AreaType`]: a `convert`'s `"to"`.
    AreaName { UsableRam = "usable_ram", Unusable = "unusable", PinnedRam = "pinned_ram" }
);
same_variants!(AreaName <-> AreaType { UsableRam, Unusable, PinnedRam });

impl StatField {
    pub fn get(self, s: &Stats) -> u64 {
        [
            s.total_frames,
            s.free_frames,
            s.boot_free_frames,
            s.page_table_frames,
            s.present_pages,
            s.alloc_on_write_pages,
            s.host_frames,
            s.valloc_pages,
            s.faults_resolved,
            s.swap_slots_used,
            s.swap_bytes_used,
            s.swap_bytes_total,
            s.heap_max_bytes,
            s.heap_pages,
            s.heap_table_frames,
            s.heap_bytes_live,
            s.bytes_freed_since_check,
            s.pages_scavenged,
            s.pages_evicted,
            s.pages_dropped,
        ][self as usize]
    }
}

same_variants!(ErrorCode <-> ErrorKind { ZeroCount, TooLarge, Misaligned, NonCanonical, Overflow,
    CrossesCanonicalHole, PermissionDenied, Reserved, InvalidState, OutOfMemory, OutOfRange, NotOwned,
    NoVirtualSpace, NestedBatch, NoSuchFile, BeyondFile, BatchCut, WriteAndExecute, NoSuchSpace,
    TooManySpaces, SpaceInUse });

impl ErrorCode {
    /// The code of `e`, and its address (`invalid_state`) or frame
    /// (`not_owned`).
    pub fn of(e: &Error) -> (ErrorCode, Option<u64>) {
        let payload = match *e {
            Error::InvalidState { addr } => Some(addr),
            Error::NotOwned { frame } => Some(frame),
            _ => None,
        };
        (e.kind().into(), payload)
    }
}

impl PageKind {
    pub fn of(s: &PageState) -> PageKind {
        match s {
            PageState::Unusable => PageKind::Unusable,
            PageState::PresentRam {
                writable: true,
                executable: true,
                ..
            } => PageKind::PresentRamWx,
            PageState::PresentRam {
                executable: true, ..
            } => PageKind::PresentRamExec,
            PageState::PresentRam { writable: true, .. } => PageKind::PresentRam,
            PageState::PresentRam {
                writable: false, ..
            } => PageKind::PresentRamRo,
            PageState::AllocOnWrite => PageKind::AllocOnWrite,
            PageState::OnSwap { .. } => PageKind::OnSwap,
            PageState::PresentMmap { .. } => PageKind::PresentMmap,
            PageState::NotPresentMmap { .. } => PageKind::NotPresentMmap,
            PageState::Corrupt { .. } => PageKind::Corrupt,
            PageState::PinnedRam { writable: true, .. } => PageKind::PinnedRam,
            PageState::PinnedRam {
                writable: false, ..
            } => PageKind::PinnedRamRo,
            PageState::PinnedAllocOnWrite => PageKind::PinnedAllocOnWrite,
            PageState::Shared { writable: true, .. } => PageKind::Shared,
            PageState::Shared {
                writable: false, ..
            } => PageKind::SharedRo,
        }
    }
}

impl FaultName {
    pub fn of(r: FaultReason) -> FaultName {
        r.into()
    }
}

impl AnswerKind {
    pub fn of(r: &Response) -> AnswerKind {
        match r {
            Response::Hello(_) => AnswerKind::Hello,
            Response::Pong { .. } => AnswerKind::Pong,
            Response::Batch(_) => AnswerKind::Batch,
            Response::Done => AnswerKind::Done,
            Response::Checksum { .. } => AnswerKind::Checksum,
            Response::Fault { .. } => AnswerKind::Fault,
            Response::Pages(_) => AnswerKind::Pages,
            Response::Frames(_) => AnswerKind::Frames,
            Response::Valloc { .. } => AnswerKind::Valloc,
            Response::Stats(_) => AnswerKind::Stats,
            Response::Error(_) => AnswerKind::Error,
            Response::BadFrame(_) => AnswerKind::BadFrame,
            Response::Evicted { .. } => AnswerKind::Evicted,
            Response::Kmalloc { .. } => AnswerKind::Kmalloc,
            Response::Scavenged { .. } => AnswerKind::Scavenged,
            Response::Reclaimed { .. } => AnswerKind::Reclaimed,
            Response::Stale { .. } => AnswerKind::Stale,
            Response::Space { .. } => AnswerKind::Space,
        }
    }
}
