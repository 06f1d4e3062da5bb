//! The campaign's options (the `fuzz` command line) and its report.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use trace::{files_of_pages, Failure, FileSpec, Shard, DEFAULT_FILE_PAGES};

use super::coverage::Coverage;
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

/// The files a campaign's guests boot with (`--files`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileList(pub Vec<FileSpec>);

/// `--files`: page counts separated by commas (`24,600`), or `none`.
pub fn parse_files(s: &str) -> Result<FileList, String> {
    if s.trim() == "none" {
        return Ok(FileList(Vec::new()));
    }
    let pages = s
        .split(',')
        .map(|p| match p.trim().parse::<u64>() {
            Ok(n) if (1..=1 << 16).contains(&n) => Ok(n),
            _ => Err(format!(
                "expected page counts from 1 to 65536 separated by commas (like 24,600), \
                 or none; got {p:?}"
            )),
        })
        .collect::<Result<Vec<u64>, String>>()?;
    if pages.len() > 255 {
        return Err(format!(
            "at most 255 files (map_file names one by a u8), got {}",
            pages.len()
        ));
    }
    Ok(FileList(files_of_pages(&pages)))
}

impl Default for FileList {
    fn default() -> Self {
        FileList(files_of_pages(&DEFAULT_FILE_PAGES))
    }
}

impl fmt::Display for FileList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let pages: Vec<String> = self.0.iter().map(|s| s.pages.to_string()).collect();
        f.write_str(&pages.join(","))
    }
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
    /// Operations per sequence (with swarm: the common length; some
    /// sequences run 5× or 25× as deep, without resets).
    #[arg(long, default_value_t = 200)]
    pub ops: usize,
    /// Every sequence with the same weights and length: no swarm testing
    /// (by default each sequence draws its own operation weights, some
    /// kinds off and one or two dominant, and its depth, from its seed;
    /// the trace header records the weights).
    #[arg(long)]
    pub no_swarm: bool,
    /// Keep the sequences that reach new guest edges or model transitions
    /// here (read back at the start: a corpus grows across campaigns).
    /// Without it the corpus lives in memory for this campaign only.
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// More traces to seed the corpus with (e.g. `testcases`); only those
    /// for the campaign's guest (RAM size, files) are used. Repeatable.
    #[arg(long, value_name = "DIR")]
    pub corpus_from: Vec<PathBuf>,
    /// The share of sequences that are corpus mutants (splice, insert,
    /// delete, repeat, change arguments) rather than freshly generated,
    /// once the corpus holds something; 0 turns mutation off.
    #[arg(long, default_value_t = 0.3, value_name = "P")]
    pub mutate: f64,
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
    /// Runs of each minimized trace afterwards: the rate it reproduced at
    /// goes in its header (`reproduced: "3/3"`); under every run, it is
    /// labelled flaky (header note, `-min-flaky.jsonl`, the summary).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub reruns: u32,
    /// The files each guest boots with, for `map_file`: their page counts
    /// (`24,600`; file i's bytes come from seed 0xf11e0000 + i), or `none`.
    #[arg(long, default_value_t = FileList::default(), value_parser = parse_files,
          value_name = "PAGES,…")]
    pub files: FileList,
}

impl Default for FuzzArgs {
    /// The command line's defaults.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            args: FuzzArgs,
        }
        <Defaults as clap::Parser>::parse_from(["fuzz"]).args
    }
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
    /// Time the jobs spent saving and minimizing failures, summed over
    /// jobs (not fuzzing: the rates leave it out).
    pub capturing: Duration,
    pub sequences: u64,
    pub ops: u64,
    /// Pages the answered operations touched ([`super::pages::pages_touched`]).
    pub pages: u64,
    pub batches: u64,
    /// Median boot and reset times, and what was used.
    pub boot: Option<(Duration, usize)>,
    pub reset: Option<(Duration, usize)>,
    /// How fresh states were made, and why (one line per job in `auto`).
    pub fresh: Vec<String>,
    /// Environment faults met and retried: QEMU killed from outside, a
    /// boot that failed on the host's side (never counted as failures).
    pub environment: Vec<String>,
    pub failures: Vec<FoundFailure>,
    /// The command line that replays a trace with this guest.
    pub replay: String,
    /// How the guest answered each kind of operation.
    pub coverage: Coverage,
    /// Where the jobs' time went.
    pub timings: crate::judge::Timings,
    /// Guest edges and model transitions reached (`crate::coverage`;
    /// `host-runner coverage` shows them by function and line).
    pub reached: crate::coverage::Coverage,
    /// The corpus line: what was kept and how many mutants ran.
    pub corpus: String,
    /// The signal that stopped the campaign before its end, if one did.
    pub interrupted: Option<crate::interrupt::Signal>,
    /// When interrupted: the traces in flight (each job's guest's
    /// operations since its boot, a hang awaiting its rerun).
    pub in_flight: Vec<PathBuf>,
    /// The counters over time ([`super::timeline`]), the end included.
    pub timeline: Vec<super::timeline::Sample>,
}

