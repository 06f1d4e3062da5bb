//! The CI job's rows: one a trace, campaign or check, the worst class of
//! which is the job's exit, and the table they print as. The parts of the
//! job (`ci_job`, `pressure`, `wire`) make rows; nothing here runs one.

use std::fmt::Write;
use std::time::Duration;

use crate::exit_code::ExitClass;

/// One line of the summary table.
#[derive(Clone, Debug)]
pub struct CiRow {
    pub name: String,
    pub ops: usize,
    /// `None` when it passed.
    pub failure: Option<String>,
    /// Whose the failure is: [`ExitClass::Passed`] when there is none,
    /// [`ExitClass::Environment`] for a fault of the machine or the tool.
    pub class: ExitClass,
    pub time: Duration,
}

/// What the job exits with: the worst of its rows' classes.
pub fn exit_class(rows: &[CiRow]) -> ExitClass {
    rows.iter()
        .map(|r| r.class)
        .fold(ExitClass::Passed, ExitClass::worst)
}

/// The summary table.
pub fn table(rows: &[CiRow]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:width$}  {:>6}  {:6}  {:>8}\n",
        "trace", "ops", "result", "time"
    );
    for r in rows {
        let result = match (&r.failure, r.class) {
            (None, _) => "ok",
            (Some(_), ExitClass::Interrupted(_)) => "STOPPED",
            (Some(_), _) => "FAILED",
        };
        let secs = format!("{:.2}s", r.time.as_secs_f64());
        let _ = writeln!(
            out,
            "{:width$}  {:>6}  {result:6}  {secs:>8}",
            r.name, r.ops
        );
    }
    let failed = rows.iter().filter(|r| r.failure.is_some()).count();
    let _ = writeln!(out, "{} passed, {failed} failed", rows.len() - failed);
    out
}
