//! Coverage, the fuzzer's guidance: the guest's code edges (SanitizerCoverage
//! counters read from guest RAM) and the model's transitions and events
//! (`oracle::coverage`).
//!
//! - [`counters`]: [`CounterReader`] reads a booted guest's counters
//!   from the shared RAM mapping and answers the hits since its last read
//!   ([`EdgeHits`]).
//! - [`plugin`]: under TCG, a kernel built without SanitizerCoverage runs
//!   with no counters of its own; a QEMU plugin counts its block leaders
//!   ([`blocks`]: found in the ELF, in the PC table's format) in a file the
//!   host maps, and [`BlockReader`] answers the same [`EdgeHits`].
//! - [`Coverage`]: what a sequence (or a campaign) reached, guest edges and
//!   model coverage together. [`Coverage::merge`] adds two (associative,
//!   for jobs and campaign shards); [`Coverage::novelty`] says what one
//!   sequence reached that the campaign had not: the signal a corpus keeps
//!   sequences by. It is serializable ([`Coverage::save`], [`Coverage::load`]).
//! - [`symbols`]: counters to PCs (the kernel ELF's PC table) to functions and
//!   source lines (its DWARF); [`report`]: the text report of
//!   `host-runner coverage` ([`cli`]).
//!
//! The kernel's counters are 8 bits and wrap: the reader counts each one's
//! change between two reads modulo 256, so an edge run a multiple of 256
//! times between two reads counts nothing that time. The judge reads at
//! every memory check and at each sequence's end, between which the VMM's
//! own edges rarely run that often; the serial loop's edges, which run
//! while the guest waits, are counted approximately. QEMU's counts are 64
//! bits: exact.
//!
//! Either way a read races the guest's work after its last answer: it
//! drops the answer after sending it, so a read right after an answer
//! counts that drop's edges in this window or in the next. A sequence's
//! hits may move by one on those edges from run to run; totals over a
//! guest's life, read when it is idle, do not.

pub mod blocks;
pub mod cli;
pub mod counters;
mod edges;
pub mod plugin;
pub mod ran;
pub mod report;
pub mod symbols;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use counters::CounterReader;
pub use edges::{EdgeHits, Guidance, KernelId};
pub use oracle::ModelCoverage;
pub use plugin::{BlockCounter, BlockCounts, BlockReader, PluginFiles};

/// What went wrong reading, matching or symbolizing coverage.
#[derive(Debug, thiserror::Error)]
pub enum CoverageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not coverage data: {source}")]
    Format {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the kernel ELF {path}: {why}")]
    Elf { path: String, why: String },
    #[error(
        "coverage of another kernel build: {theirs} (this one: {ours}); \
         pass the kernel it was recorded with (--kernel PATH); under TCG QEMU counts \
         the blocks of the kernel built without SanitizerCoverage, so coverage of TCG \
         and KVM campaigns, or of --edge-counts qemu and sancov, does not merge; and \
         QEMU's block counts saved by a host-runner that cut the same kernel into \
         other blocks (one from before `rep` string instructions were blocks of their own) \
         belong to that cut, not this one"
    )]
    OtherKernel { ours: String, theirs: String },
    #[error("reading the guest's counters: {0}")]
    Memory(#[from] oracle::MemoryError),
}

/// What a sequence, a job or a campaign reached.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Hits per guest edge (none when the guest has no counters or no
    /// shared RAM).
    pub edges: Option<EdgeHits>,
    pub model: ModelCoverage,
}

/// What one coverage reached that another had not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Novelty {
    /// Guest edges hit for the first time.
    pub edges: usize,
    /// Guest edges hit more often in one go than ever before, in AFL's
    /// buckets (1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+).
    pub buckets: usize,
    pub transitions: usize,
    pub events: usize,
}

impl Novelty {
    /// Whether anything was new.
    pub fn any(&self) -> bool {
        self.edges + self.buckets + self.transitions + self.events > 0
    }
}

impl Coverage {
    /// Adds `other` to this. Guest edges of another kernel build than the
    /// first seen are refused (their indexes mean other code).
    pub fn merge(&mut self, other: &Coverage) -> Result<(), CoverageError> {
        match (&mut self.edges, &other.edges) {
            (Some(mine), Some(theirs)) => mine.merge(theirs)?,
            (None, Some(theirs)) => self.edges = Some(theirs.clone()),
            (_, None) => {}
        }
        self.model.merge(&other.model);
        Ok(())
    }

    /// What this coverage (a sequence's) reached that `seen` (the
    /// campaign's) had not, guest edges `ignored` marks left out.
    pub fn novelty(&self, seen: &Coverage, ignored: Option<&Guidance>) -> Novelty {
        let (edges, buckets) = match (&self.edges, &seen.edges) {
            (Some(e), Some(s)) => e.novelty(s, ignored),
            (Some(e), None) => e.novelty(&EdgeHits::empty_like(e), ignored),
            (None, _) => (0, 0),
        };
        let m = self.model.novelty(&seen.model);
        Novelty {
            edges,
            buckets,
            transitions: m.transitions,
            events: m.events,
        }
    }

    /// Guest edges reached and in all (0, 0 without counters).
    pub fn edges_reached(&self) -> (usize, usize) {
        self.edges
            .as_ref()
            .map_or((0, 0), |e| (e.reached(), e.len()))
    }

    /// Writes the coverage as JSON.
    pub fn save(&self, path: &Path) -> Result<(), CoverageError> {
        let text = serde_json::to_string(self).expect("coverage serializes");
        std::fs::write(path, text).map_err(|source| CoverageError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
    }

    /// Reads a coverage [`Coverage::save`] wrote.
    pub fn load(path: &Path) -> Result<Coverage, CoverageError> {
        let text = std::fs::read_to_string(path).map_err(|source| CoverageError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| CoverageError::Format {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
