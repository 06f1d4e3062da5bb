//! The vocabulary of model coverage: request kinds, page states (with their
//! area types) and answer classes, each a small ordered enum with a name.

use serde::{Deserialize, Serialize};

use protocol::{AreaType, FaultReason, Privilege, Request, Response};

/// The kind of a request, with what changes its path through the VMM
/// (convert's target area type, a contiguous allocation).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    Hello,
    Ping,
    Batch,
    Panic,
    Shutdown,
    Map,
    MapContiguous,
    Unmap,
    ConvertToUsable,
    ConvertToUnusable,
    Write,
    Read,
    Query,
    AllocFrames,
    AllocFramesContiguous,
    FreeFrames,
    Valloc,
    Vfree,
    Stats,
    Reset,
    MapFile,
    Evict,
    Kmalloc,
    Kfree,
    HeapScavenge,
    ConvertToPinned,
    CreateSpace,
    SwitchSpace,
    DestroySpace,
    Share,
}

impl RequestKind {
    pub fn of(req: &Request) -> RequestKind {
        use RequestKind as K;
        match req {
            Request::Hello => K::Hello,
            Request::Ping { .. } => K::Ping,
            Request::Batch(_) => K::Batch,
            Request::Panic { .. } => K::Panic,
            Request::Shutdown => K::Shutdown,
            Request::Map { contiguous, .. } if *contiguous => K::MapContiguous,
            Request::Map { .. } => K::Map,
            Request::Unmap { .. } => K::Unmap,
            Request::Convert { to, .. } => match to {
                AreaType::UsableRam => K::ConvertToUsable,
                AreaType::Unusable => K::ConvertToUnusable,
                AreaType::PinnedRam => K::ConvertToPinned,
            },
            Request::Write { .. } => K::Write,
            Request::Read { .. } => K::Read,
            Request::Query { .. } => K::Query,
            Request::AllocFrames { contiguous, .. } if *contiguous => K::AllocFramesContiguous,
            Request::AllocFrames { .. } => K::AllocFrames,
            Request::FreeFrames { .. } => K::FreeFrames,
            Request::Valloc { .. } => K::Valloc,
            Request::Vfree { .. } => K::Vfree,
            Request::Stats => K::Stats,
            Request::Reset { .. } => K::Reset,
            Request::MapFile { .. } => K::MapFile,
            Request::Evict { .. } => K::Evict,
            Request::Kmalloc { .. } => K::Kmalloc,
            Request::Kfree { .. } => K::Kfree,
            Request::HeapScavenge { .. } => K::HeapScavenge,
            Request::CreateSpace { .. } => K::CreateSpace,
            Request::SwitchSpace { .. } => K::SwitchSpace,
            Request::DestroySpace { .. } => K::DestroySpace,
            Request::Share { .. } => K::Share,
        }
    }

    /// The name traces use for the operation (plus the variant).
    pub fn name(self) -> &'static str {
        use RequestKind as K;
        match self {
            K::Hello => "hello",
            K::Ping => "ping",
            K::Batch => "batch",
            K::Panic => "panic",
            K::Shutdown => "shutdown",
            K::Map => "map",
            K::MapContiguous => "map contiguous",
            K::Unmap => "unmap",
            K::ConvertToUsable => "convert to usable",
            K::ConvertToUnusable => "convert to unusable",
            K::Write => "write",
            K::Read => "read",
            K::Query => "query",
            K::AllocFrames => "alloc_frames",
            K::AllocFramesContiguous => "alloc_frames contiguous",
            K::FreeFrames => "free_frames",
            K::Valloc => "valloc",
            K::Vfree => "vfree",
            K::Stats => "stats",
            K::Reset => "reset",
            K::MapFile => "map_file",
            K::Evict => "evict",
            K::Kmalloc => "kmalloc",
            K::Kfree => "kfree",
            K::HeapScavenge => "heap_scavenge",
            K::ConvertToPinned => "convert to pinned",
            K::CreateSpace => "create_space",
            K::SwitchSpace => "switch_space",
            K::DestroySpace => "destroy_space",
            K::Share => "share",
        }
    }
}

/// Who asked: user requests take other validation paths than kernel ones.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Caller {
    /// A request that names no privilege (`Stats`, `Ping`, ...).
    Any,
    Kernel,
    User,
}

impl Caller {
    pub fn of(req: &Request) -> Caller {
        match req.privilege() {
            None => Caller::Any,
            Some(Privilege::Kernel) => Caller::Kernel,
            Some(Privilege::User) => Caller::User,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Caller::Any => "-",
            Caller::Kernel => "kernel",
            Caller::User => "user",
        }
    }
}

/// The area types of the specification.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    Unusable,
    UsableRam,
    MappedFile,
    /// The kernel heap's region (its pages are usable RAM the heap owns).
    Heap,
    /// Pinned (never-swap) usable RAM.
    PinnedRam,
    /// Shared RAM: present pages whose frame other pages may map too.
    SharedRam,
}

impl Area {
    pub fn name(self) -> &'static str {
        match self {
            Area::Unusable => "unusable",
            Area::UsableRam => "usable RAM",
            Area::MappedFile => "mapped file",
            Area::Heap => "heap",
            Area::PinnedRam => "pinned RAM",
            Area::SharedRam => "shared RAM",
        }
    }
}

