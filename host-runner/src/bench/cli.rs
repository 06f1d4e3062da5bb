//! `host-runner bench`: the command line, and printing the table and the
//! JSON.

use std::path::PathBuf;

use super::{BenchError, BenchPlan};
use crate::accel::{self, Accel, AccelChoice};
use crate::RunnerOptions;

/// The `bench` command line.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The short plan (CI: under a minute on TCG): every section but
    /// minimization, fewer runs and samples, 3 s campaigns, checks at
    /// 64 MiB only.
    #[arg(long)]
    pub quick: bool,
    /// Runs per figure (each on fresh guests); the figures are medians.
    #[arg(long, value_name = "N")]
    pub runs: Option<usize>,
    /// Also write the figures as JSON: to FILE, or to stdout without one
    /// (then the table goes to stderr).
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub json: Option<PathBuf>,
    /// Single pings per run.
    #[arg(long, value_name = "N")]
    pub round_trips: Option<usize>,
    /// Seconds of each end-to-end fuzz campaign.
    #[arg(long, value_name = "SECS")]
    pub fuzz_secs: Option<f64>,
    /// Seed of the mixes, the fresh-state sequences and the campaigns
    /// (decimal or 0x hex; default 0xbe7c0001).
    #[arg(long, value_parser = crate::args::parse_seed)]
    pub seed: Option<u64>,
    /// Operations of the campaign's sequences run under memory pressure;
    /// 0 leaves the section out.
    #[arg(long, value_name = "OPS")]
    pub pressure_ops: Option<usize>,
    /// Guest RAM sizes of the checks section (MiB, comma-separated).
    #[arg(long, value_name = "MIB,…", value_delimiter = ',')]
    pub check_ram: Option<Vec<u32>>,
    /// Measure minimization with this guest kernel, built with an injected
    /// bug (`inject-leak`); without it the section is left out.
    #[arg(long, value_name = "PATH")]
    pub minimize_kernel: Option<PathBuf>,
    /// Operations of the failing trace to minimize.
    #[arg(long, value_name = "OPS")]
    pub minimize_ops: Option<usize>,
    /// Time the minimization may take, in seconds.
    #[arg(long, value_name = "SECS")]
    pub minimize_secs: Option<f64>,
    /// Measure only these sections (comma-separated); default: all.
    #[arg(long, value_enum, value_name = "SECTION,…", value_delimiter = ',')]
    pub only: Option<Vec<super::Section>>,
    /// Instead: the guest's cost per kind of operation, over this many
    /// generated operations sent one by one.
    #[arg(long, value_name = "OPS")]
    pub op_costs: Option<usize>,
}

impl BenchArgs {
    /// The plan the options ask for.
    pub fn plan(&self) -> BenchPlan {
        let mut plan = if self.quick {
            BenchPlan::quick()
        } else {
            BenchPlan::default()
        };
        let set = |field: &mut usize, v: Option<usize>| *field = v.unwrap_or(*field);
        set(&mut plan.runs, self.runs);
        set(&mut plan.round_trips, self.round_trips);
        set(&mut plan.minimize_ops, self.minimize_ops);
        set(&mut plan.pressure_ops, self.pressure_ops);
        plan.seed = self.seed.unwrap_or(plan.seed);
        plan.fuzz_secs = self.fuzz_secs.unwrap_or(plan.fuzz_secs);
        plan.minimize_secs = self.minimize_secs.unwrap_or(plan.minimize_secs);
        if let Some(ram) = &self.check_ram {
            plan.check_ram_mib.clone_from(ram);
        }
        plan.minimize_kernel.clone_from(&self.minimize_kernel);
        if let Some(only) = &self.only {
            plan.only.clone_from(only);
        }
        plan
    }
}

/// What can stop the command.
#[derive(Debug, thiserror::Error)]
pub enum BenchCliError {
    #[error(transparent)]
    Bench(#[from] BenchError),
    #[error(transparent)]
    Runner(#[from] crate::Error),
    #[error("writing {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs the bench the options ask for and prints it.
pub async fn run(options: &RunnerOptions, args: &BenchArgs) -> Result<(), BenchCliError> {
    if let Some(n) = args.op_costs {
        let mut config = crate::config(options).await?;
        config.files = trace::files_of_pages(&trace::DEFAULT_FILE_PAGES);
        print!("{}", super::op_costs(&config, n, 1).await?);
        return Ok(());
    }
    let base = crate::base_config(options)?;
    let accels = match options.accel {
        AccelChoice::Auto => accel::available(),
        AccelChoice::Kvm => vec![Accel::Kvm],
        AccelChoice::Tcg => vec![Accel::Tcg],
    };
    let plan = args.plan();
    let report = super::run(&base, &accels, &plan, |s| tracing::info!("bench: {s}…")).await?;
    let table = super::table::render(&report);
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => {
            eprint!("{table}");
            println!("{}", report.to_json());
        }
        Some(path) => {
            std::fs::write(path, report.to_json() + "\n").map_err(|source| {
                BenchCliError::Write {
                    path: path.to_owned(),
                    source,
                }
            })?;
            print!("{table}");
        }
        None => print!("{table}"),
    }
    Ok(())
}
