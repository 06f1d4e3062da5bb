//! One operation of a trace: every VMM request of the protocol except
//! `Batch` (batching is a transport detail: a trace is a flat list) and
//! `Shutdown` (not a VMM operation), with named fields. Its JSON form is in
//! `op_json`.

use protocol::{AreaType, Privilege, Request};

/// Declares [`Op`] and [`OpKind`] from one list, with the conversions to and
/// from [`Request`] (whose variants have the same names and fields).
macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident $({ $($field:ident: $ty:ty),* })? = $text:literal,)*) => {
        /// An operation: a [`Request`] a trace can hold.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Op {
            $($(#[$doc])* $name $({ $($field: $ty),* })?,)*
        }

        /// The kind of an [`Op`], without its arguments.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $($name,)*
        }

        impl OpKind {
            /// Every kind, in declaration order.
            pub const ALL: [OpKind; 20] = [$(OpKind::$name,)*];
            /// The `"op"` names of a trace line, in the order of [`OpKind::ALL`].
            pub const NAMES: [&'static str; 20] = [$($text,)*];
        }

        impl Op {
            pub fn kind(&self) -> OpKind {
                match self {
                    $(Op::$name { .. } => OpKind::$name,)*
                }
            }

            /// The request this operation sends.
            pub fn to_request(&self) -> Request {
                match self.clone() {
                    $(Op::$name $({ $($field),* })? => Request::$name $({ $($field),* })?,)*
                }
            }

            /// The operation of a request; `None` for `Batch` and
            /// `Shutdown`, which a trace does not hold (record a batch's
            /// requests one by one).
            pub fn from_request(request: &Request) -> Option<Op> {
                Some(match request.clone() {
                    $(Request::$name $({ $($field),* })? => Op::$name $({ $($field),* })?,)*
                    Request::Batch(_) | Request::Shutdown => return None,
                })
            }
        }
    };
}

ops! {
    /// Handshake (answered with the guest's layout).
    Hello = "hello",
    Ping { nonce: u64 } = "ping",
    /// Makes the guest panic (kernel only).
    Panic { privilege: Privilege } = "panic",
    Map { addr: u64, pages: u64, writable: bool, contiguous: bool, privilege: Privilege } = "map",
    Unmap { addr: u64, pages: u64, privilege: Privilege } = "unmap",
    Convert { addr: u64, pages: u64, to: AreaType, privilege: Privilege } = "convert",
    Write { addr: u64, len: u64, seed: u64, privilege: Privilege } = "write",
    Read { addr: u64, len: u64, privilege: Privilege } = "read",
    Query { addr: u64, pages: u64, privilege: Privilege } = "query",
    AllocFrames { count: u64, contiguous: bool, privilege: Privilege } = "alloc_frames",
    FreeFrames { frame: u64, count: u64, privilege: Privilege } = "free_frames",
    Valloc { pages: u64, privilege: Privilege } = "valloc",
    Vfree { addr: u64, pages: u64, privilege: Privilege } = "vfree",
    Stats = "stats",
    Reset { privilege: Privilege } = "reset",
    MapFile { addr: u64, pages: u64, file: u8, file_page: u64, privilege: Privilege } = "map_file",
    Evict { addr: u64, pages: u64, privilege: Privilege } = "evict",
    /// Allocates a kernel heap block for the host (kernel only).
    Kmalloc { size: u64, align: u64, privilege: Privilege } = "kmalloc",
    Kfree { addr: u64, privilege: Privilege } = "kfree",
    HeapScavenge { privilege: Privilege } = "heap_scavenge",
}

impl OpKind {
    /// The `"op"` name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl Op {
    /// The privilege the operation is made with, if it carries one.
    pub fn privilege(&self) -> Option<Privilege> {
        self.to_request().privilege()
    }
}