/// A page's state before a request, as the model knows it (the frame,
/// slot and file page left out).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StateKind {
    Unusable,
    PresentRamReadOnly,
    PresentRamWritable,
    AllocOnWrite,
    OnSwap,
    MmapClean,
    MmapPrivate,
    MmapNotPresent,
    /// A page of the heap region (the model does not follow each one's
    /// state: the kernel's own blocks are invisible).
    HeapPage,
    /// Present RAM mapped executable (read-only: W^X).
    PresentRamExecutable,
    PinnedRamReadOnly,
    PinnedRamWritable,
    PinnedAllocOnWrite,
    SharedReadOnly,
    SharedWritable,
}

impl StateKind {
    /// Every state, in order (bit `i` of a [`StateSet`] is `ALL[i]`).
    pub const ALL: [StateKind; 15] = [
        StateKind::Unusable,
        StateKind::PresentRamReadOnly,
        StateKind::PresentRamWritable,
        StateKind::AllocOnWrite,
        StateKind::OnSwap,
        StateKind::MmapClean,
        StateKind::MmapPrivate,
        StateKind::MmapNotPresent,
        StateKind::HeapPage,
        StateKind::PresentRamExecutable,
        StateKind::PinnedRamReadOnly,
        StateKind::PinnedRamWritable,
        StateKind::PinnedAllocOnWrite,
        StateKind::SharedReadOnly,
        StateKind::SharedWritable,
    ];

    pub fn area(self) -> Area {
        use StateKind as S;
        match self {
            S::Unusable => Area::Unusable,
            S::PresentRamReadOnly
            | S::PresentRamWritable
            | S::PresentRamExecutable
            | S::AllocOnWrite
            | S::OnSwap => Area::UsableRam,
            S::MmapClean | S::MmapPrivate | S::MmapNotPresent => Area::MappedFile,
            S::HeapPage => Area::Heap,
            S::PinnedRamReadOnly | S::PinnedRamWritable | S::PinnedAllocOnWrite => Area::PinnedRam,
            S::SharedReadOnly | S::SharedWritable => Area::SharedRam,
        }
    }

    pub fn name(self) -> &'static str {
        use StateKind as S;
        match self {
            S::Unusable => "unusable",
            S::PresentRamReadOnly => "present RAM read-only",
            S::PresentRamWritable => "present RAM writable",
            S::AllocOnWrite => "allocate on write",
            S::OnSwap => "on swap",
            S::MmapClean => "present mmap clean",
            S::MmapPrivate => "present mmap private",
            S::MmapNotPresent => "not-present mmap",
            S::HeapPage => "heap page",
            S::PresentRamExecutable => "present RAM executable",
            S::PinnedRamReadOnly => "pinned RAM read-only",
            S::PinnedRamWritable => "pinned RAM writable",
            S::PinnedAllocOnWrite => "pinned allocate on write",
            S::SharedReadOnly => "shared RAM read-only",
            S::SharedWritable => "shared RAM writable",
        }
    }

    fn bit(self) -> u16 {
        1 << StateKind::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }
}

/// A set of [`StateKind`]s: the states a request's pages were in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSet(u16);

impl StateSet {
    pub fn insert(&mut self, s: StateKind) {
        self.0 |= s.bit();
    }

    pub fn contains(self, s: StateKind) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = StateKind> {
        StateKind::ALL
            .into_iter()
            .filter(move |&s| self.contains(s))
    }
}

/// Why a request was refused: [`protocol::Error`] without its payload.
pub use protocol::ErrorKind as Refusal;

/// The class of an answer: done (any plain answer), a fault and its
/// reason, or a refusal and its error.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AnswerClass {
    Ok,
    FaultUnusable,
    FaultReadOnly,
    FaultOutOfMemory,
    Refused(Refusal),
    /// A frame the guest could not decode (never for the model's requests).
    BadFrame,
}

impl AnswerClass {
    /// The class of a plain answer (reclaim events split off before).
    pub fn of(r: &Response) -> AnswerClass {
        match r {
            Response::Error(e) => AnswerClass::Refused(e.kind()),
            Response::Fault { reason, .. } => match reason {
                FaultReason::Unusable => AnswerClass::FaultUnusable,
                FaultReason::ReadOnly => AnswerClass::FaultReadOnly,
                FaultReason::OutOfMemory => AnswerClass::FaultOutOfMemory,
            },
            Response::Reclaimed { response, .. } => AnswerClass::of(response),
            Response::BadFrame(_) => AnswerClass::BadFrame,
            _ => AnswerClass::Ok,
        }
    }

    pub fn name(self) -> String {
        match self {
            AnswerClass::Ok => "ok".into(),
            AnswerClass::FaultUnusable => "fault unusable".into(),
            AnswerClass::FaultReadOnly => "fault read_only".into(),
            AnswerClass::FaultOutOfMemory => "fault out_of_memory".into(),
            AnswerClass::Refused(r) => snake_case(&format!("{r:?}")),
            AnswerClass::BadFrame => "bad frame".into(),
        }
    }
}

/// `InvalidState` → `invalid_state`, as traces name errors.
fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
