//! The trace file: JSON Lines, a header line then one operation per line
//! (the format is documented in `testcases/README.md`).

use std::io::{BufRead, Write};

use serde_json::Value;

use crate::error::{FieldError, ParseError, TraceError};
use crate::expect::Expect;
use crate::failure::{Failure, FailureKind};
use crate::op::{Op, OpKind};
use crate::value::{read_name, read_str, read_u32, read_u64, Fields, ObjectWriter};

/// The `"format"` of a trace header.
pub const FORMAT_NAME: &str = "vmmfuzz-trace";
/// The version this crate writes.
pub const FORMAT_VERSION: u32 = 2;
/// The versions this crate reads: version 1 is version 2 without the
/// additions of protocol version 2 (`files`, `map_file`, `evict`,
/// `kmalloc`, `kfree`, `heap_scavenge` and their answers), so it reads the
/// same.
pub const READ_VERSIONS: [u32; 2] = [1, 2];

/// The first line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceHeader {
    /// The seed the trace was generated from, if it was generated.
    pub seed: Option<u64>,
    /// Guest RAM in MiB; `None` leaves it to the runner.
    pub ram_mib: Option<u32>,
    /// Free text: what the trace is about.
    pub note: Option<String>,
    /// The tool (and version) that wrote the trace.
    pub created_by: Option<String>,
    /// The failure the trace reproduces, when it was saved for one.
    pub failure: Option<Failure>,
    /// The files the guest boots with (`-initrd`), file `n` at index `n`.
    pub files: Vec<FileSpec>,
}

/// A file image the host builds: `pages` pages whose byte at file offset
/// `o` is `protocol::pattern::pattern_byte(seed, o)`. In a header:
/// `"files":[{"pages":16,"seed":"0x1"}]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileSpec {
    pub pages: u64,
    pub seed: u64,
}

/// One operation line: the operation and, optionally, its expected answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub op: Op,
    pub expect: Option<Expect>,
}

