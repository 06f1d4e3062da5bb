//! `host-runner fuzz`'s options: the campaign's settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use trace::{files_of_pages, FileSpec, Shard, DEFAULT_FILE_PAGES};

use super::{parse_duration, parse_seed};

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
    /// Guests at once, each with a thread of its own in the runner.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// How long each guest looks for its next request before it sleeps,
    /// in ticks of its time-stamp counter (default: the guest's 1,000,000,
    /// about 0.4 ms at 2.5 GHz, while cores outnumber guests; else 0, so
    /// that no guest holds a core another needs). Whatever it is, a guest
    /// sleeps through the memory check at each sequence's end, and through
    /// the check of each fresh state while cores outnumber guests.
    #[arg(long, value_name = "TICKS")]
    pub guest_spin: Option<u64>,
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
    /// Time for minimizing each new failure (the same default as
    /// `minimize`'s).
    #[arg(long, default_value = super::MINIMIZE_BUDGET, value_parser = parse_duration)]
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
