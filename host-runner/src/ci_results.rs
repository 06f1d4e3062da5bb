//! The CI job's verdicts for machines: JUnit XML (`--junit FILE`, which CI
//! systems show as a test report) and JSON (`--json FILE`), one entry per
//! row of the printed table.
//!
//! A row that failed because of the VMM is a JUnit `<failure>`; one that
//! failed because of the machine or the tool (QEMU missing or killed, a
//! full disk) is an `<error>`, so a CI dashboard never counts a fault of
//! the machine as a bug of the VMM; an interrupted row is an `<error>` of
//! type `interrupted`.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::ci_row::{exit_class, CiRow};
use crate::exit_code::ExitClass;

/// The `"format"` of the JSON results.
pub const JSON_FORMAT: &str = "vmmfuzz-ci";
/// Its version: a reader refuses versions it does not know.
pub const JSON_VERSION: u32 = 1;

/// Why the results could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A results file could not be written.
    #[error("writing {path}: {source} (the job's verdict stands; check the path and free space)")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The JUnit report could not be serialized.
    #[error("serializing the JUnit report: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// A row's verdict, as the JSON names it.
fn verdict(class: ExitClass) -> &'static str {
    match class {
        ExitClass::Passed => "passed",
        ExitClass::VmmFailed => "vmm_failed",
        ExitClass::Environment => "environment",
        ExitClass::Usage => "usage",
        ExitClass::Interrupted(_) => "interrupted",
    }
}

/// A failure's one-line verdict: its `FAILED: …` line (a replay's text
/// starts with the step table), else its first line.
fn verdict_line(failure: &str) -> &str {
    failure
        .lines()
        .find_map(|l| l.strip_prefix("FAILED: "))
        .or_else(|| failure.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or_default()
}

/// The rows as a JUnit report: one suite, `vmmfuzz-ci`, one test case per
/// row (`smoke`, each trace, `pressure`, the wire and fuzz campaigns).
pub fn junit(rows: &[CiRow], total: Duration) -> Result<String, ResultsError> {
    let mut suite = TestSuite::new("vmmfuzz-ci");
    suite.set_time(total);
    for row in rows {
        let status = match (&row.failure, row.class) {
            (None, _) | (_, ExitClass::Passed) => TestCaseStatus::success(),
            (Some(f), class) => {
                let kind = match class {
                    ExitClass::VmmFailed => NonSuccessKind::Failure,
                    _ => NonSuccessKind::Error,
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_type(verdict(class));
                s.set_message(verdict_line(f));
                s.set_description(f.as_str());
                s
            }
        };
        let mut case = TestCase::new(row.name.as_str(), status);
        case.set_classname("vmmfuzz.ci");
        case.set_time(row.time);
        case.set_assertions(row.ops);
        suite.add_test_case(case);
    }
    let mut report = Report::new("vmmfuzz");
    report.set_time(total);
    report.add_test_suite(suite);
    Ok(report.to_string()?)
}

#[derive(Serialize)]
struct JsonRow<'a> {
    name: &'a str,
    verdict: &'static str,
    ops: usize,
    seconds: f64,
    /// The failure's one-line verdict, and its whole text.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonResults<'a> {
    format: &'static str,
    version: u32,
    /// The job's verdict and exit code: the worst row's.
    verdict: &'static str,
    exit_code: u8,
    seconds: f64,
    rows: Vec<JsonRow<'a>>,
}

/// The rows as JSON (`{"format":"vmmfuzz-ci","version":1,"verdict":…,
/// "exit_code":…,"seconds":…,"rows":[{"name","verdict","ops","seconds",
/// "message"?,"failure"?}]}`).
pub fn json(rows: &[CiRow], total: Duration) -> String {
    let class = exit_class(rows);
    let results = JsonResults {
        format: JSON_FORMAT,
        version: JSON_VERSION,
        verdict: verdict(class),
        exit_code: class.code(),
        seconds: total.as_secs_f64(),
        rows: rows
            .iter()
            .map(|r| JsonRow {
                name: &r.name,
                verdict: verdict(if r.failure.is_some() {
                    r.class
                } else {
                    ExitClass::Passed
                }),
                ops: r.ops,
                seconds: r.time.as_secs_f64(),
                message: r.failure.as_deref().map(verdict_line),
                failure: r.failure.as_deref(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&results).expect("plain data always serializes")
}

/// Writes `text` to `path` atomically (a temporary file beside it, synced,
/// renamed), so a reader never sees half a report.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), ResultsError> {
    let io = |source| ResultsError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
#[path = "ci_results/tests.rs"]
mod tests;