impl From<Op> for Entry {
    fn from(op: Op) -> Self {
        Entry { op, expect: None }
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

    /// The trace as text (header line, then one line per operation).
    pub fn to_text(&self) -> String {
        let mut out = write_header(&self.header);
        out.push('\n');
        for e in &self.entries {
            out.push_str(&write_entry(e));
            out.push('\n');
        }
        out
    }
}

/// Writes `trace` to `w` (see [`Trace::to_text`]).
pub fn write(trace: &Trace, mut w: impl Write) -> std::io::Result<()> {
    w.write_all(trace.to_text().as_bytes())
}

/// The header as one JSON line (no newline).
pub fn write_header(h: &TraceHeader) -> String {
    let mut w = ObjectWriter::new()
        .str("format", FORMAT_NAME)
        .count("version", u64::from(FORMAT_VERSION));
    if let Some(s) = h.seed {
        w = w.hex("seed", s);
    }
    if let Some(r) = h.ram_mib {
        w = w.count("ram_mib", u64::from(r));
    }
    if let Some(n) = &h.note {
        w = w.str("note", n);
    }
    if let Some(c) = &h.created_by {
        w = w.str("created_by", c);
    }
    if let Some(f) = &h.failure {
        let mut inner = ObjectWriter::new()
            .str("kind", f.kind.name())
            .str("message", &f.message);
        if let Some(i) = f.op_index {
            inner = inner.count("op", i as u64);
        }
        w = w.raw("failure", &inner.finish());
    }
    if !h.files.is_empty() {
        let files: Vec<String> = h
            .files
            .iter()
            .map(|f| {
                ObjectWriter::new()
                    .count("pages", f.pages)
                    .hex("seed", f.seed)
                    .finish()
            })
            .collect();
        w = w.raw("files", &format!("[{}]", files.join(",")));
    }
    w.finish()
}

/// An operation line (no newline).
pub fn write_entry(e: &Entry) -> String {
    let w = e.op.write_fields(ObjectWriter::new());
    match &e.expect {
        Some(x) => w.raw("expect", &x.to_json()),
        None => w,
    }
    .finish()
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

/// Reads a trace. Errors name the line (1-based) and the field.
pub fn parse(reader: impl BufRead) -> Result<Trace, TraceError> {
    let mut trace: Option<Trace> = None;
    let mut last = 0;
    for (i, line) in reader.lines().enumerate() {
        let (n, line) = (i + 1, line?);
        last = n;
        if is_comment(&line) {
            continue;
        }
        let value = json(&line, n)?;
        let at = |error: FieldError| ParseError::Field { line: n, error };
        match &mut trace {
            None => trace = Some(Trace::new(read_header(value).map_err(at)?)),
            Some(t) => t.entries.push(read_entry(value).map_err(at)?),
        }
    }
    Ok(trace.ok_or(ParseError::Empty { line: last.max(1) })?)
}

/// Reads a trace from a string.
pub fn parse_str(text: &str) -> Result<Trace, TraceError> {
    parse(text.as_bytes())
}

const HEADER_FIELDS: [&str; 8] = [
    "format",
    "version",
    "seed",
    "ram_mib",
    "note",
    "created_by",
    "failure",
    "files",
];

fn read_header(v: Value) -> Result<TraceHeader, FieldError> {
    let mut f = Fields::new(v, "")?;
    if f.has("op") && !f.has("format") {
        return Err(FieldError::new("format", format!("missing: a trace starts with a header line like {{\"format\":\"{FORMAT_NAME}\",\"version\":{FORMAT_VERSION}}} before its first op")));
    }
    f.required("format", &format!("\"{FORMAT_NAME}\""), |v| {
        read_name(v, &[FORMAT_NAME])
    })?;
    let version = f.required("version", &format!("{FORMAT_VERSION}"), read_u32)?;
    if !READ_VERSIONS.contains(&version) {
        return Err(FieldError::new(
            "version",
            format!("unsupported version {version}: this build reads versions 1 and 2"),
        ));
    }
    let header = TraceHeader {
        seed: f.optional("seed", read_u64)?,
        ram_mib: f.optional("ram_mib", read_u32)?,
        note: f.optional("note", read_str)?,
        created_by: f.optional("created_by", read_str)?,
        failure: match f.take("failure") {
            None => None,
            Some(v) => Some(read_failure(v)?),
        },
        files: Vec::new(),
    };
    let files = f
        .optional("files", |v| {
            let bad = || "a list of {\"pages\": N, \"seed\": \"0x…\"}".to_string();
            let list = v.as_array().ok_or_else(bad)?;
            list.iter()
                .map(|item| {
                    let pages = item.get("pages").ok_or_else(bad).and_then(read_u64)?;
                    let seed = item.get("seed").map_or(Ok(0), read_u64)?;
                    match item.as_object() {
                        Some(o) if o.keys().all(|k| k == "pages" || k == "seed") => {}
                        _ => return Err(bad()),
                    }
                    Ok(FileSpec { pages, seed })
                })
                .collect::<Result<Vec<_>, String>>()
        })?
        .unwrap_or_default();
    f.finish(&HEADER_FIELDS)?;
    Ok(TraceHeader { files, ..header })
}

fn read_failure(v: Value) -> Result<Failure, FieldError> {
    let mut f = Fields::new(v, "failure.")?;
    let names: Vec<&str> = FailureKind::ALL.iter().map(|k| k.name()).collect();
    let kind = f.required("kind", "a failure kind", |v| {
        read_name(v, &names).map(|i| FailureKind::ALL[i])
    })?;
    let message = f.optional("message", read_str)?.unwrap_or_default();
    let op_index = f.optional("op", read_u64)?.map(|i| i as usize);
    f.finish(&["kind", "message", "op"])?;
    Ok(Failure {
        kind,
        message,
        op_index,
    })
}

fn read_entry(v: Value) -> Result<Entry, FieldError> {
    let mut f = Fields::new(v, "")?;
    if f.has("format") {
        return Err(FieldError::new(
            "format",
            "a second header line: the header is the first line only",
        ));
    }
    let kind = f.required("op", "the operation's name, e.g. \"map\"", |v| {
        read_name(v, &OpKind::NAMES).map(|i| OpKind::ALL[i])
    })?;
    let expect = match f.take("expect") {
        None => None,
        Some(v) => Some(Expect::read(&v)?),
    };
    let (op, known) = Op::read_fields(kind, &mut f)?;
    let mut known = known.to_vec();
    known.push("expect");
    f.finish(&known)?;
    Ok(Entry { op, expect })
}
