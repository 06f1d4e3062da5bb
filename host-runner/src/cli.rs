//! The command line's shape: the global options and the subcommands
//! (`main.rs` runs them).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use host_runner::edge_counts::EdgeCounts;
use host_runner::exit_code;
use host_runner::judge::MemorySource;
use host_runner::{AccelChoice, Transport};

use crate::cli_args::{CiArgs, ColorChoice, ReplayArgs};

/// Boots the vmmfuzz guest kernel under QEMU and drives its VMM over a
/// serial RPC.
#[derive(Debug, Parser)]
#[command(version, about, after_help = exit_code::EXIT_CODES_HELP)]
pub struct Cli {
    /// QEMU binary (default: $VMMFUZZ_QEMU, else qemu-system-x86_64 in PATH).
    #[arg(long, global = true, value_name = "PATH")]
    pub qemu: Option<PathBuf>,
    /// Guest kernel ELF (default: $VMMFUZZ_GUEST_KERNEL, else the one the build made).
    #[arg(long, global = true, value_name = "PATH")]
    pub kernel: Option<PathBuf>,
    /// Accelerator; `auto` measures both once per machine and caches the verdict.
    #[arg(long, global = true, value_enum, default_value_t = AccelChoice::Auto)]
    pub accel: AccelChoice,
    /// Measure the accelerators again instead of using the cached verdict.
    #[arg(long, global = true)]
    pub remeasure_accel: bool,
    /// Guest RAM in MiB.
    #[arg(long, global = true, default_value_t = 128, value_name = "MIB")]
    pub ram: u32,
    /// Timeout of one request, in milliseconds (default: 10000, or 100×
    /// the accelerator's probe time when `auto` measured it slower).
    #[arg(long, global = true, value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// How requests and answers travel after the handshake: the
    /// shared-memory ring (with shared guest RAM), or the serial line.
    #[arg(long, global = true, value_enum, default_value_t = Transport::Ring)]
    pub transport: Transport,
    /// Who counts the guest's code edges for the corpus and the coverage
    /// reports: `auto` lets QEMU count under TCG (a plugin counting the
    /// blocks of the kernel built without SanitizerCoverage, which costs
    /// the guest nothing) and the kernel's own counters otherwise; `qemu`
    /// or `sancov` insist on one.
    #[arg(long, global = true, value_enum, default_value_t = EdgeCounts::Auto)]
    pub edge_counts: EdgeCounts,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Colours in log lines: `auto` colours only when stderr is a
    /// terminal and NO_COLOR is unset or empty.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The CI job's options, when no subcommand is given (`ci` takes the
    /// same after it).
    #[command(flatten)]
    pub ci: CiArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// What CI runs (the default): smoke, every testcases/*.jsonl replayed
    /// with the model and memory checks, a time-bounded fuzz campaign; one
    /// summary table; fails unless all passed.
    Ci(CiArgs),
    /// Replay a trace on a fresh guest: the step table, judged by the model
    /// and memory checks; at the first failure the decoded page walk around
    /// the failing address. A trace saved for a failure ends with one
    /// verdict line: `reproduced`, `reproduced earlier`, `different
    /// failure` or `passed`. Exits 1 when the VMM failed in any way, 0
    /// when the trace passed.
    Replay(ReplayArgs),
    /// Boot, run a trace (or a built-in workload), check guest memory:
    /// every invariant's verdict, counts, timings. Fails on any violation.
    Check {
        /// Run this trace first instead of the built-in workload.
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// The memory source reported first (both are timed).
        #[arg(long, value_enum, default_value_t = MemorySource::default())]
        memory: MemorySource,
        /// Skip the `info tlb` comparison (CR3 is still compared).
        #[arg(long)]
        no_tlb: bool,
        /// Also write the verdicts as one JSON document
        /// (`"format":"vmmfuzz-check"`).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Boot, handshake, a ping batch, a memory check through QMP, shutdown.
    Smoke,
    /// What the fuzzer's parts cost, as one table of medians (and --json):
    /// boot, round trips and batches per transport, fresh state, in-guest
    /// vs in-process, end-to-end campaigns, checks; per accelerator (KVM
    /// and TCG when both work, or the one --accel names).
    Bench(host_runner::bench::cli::BenchArgs),
    /// Fuzz the VMM: seeded sequences, judged by the model and the memory
    /// checker; failures saved to --out, minimized, with the replay command.
    Fuzz {
        #[command(flatten)]
        args: host_runner::fuzz::FuzzArgs,
        /// Write what the campaign reached (guest edges, model transitions)
        /// here, as JSON, for `coverage --data`.
        #[arg(long, value_name = "FILE")]
        coverage_out: Option<PathBuf>,
        /// Also write the summary as one JSON document here
        /// (`"format":"vmmfuzz-fuzz"`; fields in the README).
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Fuzz the wire instead: seeded bursts of hostile bytes on the
        /// serial line (--sequences bursts, default 100; --duration, --seed
        /// and --out as for sequences), each followed by a Ping, a judged
        /// Reset, the memory check and Stats compared with before.
        #[arg(long)]
        wire: bool,
        /// Also write the campaign report here: DIR/index.html (figures,
        /// operations over time, failures by signature linking to their
        /// reports, answers, guest coverage by line, model transitions),
        /// the failures' files copied beside it.
        #[arg(long, value_name = "DIR", conflicts_with = "wire")]
        report: Option<PathBuf>,
        /// Leave everything in the result directory DIR, for `merge`:
        /// summary.json (as --json), coverage.json, corpus/ (as --corpus),
        /// failures/ (as --out) and the report index.html.
        #[arg(long, value_name = "DIR", conflicts_with_all = ["wire", "out", "corpus"])]
        results: Option<PathBuf>,
    },
    /// Merge the result directories of a campaign's shards (`fuzz
    /// --shard i/n --results DIR`) into one: failures deduplicated by
    /// signature (the shortest reproducer kept), corpora and coverage
    /// merged, one summary.json and one report. Exits 1 when the merged
    /// campaign has failures.
    Merge(host_runner::merge::MergeArgs),
    /// Which functions and lines of guest/core and guest/kernel the fuzzer
    /// reached, and how often, with the model's transition table: from a
    /// campaign run now (the `fuzz` options) and/or saved coverage (--data).
    Coverage(host_runner::coverage::cli::CoverageArgs),
    /// Where the guest's VMM spends its time: a fuzz campaign (the `fuzz`
    /// options) on a kernel built with frame pointers, sampled --rate
    /// times a second through a second QEMU monitor; prints the share
    /// halted and spinning (waiting for the host), the top functions
    /// inclusive and self, the hottest leaf<-caller pairs; writes the
    /// folded stacks (profile.folded, for flame graph tools) to --out.
    /// Exits as `fuzz`.
    Profile(host_runner::profile::ProfileArgs),
    /// Shrink a failing trace to the smallest that fails the same way;
    /// writes TRACE-min.jsonl beside it (TRACE-min-flaky.jsonl when its
    /// reruns did not all reproduce). Exits 1 (the VMM fails the trace),
    /// or 0 when the trace passes (nothing to minimize).
    Minimize {
        trace: PathBuf,
        /// Time for the whole search; the best trace so far is kept.
        #[arg(long, default_value = host_runner::args::MINIMIZE_BUDGET,
              value_parser = host_runner::args::parse_duration)]
        duration: Duration,
        /// Memory check cadence of each attempt (0: only at its end);
        /// default: the trace's own.
        #[arg(long, value_name = "K")]
        check_every: Option<usize>,
        /// Runs of the minimized trace afterwards: its reproduction rate
        /// goes in its header; under every run, it is labelled flaky.
        #[arg(long, default_value_t = 3, value_name = "N")]
        reruns: u32,
    },
}
