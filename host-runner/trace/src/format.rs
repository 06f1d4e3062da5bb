//! The trace file: JSON Lines, a header line then one operation per line
//! (the format is documented in `testcases/README.md`). Each line is
//! written and read by serde derive (`line` reads one); this module holds
//! the types and the file around them: lines, comments, encoding.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::{serde_as, skip_serializing_none};

use crate::error::{FieldError, ParseError, TraceError};
use crate::expect::Expect;
use crate::failure::Failure;
use crate::limits::{check_header, MAX_OPS};
use crate::line::{read_entry, read_header};
use crate::numbers::{Count, Hex};
use crate::op::Op;
use crate::refs::{self, Ref};

/// The `"format"` of a trace header.
pub const FORMAT_NAME: &str = "vmmfuzz-trace";
/// The version this crate writes.
pub const FORMAT_VERSION: u32 = 5;
/// The versions this crate reads: version 1 is version 2 without the
/// additions of protocol version 2 (`files`, `map_file`, `evict`,
/// `kmalloc`, `kfree`, `heap_scavenge` and their answers), and version 2 is
/// version 3 without `batches` and `check_every` (each operation was sent
/// alone, checks were the runner's choice), and version 3 is version 4
/// without `reproduced` and a failure's `class` (its signature then comes
/// from its message), and version 4 is version 5 without references to
/// earlier answers (`"ref"`, [`crate::refs`]), so all read the same.
pub const READ_VERSIONS: [u32; 5] = [1, 2, 3, 4, 5];

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
    pub reproduced: Option<crate::reproduce::Rate>,
}

/// A file image the host builds: `pages` pages whose byte at file offset
/// `o` is `protocol::pattern::pattern_byte(seed, o)`. In a header:
/// `"files":[{"pages":16,"seed":"0x1"}]`.
#[serde_as]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    #[serde_as(as = "Count")]
    pub pages: u64,
    #[serde(default)]
    #[serde_as(as = "Hex")]
    pub seed: u64,
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

/// The header line as it is written.
#[derive(Serialize)]
struct HeaderLine<'a> {
    format: &'static str,
    version: u32,
    #[serde(flatten)]
    header: &'a TraceHeader,
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

    /// Removes operations `range`, keeping the batch sizes consistent (a
    /// batch left empty goes) and the references right: one to a later
    /// operation moves with it, one to a removed operation goes (its line
    /// keeps its literal).
    pub fn remove_ops(&mut self, range: std::ops::Range<usize>) {
        let cut = range.len();
        for e in &mut self.entries[range.end..] {
            e.reference = e.reference.and_then(|r| match r.op {
                i if i >= range.end => Some(Ref { op: i - cut, ..r }),
                i if i >= range.start => None,
                _ => Some(r),
            });
        }
        if !self.header.batches.is_empty() {
            let mut at = 0usize;
            for n in &mut self.header.batches {
                let (s, e) = (at, at + *n as usize);
                let cut = range.end.min(e).saturating_sub(range.start.max(s));
                *n -= cut as u32;
                at = e;
            }
            self.header.batches.retain(|&n| n > 0);
        }
        self.entries.drain(range);
    }

    /// Removes every operation `drop` picks, as [`Trace::remove_ops`] does
    /// (batches and references kept right); answers how many went.
    pub fn remove_where(&mut self, mut drop: impl FnMut(&Op) -> bool) -> usize {
        let gone: Vec<bool> = self.entries.iter().map(|e| drop(&e.op)).collect();
        // Each kept operation's new index.
        let mut to = Vec::with_capacity(gone.len());
        let mut kept = 0;
        for &g in &gone {
            to.push((!g).then_some(kept));
            kept += usize::from(!g);
        }
        if !self.header.batches.is_empty() {
            let mut at = 0usize;
            for n in &mut self.header.batches {
                let end = at + *n as usize;
                let cut = gone[at.min(gone.len())..end.min(gone.len())]
                    .iter()
                    .filter(|&&g| g)
                    .count();
                *n -= cut as u32;
                at = end;
            }
            self.header.batches.retain(|&n| n > 0);
        }
        let entries = std::mem::take(&mut self.entries);
        self.entries = entries
            .into_iter()
            .zip(&gone)
            .filter(|(_, &g)| !g)
            .map(|(mut e, _)| {
                e.reference = e.reference.and_then(|r| Some(Ref { op: to[r.op]?, ..r }));
                e
            })
            .collect();
        gone.len() - kept
    }

    /// The operations as they are sent when every reference resolves to its
    /// literal (what a trace says without a run).
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.entries.iter().map(|e| &e.op)
    }

    /// `other`'s operations appended after this trace's, their references
    /// moved with them.
    pub fn append(&mut self, other: &Trace) {
        let at = self.entries.len();
        self.entries.extend(other.entries.iter().map(|e| Entry {
            reference: e.reference.map(|r| Ref { op: r.op + at, ..r }),
            ..e.clone()
        }));
    }

    /// `ops` put before this trace's operations (their own batch when the
    /// trace records batches), every reference moved with its target.
    pub fn prepend(&mut self, ops: impl IntoIterator<Item = Op>) {
        self.insert_ops(0, ops);
    }

    /// `ops` put before operation `at` (their own batches of at most
    /// [`protocol::MAX_BATCH`] when the trace records batches; a batch
    /// they fall inside is split around them), every reference moved with
    /// its target.
    pub fn insert_ops(&mut self, at: usize, ops: impl IntoIterator<Item = Op>) {
        let head: Vec<Entry> = ops.into_iter().map(Entry::from).collect();
        let k = head.len();
        if k == 0 {
            return;
        }
        let at = at.min(self.entries.len());
        for e in &mut self.entries {
            e.reference = e.reference.map(|r| {
                if r.op >= at {
                    Ref { op: r.op + k, ..r }
                } else {
                    r
                }
            });
        }
        if !self.header.batches.is_empty() {
            let max = protocol::MAX_BATCH;
            let sizes = (0..k.div_ceil(max)).map(|i| (k - i * max).min(max) as u32);
            let mut batches = Vec::with_capacity(self.header.batches.len() + k.div_ceil(max) + 1);
            let mut start = 0usize;
            let mut sizes = Some(sizes);
            for &b in &self.header.batches {
                let end = start + b as usize;
                if (start..end).contains(&at) {
                    if at > start {
                        batches.push((at - start) as u32);
                    }
                    batches.extend(sizes.take().into_iter().flatten());
                    batches.push((end - at) as u32);
                } else {
                    batches.push(b);
                }
                start = end;
            }
            batches.extend(sizes.into_iter().flatten());
            self.header.batches = batches;
        }
        self.entries.splice(at..at, head);
    }

    /// Whether the header's batch sizes fit the operations.
    fn batches_fit(&self) -> bool {
        self.header.batches.is_empty()
            || (self.header.batches.iter().all(|&n| n > 0)
                && self
                    .header
                    .batches
                    .iter()
                    .map(|&n| n as usize)
                    .sum::<usize>()
                    == self.entries.len())
    }

    /// The trace as text (header line, then one line per operation).
    pub fn to_text(&self) -> String {
        let mut out = Vec::with_capacity(64 * (self.entries.len() + 1));
        self.write_lines(&mut out)
            .expect("a trace can always be written to memory");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    fn write_lines(&self, mut out: impl Write) -> std::io::Result<()> {
        write_line(&mut out, &header_line(&self.header))?;
        for e in &self.entries {
            write_line(&mut out, e)?;
        }
        Ok(())
    }
}

