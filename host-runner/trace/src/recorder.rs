//! Recording traces: a write-ahead writer for a running campaign (what was
//! sent is on disk even if the runner is killed) and atomic saving of the
//! trace of a failure.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::failure::Failure;
use crate::format::{write_entry, write_header, Entry, Trace, TraceHeader};

/// Appends a trace's lines to a file as they are sent. Lines are buffered
/// and reach the file at [`TraceWriter::flush_batch`] (call it before
/// sending each batch to the guest: write-ahead), and, with `sync`, the
/// disk.
#[derive(Debug)]
pub struct TraceWriter {
    out: BufWriter<File>,
    path: PathBuf,
    sync: bool,
    ops: usize,
}

impl TraceWriter {
    /// Creates (or truncates) `path` and writes the header line, flushed.
    pub fn create(path: impl AsRef<Path>, header: &TraceHeader, sync: bool) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        let mut w = TraceWriter {
            out: BufWriter::new(file),
            path,
            sync,
            ops: 0,
        };
        writeln!(w.out, "{}", write_header(header))?;
        w.flush_batch()?;
        Ok(w)
    }

    /// Appends one operation line (buffered).
    pub fn append(&mut self, entry: &Entry) -> io::Result<()> {
        self.ops += 1;
        writeln!(self.out, "{}", write_entry(entry))
    }

    /// Appends a comment line (`# …`), e.g. where a new run starts or what
    /// the guest answered last. Parsers skip it.
    pub fn comment(&mut self, text: &str) -> io::Result<()> {
        for line in text.lines() {
            writeln!(self.out, "# {line}")?;
        }
        Ok(())
    }

    /// Pushes every appended line to the file (and to the disk with `sync`).
    pub fn flush_batch(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.sync {
            self.out.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// Operations appended so far.
    pub fn ops(&self) -> usize {
        self.ops
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> io::Result<PathBuf> {
        self.flush_batch()?;
        Ok(self.path)
    }
}

/// Writes `trace` to `path` so that `path` holds either the old file or the
/// whole new trace, never a part: write to `path.tmp`, fsync, rename, fsync
/// the directory.
pub fn save_atomically(path: impl AsRef<Path>, trace: &Trace) -> io::Result<()> {
    let path = path.as_ref();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(trace.to_text().as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    // The rename is durable once the directory is; not every platform lets
    // a directory be opened for that, which is not worth failing over.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A short stable hash of a trace's text (FNV-1a, 32 bits as 8 hex
/// digits), to tell failure files apart.
pub fn short_hash(trace: &Trace) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in trace.to_text().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// Where the trace of `failure` goes: `<dir>/<kind>-<seed>-<hash>.jsonl`
/// (`manual` for a trace without a seed).
pub fn failure_path(dir: impl AsRef<Path>, failure: &Failure, trace: &Trace) -> PathBuf {
    let seed = trace
        .header
        .seed
        .map_or_else(|| "manual".to_string(), |s| s.to_string());
    dir.as_ref().join(format!(
        "{}-{seed}-{}.jsonl",
        failure.kind.name(),
        short_hash(trace)
    ))
}

/// Where the minimized trace of the failure saved at `path` goes: beside
/// it, `…-min.jsonl`, or `…-min-flaky.jsonl` for one that did not
/// reproduce every time it was run again.
pub fn minimized_path(path: impl AsRef<Path>, flaky: bool) -> PathBuf {
    let path = path.as_ref();
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let flaky = if flaky { "-flaky" } else { "" };
    path.with_file_name(format!("{stem}-min{flaky}.jsonl"))
}
