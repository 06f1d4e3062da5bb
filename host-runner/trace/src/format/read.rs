//! Reading a trace: lines, comments and a byte order mark, each line's
//! JSON, the header's range checks and the references' targets, with the
//! line and the field of every error.

use std::io::BufRead;

use serde_json::Value;

use super::{Trace, CHECKSUM_VERSION};
use crate::error::{FieldError, ParseError, TraceError};
use crate::expect::Expect;
use crate::limits::{check_header, MAX_OPS};
use crate::line::{read_entry, read_header};
use crate::refs;

impl Trace {
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
/// A `{"checksum":"0x…"}` expectation of a trace older than
/// [`CHECKSUM_VERSION`] reads as `"checksum"`: its value is of the old
/// function (the model still judges every answer's value).
pub fn parse(mut reader: impl BufRead) -> Result<Trace, TraceError> {
    let mut trace: Option<Trace> = None;
    let mut bytes = Vec::new();
    let mut n = 0;
    let mut header_line = 1;
    let mut old_checksums = false;
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
                    let (header, version) = read_header(value).map_err(at)?;
                    check_header(&header).map_err(at)?;
                    header_line = n;
                    old_checksums = version < CHECKSUM_VERSION;
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
                    let mut e = read_entry(value).map_err(at)?;
                    if old_checksums {
                        e.expect = e.expect.map(Expect::without_checksum);
                    }
                    if let Some(r) = &e.reference {
                        refs::check(t.entries.len(), &e.op, r, |i| t.entries[i].op.kind())
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
