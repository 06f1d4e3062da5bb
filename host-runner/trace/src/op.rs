//! One operation of a trace: every VMM request of the protocol except
//! `Batch` (batching is a transport detail: a trace is a flat list) and
//! `Shutdown` (not a VMM operation), with named fields.
//!
//! Its JSON form comes from serde derive: an operation line is the
//! variant's name under `"op"` and its fields beside it,
//! `{"op":"map","addr":"0x1000","pages":1,…,"as":"user"}`, fields in the
//! order declared here (`#[serde(tag = "op")]`). Reading goes through
//! [`OpFields`], the same variants externally tagged (`{"map":{…}}`, which
//! `line` makes of a line): serde's internally tagged reader goes through an
//! untyped buffer that loses the path to a bad field (dtolnay/path-to-error#1).
//!
//! A field is one line below: its name, type, and how it is written
//! (`Hex`, `Count`, `Who`) and defaulted.

use protocol::{AreaType, Privilege, Request};
use serde::{Deserialize, Serialize};

use crate::names::{AreaName, Who};
use crate::numbers::{Count, Hex};

/// Declares [`Op`], [`OpFields`] and [`OpKind`] from one list, with the
/// conversions to and from [`Request`] (whose variants have the same names
/// and fields).
macro_rules! ops {
    ($($(#[$doc:meta])* $name:ident $({ $($(#[$attr:meta])* $field:ident: $ty:ty),* $(,)? })? = $text:literal,)*) => {
        /// An operation: a [`Request`] a trace can hold.
        #[serde_with::serde_as]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(tag = "op")]
        pub enum Op {
            $($(#[$doc])* #[serde(rename = $text)] $name $({ $($(#[$attr])* $field: $ty),* })?,)*
        }

        /// [`Op`] as serde reads it: the same variants, externally tagged.
        #[serde_with::serde_as]
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) enum OpFields {
            $(#[serde(rename = $text)] $name $({ $($(#[$attr])* $field: $ty),* })?,)*
        }

        impl From<OpFields> for Op {
            fn from(op: OpFields) -> Op {
                match op {
                    $(OpFields::$name $({ $($field),* })? => Op::$name $({ $($field),* })?,)*
                }
            }
        }

        /// The kind of an [`Op`], without its arguments.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum OpKind {
            $($name,)*
        }

        impl OpKind {
            /// How many kinds there are.
            pub const COUNT: usize = 24;
            /// Every kind, in declaration order.
            pub const ALL: [OpKind; Self::COUNT] = [$(OpKind::$name,)*];
            /// The `"op"` names of a trace line, in the order of [`OpKind::ALL`].
            pub const NAMES: [&'static str; Self::COUNT] = [$($text,)*];
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

// `"as"` is required on the memory operations, where both privileges mean
// something; on the kernel-only ones it defaults to `"kernel"`.
ops! {
    /// Handshake (answered with the guest's layout).
    Hello = "hello",
    Ping { #[serde(default)] #[serde_as(as = "Hex")] nonce: u64 } = "ping",
    /// Makes the guest panic (kernel only).
    Panic { #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege } = "panic",
    Map {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde(default = "yes")] writable: bool,
        #[serde(default, skip_serializing_if = "no")] executable: bool,
        #[serde(default)] contiguous: bool,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "map",
    Unmap {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "unmap",
    Convert {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde_as(as = "AreaName")] to: AreaType,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "convert",
    Write {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] len: u64,
        #[serde(default)] #[serde_as(as = "Hex")] seed: u64,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "write",
    Read {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] len: u64,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "read",
    Query {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "query",
    AllocFrames {
        #[serde_as(as = "Count")] count: u64,
        #[serde(default)] contiguous: bool,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "alloc_frames",
    FreeFrames {
        #[serde_as(as = "Hex")] frame: u64,
        #[serde_as(as = "Count")] count: u64,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "free_frames",
    Valloc {
        #[serde_as(as = "Count")] pages: u64,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "valloc",
    Vfree {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "vfree",
    Stats = "stats",
    Reset { #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege } = "reset",
    MapFile {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde_as(as = "Count")] file: u8,
        #[serde(default)] #[serde_as(as = "Count")] file_page: u64,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "map_file",
    Evict {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde(rename = "as")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "evict",
    /// Allocates a kernel heap block for the host (kernel only).
    Kmalloc {
        #[serde_as(as = "Count")] size: u64,
        #[serde(default = "heap_align")] #[serde_as(as = "Count")] align: u64,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "kmalloc",
    Kfree {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "kfree",
    HeapScavenge { #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege } = "heap_scavenge",
    /// Makes an address space (kernel only); answered `{"space":N}`.
    CreateSpace { #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege } = "create_space",
    /// Makes `space` current: later user addresses are its (kernel only).
    SwitchSpace {
        #[serde_as(as = "Count")] space: u16,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "switch_space",
    /// Destroys `space` and everything in its user half (kernel only).
    DestroySpace {
        #[serde_as(as = "Count")] space: u16,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "destroy_space",
    /// Shares the current space's present pages at `addr` with the
    /// unusable pages at `to` in `space` (kernel only).
    Share {
        #[serde_as(as = "Hex")] addr: u64,
        #[serde_as(as = "Count")] pages: u64,
        #[serde_as(as = "Count")] space: u16,
        #[serde_as(as = "Hex")] to: u64,
        #[serde(rename = "as", default = "kernel")] #[serde_as(as = "Who")] privilege: Privilege,
    } = "share",
}

fn kernel() -> Privilege {
    Privilege::Kernel
}

fn yes() -> bool {
    true
}

/// Whether a flag that is written only when set is clear.
fn no(flag: &bool) -> bool {
    !flag
}

/// `kmalloc`'s alignment when a line gives none.
fn heap_align() -> u64 {
    16
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