/// The campaign's guidance in one line: guest edges and model
/// transitions and events reached.
pub fn reached_line(r: &crate::coverage::Coverage) -> String {
    let guest = match r.edges_reached() {
        (_, 0) => "guest edges not read".to_string(),
        (hit, all) => format!(
            "guest edges {hit} of {all} ({:.1} %)",
            100.0 * hit as f64 / all as f64
        ),
    };
    format!(
        "reached: {guest}, model transitions {}, model events {} of {}",
        r.model.transitions_reached(),
        r.model.events_reached(),
        oracle::coverage::Event::ALL.len()
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

impl Summary {
    /// Wall time spent fuzzing: the campaign's less the time its jobs
    /// spent saving and minimizing failures (shared among the jobs).
    pub fn fuzzing_secs(&self) -> f64 {
        let jobs = self.jobs.max(1) as f64;
        (self.elapsed.as_secs_f64() - self.capturing.as_secs_f64() / jobs).max(1e-3)
    }

    /// Operations per second of fuzzing.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.fuzzing_secs()
    }

    /// The median boot and reset times (`boot 412.0 ms (median of 3),
    /// reset …`).
    pub fn fresh_line(&self) -> String {
        let figure = |x: Option<(Duration, usize)>| {
            x.map_or("not measured".to_string(), |(d, n)| {
                format!("{} (median of {n})", ms(d))
            })
        };
        format!("boot {}, reset {}", figure(self.boot), figure(self.reset))
    }

    /// Where the jobs' time went.
    pub fn time_line(&self) -> String {
        self.timings.split(self.elapsed * self.jobs as u32)
    }

    /// Pages the operations' ranges named, per second of fuzzing.
    pub fn pages_per_sec(&self) -> f64 {
        self.pages as f64 / self.fuzzing_secs()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-3);
        let fuzzing = self.fuzzing_secs();
        writeln!(
            f,
            "fuzz: seed {:#x}, shard {}, {} job(s), {:.1} s: {} sequences, {} ops in {} batches \
             ({:.0} ops/s and {:.0} pages touched/s over {:.1} s of fuzzing, {:.1} ops/batch), \
             {} failure(s)",
            self.seed,
            self.shard,
            self.jobs,
            secs,
            self.sequences,
            self.ops,
            self.batches,
            self.ops as f64 / fuzzing,
            self.pages as f64 / fuzzing,
            fuzzing,
            self.ops as f64 / self.batches.max(1) as f64,
            self.failures.len()
        )?;
        writeln!(f, "fresh state per sequence: {}", self.fresh_line())?;
        for note in &self.fresh {
            writeln!(f, "  {note}")?;
        }
        writeln!(f, "time: {}", self.time_line())?;
        if !self.coverage.is_empty() {
            write!(f, "{}", self.coverage)?;
        }
        writeln!(f, "{}", reached_line(&self.reached))?;
        if !self.corpus.is_empty() {
            writeln!(f, "{}", self.corpus)?;
        }
        if !self.environment.is_empty() {
            writeln!(
                f,
                "environment faults, retried (not VMM bugs, nothing saved): {}",
                self.environment.len()
            )?;
            for e in &self.environment {
                writeln!(f, "  {e}")?;
            }
        }
        if let Some(signal) = self.interrupted {
            writeln!(
                f,
                "INTERRUPTED by {signal}: the campaign stopped early, its guests killed; \
                 the figures above are up to then"
            )?;
            for path in &self.in_flight {
                writeln!(f, "  in flight: {}", path.display())?;
            }
            if self.in_flight.is_empty() {
                writeln!(f, "  no trace was in flight")?;
            }
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
