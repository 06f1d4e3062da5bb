//! A campaign's result directory (`fuzz --results DIR`), the unit
//! `host-runner merge` merges, and what a merge writes too:
//!
//! - `summary.json`: the `fuzz --json` document ([`super::results`]);
//! - `coverage.json`: guest edges and model transitions reached (as
//!   `fuzz --coverage-out` writes them);
//! - `corpus/`: the sequences kept for new coverage (`--corpus`);
//! - `failures/`: each failure's trace, minimized trace and HTML report
//!   (`--out`);
//! - `index.html`: the campaign report ([`crate::report::campaign`]).

use std::path::{Path, PathBuf};

use super::results::Document;
use super::FuzzArgs;
use crate::coverage::{Coverage, CoverageError};
use crate::report::campaign::{self, CampaignReportError};

pub const SUMMARY: &str = "summary.json";
pub const COVERAGE: &str = "coverage.json";
pub const CORPUS: &str = "corpus";
pub const FAILURES: &str = campaign::FAILURES;
pub const REPORT: &str = campaign::PAGE;

/// What stops a result directory being written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsDirError {
    #[error("writing the results to {path}: {source}; check that the directory is writable")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Summary(#[from] crate::ci_results::ResultsError),
    #[error(transparent)]
    Coverage(#[from] CoverageError),
    #[error(transparent)]
    Report(#[from] CampaignReportError),
}

/// Points a campaign's failures (`--out`) and corpus (`--corpus`) into
/// the result directory `dir`.
pub fn aim(args: &mut FuzzArgs, dir: &Path) {
    args.out = dir.join(FAILURES);
    args.corpus = Some(dir.join(CORPUS));
}

/// Writes `summary.json`, `coverage.json` and the report into `dir`
/// (the failures and corpus are there already); guest lines are
/// symbolized with `kernel` (default: the built guest). Answers the
/// report's path.
pub fn write(
    dir: &Path,
    doc: &Document,
    reached: &Coverage,
    kernel: Option<&Path>,
) -> Result<PathBuf, ResultsDirError> {
    std::fs::create_dir_all(dir).map_err(|source| ResultsDirError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    crate::ci_results::write_atomically(&dir.join(SUMMARY), &doc.to_json())?;
    reached.save(&dir.join(COVERAGE))?;
    Ok(campaign::write(dir, doc, reached, kernel)?)
}

/// The files `fuzz` writes beside its printed summary.
#[derive(Debug, Default)]
pub struct Outputs {
    /// `--json FILE`: the summary document.
    pub json: Option<PathBuf>,
    /// `--results DIR`: the result directory.
    pub results: Option<PathBuf>,
    /// `--report DIR`: the campaign report alone.
    pub report: Option<PathBuf>,
}

impl Outputs {
    /// Writes each asked for: the reports' paths written, and what could
    /// not be written (each error's text).
    pub fn write(
        &self,
        summary: &super::Summary,
        kernel: Option<&Path>,
    ) -> (Vec<PathBuf>, Vec<String>) {
        let doc = super::results::document(summary);
        let reached = &summary.reached;
        let mut errors = Vec::new();
        if let Some(path) = &self.json {
            if let Err(e) = crate::ci_results::write_atomically(path, &doc.to_json()) {
                errors.push(e.to_string());
            }
        }
        let pages = [
            self.results
                .as_ref()
                .map(|d| write(d, &doc, reached, kernel).map_err(|e| e.to_string())),
            self.report
                .as_ref()
                .map(|d| campaign::write(d, &doc, reached, kernel).map_err(|e| e.to_string())),
        ];
        let mut written = Vec::new();
        for page in pages.into_iter().flatten() {
            match page {
                Ok(p) => written.push(p),
                Err(e) => errors.push(e),
            }
        }
        (written, errors)
    }
}
