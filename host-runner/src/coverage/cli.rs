//! `host-runner coverage`: a campaign (the `fuzz` options) and/or saved
//! coverage, merged, then the report.

use std::path::PathBuf;

use super::report::{self, RenderOptions};
use super::{Coverage, CoverageError};
use crate::exit_code::{Classify, ExitClass};
use crate::fuzz::{FuzzArgs, FuzzError};
use crate::RunnerOptions;

/// The `coverage` command line.
#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// Coverage written by `fuzz --coverage-out` or `coverage --save`
    /// (repeatable: merged). With --data alone no campaign runs.
    #[arg(long = "data", value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Write the merged coverage here (JSON).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Every instrumented line with its hits, not only functions.
    #[arg(long)]
    pub lines: bool,
    /// Code outside guest/core and guest/kernel too (dependencies, inlined
    /// core library code).
    #[arg(long)]
    pub other: bool,
    #[command(flatten)]
    pub fuzz: FuzzArgs,
}

/// What can stop the command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Coverage(#[from] CoverageError),
    #[error(transparent)]
    Fuzz(#[from] FuzzError),
    #[error(transparent)]
    Runner(#[from] crate::Error),
}

/// Bad coverage input is a usage error; the campaign's and the runner's
/// errors keep their own class.
impl Classify for CommandError {
    fn exit_class(&self) -> ExitClass {
        match self {
            CommandError::Coverage(_) => ExitClass::Usage,
            CommandError::Fuzz(e) => e.exit_class(),
            CommandError::Runner(e) => e.exit_class(),
        }
    }
}

/// What the command prints, and how many failures its campaign found
/// (the command exits 1 when it found any).
#[derive(Debug)]
pub struct Report {
    pub text: String,
    pub failures: usize,
}

/// Runs the campaign unless only `--data` was given, merges the saved
/// coverage, saves, and answers the text to print: the campaign's summary
/// (if one ran), then the report.
pub async fn run(options: &RunnerOptions, args: &CoverageArgs) -> Result<Report, CommandError> {
    let mut reached = Coverage::default();
    for path in &args.data {
        reached.merge(&Coverage::load(path)?)?;
    }
    let mut out = String::new();
    let mut failures = 0;
    let fuzz = &args.fuzz;
    // The kernel the campaign booted, if one ran (under TCG, the plain
    // twin of the default build when QEMU counted).
    let mut booted = None;
    if args.data.is_empty() || fuzz.duration.is_some() || fuzz.sequences.is_some() {
        let config = crate::config(options).await?;
        let replay = crate::fuzz::replay_command(options);
        let summary = crate::fuzz::run(&config, fuzz, replay).await?;
        out.push_str(&format!("{summary}\n"));
        failures = summary.failures.len();
        if !summary.failures.is_empty() {
            tracing::warn!(
                "the campaign found {} failure(s); its coverage is counted",
                summary.failures.len()
            );
        }
        reached.merge(&summary.reached)?;
        booted = Some(config.kernel);
    }
    if let Some(path) = &args.save {
        reached.save(path)?;
    }
    let kernel = match booted {
        Some(k) => k,
        None => crate::edge_counts::kernel_of(
            options.kernel.as_deref(),
            reached.edges.as_ref().map(|e| e.kernel),
        )?,
    };
    let opts = RenderOptions {
        lines: args.lines,
        other: args.other,
    };
    out.push_str(&report::text_report(&kernel, &reached, opts)?);
    Ok(Report {
        text: out,
        failures,
    })
}