fn header_line(header: &TraceHeader) -> HeaderLine<'_> {
    HeaderLine {
        format: FORMAT_NAME,
        version: FORMAT_VERSION,
        header,
    }
}

fn write_line(mut out: impl Write, line: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut out, line)?;
    out.write_all(b"\n")
}

/// Writes `trace` to `w` (see [`Trace::to_text`]).
pub fn write(trace: &Trace, w: impl Write) -> std::io::Result<()> {
    trace.write_lines(std::io::BufWriter::new(w))
}

/// The header as one JSON line (no newline).
pub fn write_header(h: &TraceHeader) -> String {
    serde_json::to_string(&header_line(h)).expect("a header can always be written")
}

/// An operation line (no newline).
pub fn write_entry(e: &Entry) -> String {
    serde_json::to_string(e).expect("an operation line can always be written")
}

/// Whether a line is blank or a comment (`#…` or `//…`).
fn is_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#') || t.starts_with("//")
}

fn json(line: &str, n: usize) -> Result<Value, ParseError> {
    serde_json::from_str(line).map_err(|e| ParseError::Json {
        line: n,
        column: e.column(),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })
}

/// Reads a trace. Errors name the line (1-based) and the field. A UTF-8
/// byte order mark before the header is skipped; a line that is not UTF-8
/// is an error. The header's values are range-checked ([`crate::limits`]).
pub fn parse(mut reader: impl BufRead) -> Result<Trace, TraceError> {
    let mut trace: Option<Trace> = None;
    let mut bytes = Vec::new();
    let mut n = 0;
    let mut header_line = 1;
    while reader.read_until(b'\n', &mut bytes)? > 0 {
        n += 1;
        let raw = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = match n {
            1 => raw.strip_prefix("\u{feff}".as_bytes()).unwrap_or(raw),
            _ => raw,
        };
        let line = std::str::from_utf8(raw).map_err(|e| ParseError::Utf8 {
            line: n,
            column: e.valid_up_to() + 1,
        })?;
        if !is_comment(line) {
            let value = json(line, n)?;
            let at = |error: FieldError| ParseError::Field { line: n, error };
            match &mut trace {
                None => {
                    let header = read_header(value).map_err(at)?;
                    check_header(&header).map_err(at)?;
                    header_line = n;
                    trace = Some(Trace::new(header));
                }
                Some(t) if t.entries.len() == MAX_OPS => {
                    return Err(at(FieldError::new(
                        "",
                        format!("more than {MAX_OPS} operations: a trace holds at most {MAX_OPS}"),
                    ))
                    .into())
                }
                Some(t) => {
                    let e = read_entry(value).map_err(at)?;
                    if let Some(r) = &e.reference {
                        refs::check(t.entries.len(), &e.op, r, &t.entries)
                            .map_err(|m| at(FieldError::new("ref", m)))?;
                    }
                    t.entries.push(e);
                }
            }
        }
        bytes.clear();
    }
    let trace = trace.ok_or(ParseError::Empty { line: n.max(1) })?;
    if !trace.batches_fit() {
        let sum: u64 = trace.header.batches.iter().map(|&n| u64::from(n)).sum();
        return Err(ParseError::Field {
            line: header_line,
            error: FieldError::new(
                "batches",
                format!(
                    "batch sizes must be at least 1 and add up to the trace's {} operations; they add up to {sum}",
                    trace.len()
                ),
            ),
        }
        .into());
    }
    Ok(trace)
}

/// Reads a trace from a string.
pub fn parse_str(text: &str) -> Result<Trace, TraceError> {
    parse(text.as_bytes())
}
