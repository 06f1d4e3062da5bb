//! One shard's result directory, read and checked before anything is
//! merged: its summary (format and version), its coverage, its corpus
//! directory, and the trace of every failure its summary names.

use std::path::{Path, PathBuf};

use super::MergeError;
use crate::coverage::Coverage;
use crate::fuzz::results::{self, Document};
use crate::fuzz::results_dir::{CORPUS, COVERAGE, FAILURES, SUMMARY};

/// A shard's result directory, read.
#[derive(Debug, Clone)]
pub struct Shard {
    pub dir: PathBuf,
    pub doc: Document,
    pub coverage: Coverage,
}

fn missing(dir: &Path, what: impl Into<String>) -> MergeError {
    MergeError::Missing {
        dir: dir.to_path_buf(),
        what: what.into(),
    }
}

impl Shard {
    /// Reads the shard at `dir`.
    pub fn open(dir: &Path) -> Result<Shard, MergeError> {
        if !dir.is_dir() {
            return Err(missing(dir, "a directory at this path"));
        }
        let path = dir.join(SUMMARY);
        let text = std::fs::read_to_string(&path).map_err(|_| missing(dir, SUMMARY))?;
        // Format and version first: a document of another version may not
        // parse as this one.
        let head: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| MergeError::Malformed {
                path: path.clone(),
                source,
            })?;
        let format = head["format"].as_str().unwrap_or("").to_string();
        let version = head["version"].as_u64().unwrap_or(0);
        if format != results::FORMAT || version != u64::from(results::VERSION) {
            return Err(MergeError::Version {
                path,
                format,
                version: u32::try_from(version).unwrap_or(u32::MAX),
                known: results::VERSION,
            });
        }
        let doc: Document =
            serde_json::from_value(head).map_err(|source| MergeError::Malformed {
                path: path.clone(),
                source,
            })?;
        let coverage_path = dir.join(COVERAGE);
        if !coverage_path.is_file() {
            return Err(missing(dir, COVERAGE));
        }
        let coverage = Coverage::load(&coverage_path).map_err(|source| MergeError::Coverage {
            dir: dir.to_path_buf(),
            source,
        })?;
        if !dir.join(CORPUS).is_dir() {
            return Err(missing(dir, format!("{CORPUS}/")));
        }
        let shard = Shard {
            dir: dir.to_path_buf(),
            doc,
            coverage,
        };
        for f in &shard.doc.failures {
            let trace = shard.local(&f.trace);
            if !trace.is_file() {
                return Err(missing(
                    dir,
                    format!(
                        "{} (the trace of the failure `{}` its {SUMMARY} names)",
                        Path::new(FAILURES)
                            .join(trace.file_name().unwrap_or_default())
                            .display(),
                        f.signature
                    ),
                ));
            }
        }
        Ok(shard)
    }

    /// Where a file the summary names (as the shard's runner saw it) is
    /// now: in this directory's `failures/`, by name (a shard's
    /// directory may have moved since, e.g. a CI artifact downloaded).
    pub fn local(&self, recorded: &str) -> PathBuf {
        let name = Path::new(recorded).file_name().unwrap_or_default();
        self.dir.join(FAILURES).join(name)
    }
}
