//! The command line's argument groups: the CI job's and `replay`'s.

use std::path::PathBuf;

use host_runner::ci_job;
use host_runner::judge::MemorySource;

#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct CiArgs {
    /// Seconds of fuzzing after the corpus (0: none).
    #[arg(long, default_value_t = ci_job::DEFAULT_FUZZ_SECS, value_name = "SECS")]
    pub fuzz_secs: u64,
    /// Seed of that campaign (fixed by default, so a red CI run reproduces).
    #[arg(long, default_value_t = ci_job::DEFAULT_FUZZ_SEED, value_name = "SEED",
          value_parser = host_runner::args::parse_seed)]
    pub fuzz_seed: u64,
    /// Memory check every K operations of each trace (and at its end).
    #[arg(long, default_value_t = 16, value_name = "K")]
    pub check_every: usize,
    /// The folder of traces to replay.
    #[arg(long, value_name = "DIR")]
    pub testcases: Option<PathBuf>,
    /// Also write the rows as a JUnit XML report (a test case per row: a
    /// VMM failure is a `<failure>`, a fault of the machine an `<error>`).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the rows and the verdict as JSON (`"format":"vmmfuzz-ci"`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the fuzz campaign's report here (DIR/index.html, the
    /// failures' files beside it), as `fuzz --report`.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
}

impl Default for CiArgs {
    fn default() -> Self {
        CiArgs {
            fuzz_secs: ci_job::DEFAULT_FUZZ_SECS,
            fuzz_seed: ci_job::DEFAULT_FUZZ_SEED,
            check_every: 16,
            testcases: None,
            junit: None,
            json: None,
            report: None,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    pub trace: PathBuf,
    /// Memory check after each batch that brings the operations since the
    /// last check to N (0: only at the end); default: the trace's own
    /// cadence (its `check_every`), as it ran when it was saved.
    #[arg(long, value_name = "N")]
    pub check_every: Option<usize>,
    /// Where the memory check reads guest RAM.
    #[arg(long, value_enum, default_value_t = MemorySource::default())]
    pub memory: MemorySource,
    /// Skip the `info tlb` comparison in memory checks.
    #[arg(long)]
    pub no_tlb: bool,
    /// At a failure, replay again up to the operation before it and leave
    /// QEMU paused with a gdb stub on a unix socket; prints the gdb command.
    #[arg(long)]
    pub gdb: bool,
    /// At a failure, write an ELF core of the guest (dump-guest-memory).
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,
    /// Write an HTML report of the replay here: the verdict, the step
    /// table, the address space around the failing address (guest beside
    /// model), its page walk and the frame map. One self-contained file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Also write the replay as one JSON document: its outcome, whether a
    /// saved failure reproduced, every step (`"format":"vmmfuzz-replay"`).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// When log lines on stderr carry ANSI colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When stderr is a terminal and NO_COLOR is unset or empty.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour, given whether stderr is a terminal and the value
    /// of NO_COLOR (no-color.org: set and not empty means no colour).
    pub fn ansi(self, terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ColorChoice;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let auto = ColorChoice::Auto;
        assert!(auto.ansi(true, None));
        assert!(auto.ansi(true, Some(OsStr::new(""))));
        assert!(!auto.ansi(true, Some(OsStr::new("1"))));
        assert!(!auto.ansi(false, None));
        assert!(ColorChoice::Always.ansi(false, Some(OsStr::new("1"))));
        assert!(!ColorChoice::Never.ansi(true, None));
    }
}
