//! The trace file: JSON Lines, a header line then one operation per line
//! (the format is documented in `testcases/README.md`). Each line is
//! written and read by serde derive (`line` reads one); this module holds
//! the types, and its submodules the file around them: `read` (lines,
//! comments, encoding), `write` and `edit` (operations removed or
//! inserted with batches and references kept right).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_with::{serde_as, skip_serializing_none};

use crate::expect::Expect;
use crate::failure::Failure;
pub use crate::files::FileSpec;
use crate::numbers::{Count, Hex};
use crate::op::Op;
use crate::refs::Ref;

/// The `"format"` of a trace header.
pub const FORMAT_NAME: &str = "vmmfuzz-trace";
/// The version this crate writes.
pub const FORMAT_VERSION: u32 = 9;
/// The versions this crate reads: version 1 is version 2 without the
/// additions of protocol version 2 (`files`, `map_file`, `evict`,
/// `kmalloc`, `kfree`, `heap_scavenge` and their answers), and version 2 is
/// version 3 without `batches` and `check_every` (each operation was sent
/// alone, checks were the runner's choice), and version 3 is version 4
/// without `reproduced` and a failure's `class` (its signature then comes
/// from its message), and version 4 is version 5 without references to
/// earlier answers (`"ref"`, [`crate::refs`]), and version 5 is version 6
/// without executable maps (`map`'s `executable`, the page kinds
/// `present_ram_exec` and `present_ram_wx`, the error
/// `write_and_execute`) and pinned RAM (`convert` to `pinned_ram`, the
/// page kinds `pinned_ram`, `pinned_ram_ro`, `pinned_alloc_on_write`), and
/// version 6 is version 7 without address spaces (`create_space`,
/// `switch_space`, `destroy_space`, the answer `{"space":N}`, the errors
/// `no_such_space`, `too_many_spaces`, `space_in_use`): a trace of an older
/// version runs in space 0 alone; and version 7 is version 8 without shared
/// memory (`share`, the page kinds `shared` and `shared_ro`); and version
/// 8 is version 9 with `Read`'s checksum the CRC-32C of protocol versions
/// up to 6, not [`protocol::pattern::checksum`]: an older trace's
/// `{"checksum":"0x…"}` reads as `"checksum"` ([`CHECKSUM_VERSION`]). So
/// all read the same.
pub const READ_VERSIONS: [u32; 9] = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/// The first version whose `{"checksum":"0x…"}` expectations hold
/// [`protocol::pattern::checksum`]'s values (protocol version 7); an
/// older one's values are of another function, and are not compared.
pub const CHECKSUM_VERSION: u32 = 9;

/// The first line of a trace, after its `"format"` and `"version"`: its
/// fields are written in this order, those that are `None` or empty left
/// out.
#[skip_serializing_none]
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceHeader {
    /// The seed the trace was generated from, if it was generated.
    #[serde_as(as = "Option<Hex>")]
    pub seed: Option<u64>,
    /// Guest RAM in MiB; `None` leaves it to the runner.
    #[serde_as(as = "Option<Count>")]
    pub ram_mib: Option<u32>,
    /// Free text: what the trace is about.
    pub note: Option<String>,
    /// The tool (and version) that wrote the trace.
    pub created_by: Option<String>,
    /// The failure the trace reproduces, when it was saved for one.
    pub failure: Option<Failure>,
    /// The files the guest boots with (`-initrd`), file `n` at index `n`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileSpec>,
    /// The memory check cadence the trace ran with: after each batch that
    /// brings the operations since the last check to at least this many, a
    /// check (and a full one at the end). `None`: only the final check.
    #[serde_as(as = "Option<Count>")]
    pub check_every: Option<u32>,
    /// The sizes of the batches the operations were sent in, in order (they
    /// add up to the number of operations). Empty: each operation was sent
    /// alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<u32>,
    /// The operation weights the generator drew from (a swarm sequence
    /// draws its own), as `{"map":20,"unmap":12,…}` with the kinds left
    /// out at weight 0. Informative: the operations are in the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<crate::weights::Weights>,
    /// How often the saved failure showed when the trace was run again
    /// (`"3/3"`): under every time, the reproducer is flaky.
    pub reproduced: Option<Rate>,
}

/// How many of the runs of a reproducer showed its failure: `"3/3"` in a
/// trace header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    pub reproduced: u32,
    pub runs: u32,
}

impl Rate {
    /// Fewer than every run.
    pub fn is_flaky(&self) -> bool {
        self.reproduced < self.runs
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.reproduced, self.runs)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected runs that reproduced out of runs, like \"3/3\"; got {s:?}");
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let reproduced: u32 = a.trim().parse().map_err(|_| bad())?;
        let runs: u32 = b.trim().parse().map_err(|_| bad())?;
        if runs == 0 || reproduced > runs {
            return Err(bad());
        }
        Ok(Rate { reproduced, runs })
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One operation line: the operation, optionally a reference that sets its
/// address from an earlier answer, and optionally its expected answer,
/// written `{"op":"<name>",<the operation's fields>,"ref":…,"expect":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    #[serde(flatten)]
    pub op: Op,
    /// The operation's address is what an earlier operation answered
    /// ([`crate::refs`]); the literal in `op` is the value it had when
    /// recorded, sent when the reference does not resolve.
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<Ref>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
}

impl From<Op> for Entry {
    fn from(op: Op) -> Self {
        Entry {
            op,
            reference: None,
            expect: None,
        }
    }
}

/// A trace: a header and a flat list of operations, each run in order from
/// a freshly booted (or reset) guest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    pub header: TraceHeader,
    pub entries: Vec<Entry>,
}

impl Trace {
    pub fn new(header: TraceHeader) -> Self {
        Trace {
            header,
            entries: Vec::new(),
        }
    }

    /// A trace of these operations, without expectations.
    pub fn from_ops(header: TraceHeader, ops: impl IntoIterator<Item = Op>) -> Self {
        Trace {
            header,
            entries: ops.into_iter().map(Entry::from).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The operations' index ranges, batch by batch: the header's
    /// `batches`, or one operation per batch without them.
    pub fn batch_ranges(&self) -> Vec<std::ops::Range<usize>> {
        if self.header.batches.is_empty() {
            return (0..self.entries.len()).map(|i| i..i + 1).collect();
        }
        let mut at = 0;
        self.header
            .batches
            .iter()
            .map(|&n| {
                let r = at..(at + n as usize).min(self.entries.len());
                at += n as usize;
                r
            })
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// The operations as they are sent when every reference resolves to its
    /// literal (what a trace says without a run).
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.entries.iter().map(|e| &e.op)
    }
}

mod edit;
mod read;
mod write;

pub use read::{parse, parse_str};
pub use write::{write, write_entry, write_header};
