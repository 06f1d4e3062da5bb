//! Writing a trace: the header line (`"format"` and `"version"` first),
//! then one line per operation, each by serde.

use std::io::Write;

use serde::Serialize;

use super::{Entry, Trace, TraceHeader, FORMAT_NAME, FORMAT_VERSION};

/// The header line as it is written.
#[derive(Serialize)]
struct HeaderLine<'a> {
    format: &'static str,
    version: u32,
    #[serde(flatten)]
    header: &'a TraceHeader,
}

impl Trace {
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
