//! `host-runner merge DIR... --out DIR`: the result directories of a
//! campaign's shards (`fuzz --results DIR`, [`crate::fuzz::results_dir`])
//! made into one result directory: failures deduplicated by signature
//! (the shortest reproducer kept, how often each was found summed),
//! corpora merged (identical traces once), coverage merged (edge hits and
//! transition counts summed), one summary and one campaign report. A
//! merged directory is a result directory too, so merges nest.
//!
//! - [`shard`]: reading and checking one shard's directory.
//! - [`failures`], [`corpus`], [`summary`]: merging each part.

pub mod corpus;
pub mod failures;
pub mod shard;
pub mod summary;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::coverage::Coverage;
use crate::exit_code::{Classify, ExitClass};
use crate::fuzz::results::Document;
use crate::fuzz::results_dir::{self, ResultsDirError};
pub use shard::Shard;

/// The `merge` command line.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' result directories (`fuzz --results DIR`, or earlier
    /// merges).
    #[arg(required = true, value_name = "DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged result directory (created; its summary, coverage and
    /// report are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// What stops a merge. The shard's directory is named in each.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(
        "{dir}: not a shard's result directory: {what} is missing; pass the directories \
         `host-runner fuzz --results DIR` (or `merge --out DIR`) wrote, with everything in them"
    )]
    Missing { dir: PathBuf, what: String },
    #[error(
        "{path}: not a fuzz summary ({source}); a shard's summary.json is the `vmmfuzz-fuzz` \
         document `fuzz --results` writes: run the shard again if it was cut short"
    )]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path}: a {format:?} document of version {version}; this runner merges \
         \"vmmfuzz-fuzz\" version {known}: merge with the runner version that wrote the shards"
    )]
    Version {
        path: PathBuf,
        format: String,
        version: u32,
        known: u32,
    },
    #[error("{dir}: its coverage: {source}; run every shard with the same guest kernel")]
    Coverage {
        dir: PathBuf,
        #[source]
        source: crate::coverage::CoverageError,
    },
    #[error("the output {0} is one of the shards: write the merge to a new directory")]
    OutIsShard(PathBuf),
    #[error("writing {path}: {source}; check that the output directory is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Results(#[from] ResultsDirError),
}

impl MergeError {
    /// Whether the shards given are at fault (a usage error), rather than
    /// the machine writing the output.
    pub fn is_input(&self) -> bool {
        !matches!(self, MergeError::Write { .. } | MergeError::Results(_))
    }
}

/// Bad shards are a usage error; failing to write the output is the
/// environment's.
impl Classify for MergeError {
    fn exit_class(&self) -> ExitClass {
        if self.is_input() {
            ExitClass::Usage
        } else {
            ExitClass::Environment
        }
    }
}

pub(crate) fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> MergeError {
    let path = path.to_path_buf();
    move |source| MergeError::Write { path, source }
}

/// What a merge made.
#[derive(Debug)]
pub struct Merged {
    pub out: PathBuf,
    pub doc: Document,
    pub coverage: Coverage,
    pub corpus: corpus::CorpusMerge,
    /// Failures found in all, before deduplication.
    pub found: u64,
    pub report: PathBuf,
}

/// Merges the result directories `shards` into `out` (checking every
/// shard before writing anything); guest lines in the report are
/// symbolized with `kernel` (default: the built guest).
pub fn run(shards: &[PathBuf], out: &Path, kernel: Option<&Path>) -> Result<Merged, MergeError> {
    let shards = shards
        .iter()
        .map(|d| Shard::open(d))
        .collect::<Result<Vec<Shard>, MergeError>>()?;
    if let Ok(o) = out.canonicalize() {
        if shards
            .iter()
            .any(|s| s.dir.canonicalize().ok() == Some(o.clone()))
        {
            return Err(MergeError::OutIsShard(out.to_path_buf()));
        }
    }
    let mut coverage = Coverage::default();
    for s in &shards {
        coverage
            .merge(&s.coverage)
            .map_err(|source| MergeError::Coverage {
                dir: s.dir.clone(),
                source,
            })?;
    }
    std::fs::create_dir_all(out).map_err(write_error(out))?;
    let found = shards
        .iter()
        .flat_map(|s| &s.doc.failures)
        .map(|f| f.occurrences)
        .sum();
    let failures = failures::merge(&shards, &out.join(results_dir::FAILURES))?;
    let corpus = corpus::merge(&shards, &out.join(results_dir::CORPUS))?;
    let doc = summary::merge(&shards, failures, &coverage);
    let report = results_dir::write(out, &doc, &coverage, kernel)?;
    Ok(Merged {
        out: out.to_path_buf(),
        doc,
        coverage,
        corpus,
        found,
        report,
    })
}

impl fmt::Display for Merged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.doc;
        writeln!(
            f,
            "merged {} shard(s) ({}) into {}: {} sequences, {} ops",
            d.merged_from.len(),
            d.merged_from.join(", "),
            self.out.display(),
            d.sequences,
            d.ops
        )?;
        writeln!(
            f,
            "failures: {} signature(s) kept of {} found",
            d.failures.len(),
            self.found
        )?;
        for x in &d.failures {
            writeln!(
                f,
                "  {} (found {}×): {} ({} ops)",
                x.signature,
                x.occurrences,
                x.reproducer(),
                x.reproducer_ops()
            )?;
        }
        writeln!(f, "{}", self.corpus)?;
        writeln!(f, "{}", crate::fuzz::summary::reached_line(&self.coverage))?;
        writeln!(f, "report: {}", self.report.display())
    }
}

#[cfg(test)]
mod tests;
