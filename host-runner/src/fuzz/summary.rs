//! The campaign's options (the `fuzz` command line) and its report.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use trace::{Failure, Shard};

use super::plan::parse_duration;
use crate::minimize::MinimizeReport;

/// How each sequence gets a fresh guest state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FreshState {
    /// Measure a boot and a reset, use the faster.
    Auto,
    /// `Reset` (judged: every frame back) on the same guest.
    Reset,
    /// A new guest per sequence.
    Boot,
}

pub fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("expected a seed (decimal or 0x hex), got {s:?}: {e}"))
}

/// `host-runner fuzz` options.
#[derive(Clone, Debug, clap::Args)]
pub struct FuzzArgs {
    /// Campaign seed (decimal or 0x hex; default: from the clock, printed).
    /// Sequence k runs with seed + k.
    #[arg(long, value_parser = parse_seed)]
    pub seed: Option<u64>,
    /// Sequences to run (in this shard); default 100 without --duration.
    #[arg(long)]
    pub sequences: Option<u64>,
    /// Operations per sequence.
    #[arg(long, default_value_t = 200)]
    pub ops: usize,
    /// Stop starting sequences after this long (90s, 10m, 1h).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Memory check every K operations (0: only at each sequence's end).
    #[arg(long, default_value_t = 50, value_name = "K")]
    pub check_every: usize,
    /// Guests at once, one task each.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// This runner's share of the campaign: sequences k with k % n == i - 1.
    #[arg(long, default_value = "1/1", value_name = "i/n")]
    pub shard: Shard,
    /// Where failing traces (and the in-flight traces) go.
    #[arg(long, default_value = "failures")]
    pub out: PathBuf,
    /// Most operations per Batch frame.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// How each sequence starts from a fresh state.
    #[arg(long, value_enum, default_value_t = FreshState::Auto)]
    pub fresh: FreshState,
    /// Stop the campaign after this many failures (0: never).
    #[arg(long, default_value_t = 1)]
    pub max_failures: u64,
    /// Time for minimizing each new failure.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub minimize_duration: Duration,
    /// Save failures without minimizing them.
    #[arg(long)]
    pub no_minimize: bool,
}

/// A failure the campaign found.
#[derive(Debug, Clone)]
pub struct FoundFailure {
    pub failure: Failure,
    /// The saved trace.
    pub path: PathBuf,
    pub ops: usize,
    /// The minimization: its report, why it failed, or nothing (the same
    /// signature was minimized already, or `--no-minimize`).
    pub minimized: Option<Result<MinimizeReport, String>>,
}

/// What a campaign did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub seed: u64,
    pub shard: Shard,
    pub jobs: usize,
    pub elapsed: Duration,
    pub sequences: u64,
    pub ops: u64,
    pub batches: u64,
    /// Median boot and reset times, and what was used.
    pub boot: Option<(Duration, usize)>,
    pub reset: Option<(Duration, usize)>,
    /// How fresh states were made, and why (one line per job in `auto`).
    pub fresh: Vec<String>,
    pub failures: Vec<FoundFailure>,
    /// The command line that replays a trace with this guest.
    pub replay: String,
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        writeln!(
            f,
            "fuzz: seed {:#x}, shard {}, {} job(s), {:.1} s: {} sequences, {} ops in {} batches \
             ({:.0} ops/s, {:.1} ops/batch), {} failure(s)",
            self.seed,
            self.shard,
            self.jobs,
            secs,
            self.sequences,
            self.ops,
            self.batches,
            self.ops as f64 / secs,
            self.ops as f64 / self.batches.max(1) as f64,
            self.failures.len()
        )?;
        let figure = |x: Option<(Duration, usize)>| {
            x.map_or("not measured".to_string(), |(d, n)| {
                format!("{} (median of {n})", ms(d))
            })
        };
        writeln!(
            f,
            "fresh state per sequence: boot {}, reset {}",
            figure(self.boot),
            figure(self.reset),
        )?;
        for note in &self.fresh {
            writeln!(f, "  {note}")?;
        }
        for found in &self.failures {
            writeln!(f, "FAILED: {}", found.failure)?;
            writeln!(f, "  trace ({} ops): {}", found.ops, found.path.display())?;
            match &found.minimized {
                Some(Ok(m)) => {
                    writeln!(f, "  {m}")?;
                    writeln!(f, "  reproduce: {} {}", self.replay, m.path.display())?;
                }
                Some(Err(e)) => {
                    writeln!(f, "  not minimized: {e}")?;
                    writeln!(f, "  reproduce: {} {}", self.replay, found.path.display())?;
                }
                None => writeln!(f, "  reproduce: {} {}", self.replay, found.path.display())?,
            }
        }
        Ok(())
    }
}
