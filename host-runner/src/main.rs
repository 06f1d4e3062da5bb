//! `host-runner`: the command line. With no subcommand it runs the CI job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use host_runner::exit_code::{self, ExitClass, UsageError};
use host_runner::judge::MemorySource;
use host_runner::{
    check, ci_job, ci_results, interrupt, replay, report, smoke, AccelChoice, RunnerOptions,
    Transport,
};

mod cli_args;
use cli_args::{CiArgs, ColorChoice, ReplayArgs};

/// Boots the vmmfuzz guest kernel under QEMU and drives its VMM over a
/// serial RPC.
#[derive(Debug, Parser)]
#[command(version, about, after_help = exit_code::EXIT_CODES_HELP)]
struct Cli {
    /// QEMU binary (default: $VMMFUZZ_QEMU, else qemu-system-x86_64 in PATH).
    #[arg(long, global = true, value_name = "PATH")]
    qemu: Option<PathBuf>,
    /// Guest kernel ELF (default: $VMMFUZZ_GUEST_KERNEL, else the one the build made).
    #[arg(long, global = true, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// Accelerator; `auto` measures both once per machine and caches the verdict.
    #[arg(long, global = true, value_enum, default_value_t = AccelChoice::Auto)]
    accel: AccelChoice,
    /// Measure the accelerators again instead of using the cached verdict.
    #[arg(long, global = true)]
    remeasure_accel: bool,
    /// Guest RAM in MiB.
    #[arg(long, global = true, default_value_t = 128, value_name = "MIB")]
    ram: u32,
    /// Timeout of one request, in milliseconds (default: 10000, or 100×
    /// the accelerator's probe time when `auto` measured it slower).
    #[arg(long, global = true, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// How requests and answers travel after the handshake: the
    /// shared-memory ring (with shared guest RAM), or the serial line.
    #[arg(long, global = true, value_enum, default_value_t = Transport::Ring)]
    transport: Transport,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Colours in log lines: `auto` colours only when stderr is a
    /// terminal and NO_COLOR is unset or empty.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    #[command(subcommand)]
    command: Option<Command>,
    /// The CI job's options, when no subcommand is given (`ci` takes the
    /// same after it).
    #[command(flatten)]
    ci: CiArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// Shrink a failing trace to the smallest that fails the same way;
    /// writes TRACE-min.jsonl beside it (TRACE-min-flaky.jsonl when its
    /// reruns did not all reproduce). Exits 1 (the VMM fails the trace),
    /// or 0 when the trace passes (nothing to minimize).
    Minimize {
        trace: PathBuf,
        /// Time for the whole search; the best trace so far is kept.
        #[arg(long, default_value = "5m", value_parser = host_runner::fuzz::plan::parse_duration)]
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

/// Log lines on stderr, one per event, coloured as `color` says.
fn init_tracing(verbose: u8, color: ColorChoice) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        // QEMU closes its QMP socket as it exits, which the qapi crate
        // reports as a warning ("QAPI stream closed with error"): expected
        // on every shutdown, so not shown unless asked for (-v).
        0 => "info,qapi::futures=error",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let no_color = std::env::var_os("NO_COLOR");
    let ansi = color.ansi(std::io::stderr().is_terminal(), no_color.as_deref());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitClass> {
    let options = RunnerOptions {
        qemu: cli.qemu,
        kernel: cli.kernel,
        accel: cli.accel,
        ram_mib: Some(cli.ram),
        request_timeout: cli.timeout_ms.map(Duration::from_millis),
        remeasure_accel: cli.remeasure_accel,
        transport: cli.transport,
    };
    if cli.command.is_some() && cli.ci != CiArgs::default() {
        return Err(UsageError(
            "--fuzz-secs, --fuzz-seed, --check-every, --testcases, --junit, --json and --report \
             go with \
             the CI job \
             (no subcommand, or after `ci`)"
                .into(),
        )
        .into());
    }
    match cli.command.unwrap_or(Command::Ci(cli.ci)) {
        Command::Ci(args) => {
            let config = host_runner::config(&options).await?;
            let mut plan = ci_job::CiPlan::new();
            plan.fuzz_budget = Duration::from_secs(args.fuzz_secs);
            plan.fuzz_seed = args.fuzz_seed;
            plan.check_every = args.check_every;
            plan.report_dir = args.report;
            plan.replay_command = host_runner::fuzz::replay_command(&options);
            if let Some(dir) = args.testcases {
                plan.testcases = dir;
            }
            let started = std::time::Instant::now();
            let rows = ci_job::run(&config, &plan, |s| print!("{s}")).await?;
            let total = started.elapsed();
            let mut class = ci_job::exit_class(&rows);
            // A results file that cannot be written is an environment
            // error, said after the table; a VMM failure found stays the
            // exit code.
            let written = [
                (&args.junit, ci_results::junit(&rows, total)),
                (&args.json, Ok(ci_results::json(&rows, total))),
            ];
            for (path, text) in written {
                let Some(path) = path else { continue };
                if let Err(e) = text.and_then(|t| ci_results::write_atomically(path, &t)) {
                    eprintln!("error (environment or tool error): {e}");
                    class = class.worst(ExitClass::Environment);
                }
            }
            if class != ExitClass::Passed {
                let failed = rows.iter().filter(|r| r.failure.is_some()).count();
                eprintln!("CI job: {failed} failed ({class})");
            }
            return Ok(class);
        }
        Command::Replay(args) => {
            let trace = replay::read_trace(&args.trace)?;
            host_runner::check_input(&options, Some(&trace))?;
            let config = host_runner::config(&options).await?;
            let opts = replay::ReplayOptions {
                check_every: args.check_every,
                memory: args.memory,
                tlb_check: !args.no_tlb,
                gdb: args.gdb,
                dump: args.dump,
            };
            let run = replay::run(&config, &trace, &opts, |s| print!("{s}")).await;
            if let Some(path) = &args.report {
                let command = host_runner::fuzz::replay_command(&options);
                let report = report::FailureReport::from_replay(&args.trace, &command, &run);
                // The verdict stands whether or not the report is written.
                match report::write(path, &report) {
                    Ok(()) => println!("report written to {}", path.display()),
                    Err(e) => eprintln!("warning: no report written to {}: {e}", path.display()),
                }
            }
            let mut class = run.exit_class();
            if let Some(path) = &args.json {
                let doc = replay::results::json(&args.trace, &run);
                if let Err(e) = ci_results::write_atomically(path, &doc) {
                    eprintln!("error (environment or tool error): {e}");
                    class = class.worst(ExitClass::Environment);
                }
            }
            if let (true, Some(f)) = (opts.gdb, run.report.outcome.failure()) {
                let stop = f.op_index.unwrap_or(trace.len());
                replay::pause_for_gdb(&config, &trace, &opts, stop, |s| print!("{s}")).await?;
            }
            if class != ExitClass::Passed {
                eprintln!("replay of {} failed ({class})", args.trace.display());
            }
            return Ok(class);
        }
        Command::Check {
            trace,
            memory,
            no_tlb,
            json,
        } => {
            let trace = trace.map(|p| replay::read_trace(&p)).transpose()?;
            host_runner::check_input(&options, trace.as_ref())?;
            let config = host_runner::config(&options).await?;
            let run = match check::run(&config, trace.as_ref(), memory, !no_tlb).await {
                Ok(run) => run,
                Err(f) => {
                    eprintln!("check: {f}");
                    return Ok(ExitClass::of_failure(&f));
                }
            };
            print!("{}", check::format_report(&run));
            let mut class = ExitClass::Passed;
            if let Some(path) = json {
                if let Err(e) = ci_results::write_atomically(&path, &check::json(&run)) {
                    eprintln!("error (environment or tool error): {e}");
                    class = ExitClass::Environment;
                }
            }
            if !run.passed() {
                eprintln!("check: invariants violated");
                return Ok(ExitClass::VmmFailed);
            }
            if class != ExitClass::Passed {
                return Ok(class);
            }
        }
        Command::Smoke => {
            let config = host_runner::config(&options).await?;
            let report = smoke::run(&config).await.context("smoke")?;
            println!("{report}");
        }
        Command::Bench(args) => host_runner::bench::cli::run(&options, &args).await?,
        Command::Fuzz {
            args, wire: true, ..
        } => {
            let config = host_runner::config(&options).await?;
            let report =
                host_runner::wire::run(&config, &wire_plan(&args), |s| eprint!("{s}")).await;
            print!("{report}");
            return Ok(report.exit_class());
        }
        Command::Fuzz {
            mut args,
            coverage_out,
            json,
            report,
            results,
            ..
        } => {
            if let Some(dir) = &results {
                host_runner::fuzz::results_dir::aim(&mut args, dir);
            }
            let files = trace::Trace::new(trace::TraceHeader {
                files: args.files.0.clone(),
                ..Default::default()
            });
            host_runner::check_input(&options, Some(&files))?;
            let config = host_runner::config(&options).await?;
            let replay = host_runner::fuzz::replay_command(&options);
            let summary = host_runner::fuzz::run(&config, &args, replay).await?;
            print!("{summary}");
            if let Some(path) = coverage_out {
                summary.reached.save(&path)?;
            }
            // After the summary: a file that cannot be written is said, and
            // a failure found stays the exit code.
            let outputs = host_runner::fuzz::results_dir::Outputs {
                json,
                results,
                report,
            };
            let (pages, errors) = outputs.write(&summary, options.kernel.as_deref());
            for page in pages {
                println!("campaign report: {}", page.display());
            }
            for e in &errors {
                eprintln!("error (environment or tool error): {e}");
            }
            let class = match errors.is_empty() {
                true => ExitClass::Passed,
                false => ExitClass::Environment,
            };
            if let Some(signal) = summary.interrupted {
                eprintln!("fuzz interrupted by {signal}: QEMU killed");
                return Ok(ExitClass::Interrupted(signal));
            }
            if !summary.failures.is_empty() {
                eprintln!("fuzz found {} failure(s)", summary.failures.len());
                return Ok(ExitClass::VmmFailed);
            }
            return Ok(class);
        }
        Command::Merge(args) => {
            let merged =
                host_runner::merge::run(&args.shards, &args.out, options.kernel.as_deref())?;
            print!("{merged}");
            if !merged.doc.failures.is_empty() {
                return Ok(ExitClass::VmmFailed);
            }
        }
        Command::Coverage(args) => {
            let report = host_runner::coverage::cli::run(&options, &args).await?;
            print!("{}", report.text);
            if report.failures > 0 {
                return Ok(ExitClass::VmmFailed);
            }
        }
        Command::Minimize {
            trace,
            duration,
            check_every,
            reruns,
        } => {
            let read = replay::read_trace(&trace)?;
            host_runner::check_input(&options, Some(&read))?;
            let config = host_runner::config(&options).await?;
            let opts = host_runner::minimize::MinimizeOptions {
                judge: host_runner::judge::JudgeOptions::default(),
                reuse: host_runner::judge::target::Reuse::FreshBoot,
                duration,
                check_every,
                reruns,
            };
            let log =
                |s: &trace::minimize::Step| eprintln!("{}", host_runner::minimize::step_line(s));
            let report =
                host_runner::minimize::minimize_trace(&config, read, &trace, &opts, log).await;
            let report = match report {
                Err(e @ host_runner::minimize::MinimizeError::Passes { .. }) => {
                    println!("passed: {e}");
                    return Ok(ExitClass::Passed);
                }
                r => r?,
            };
            println!("{report}");
            println!(
                "reproduce: {} {}",
                host_runner::fuzz::replay_command(&options),
                report.path.display()
            );
            // The trace still fails: the VMM has the bug it reproduces.
            return Ok(ExitClass::VmmFailed);
        }
    }
    Ok(ExitClass::Passed)
}

/// The wire campaign `fuzz --wire` describes.
fn wire_plan(args: &host_runner::fuzz::FuzzArgs) -> host_runner::wire::WirePlan {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let bursts = args.sequences.unwrap_or(if args.duration.is_some() {
        u64::MAX
    } else {
        100
    });
    let mut again = format!("host-runner fuzz --wire --seed {seed:#x}");
    if let Some(n) = args.sequences {
        again.push_str(&format!(" --sequences {n}"));
    }
    if let Some(d) = args.duration {
        again.push_str(&format!(" --duration {}s", d.as_secs().max(1)));
    }
    host_runner::wire::WirePlan {
        seed,
        bursts,
        duration: args.duration,
        out: args.out.clone(),
        again,
    }
}

/// Waits for Ctrl-C, SIGTERM or SIGHUP; returns the signal to end with.
/// While a part of the run answers signals itself (a fuzz campaign writing
/// its summary), waits for the run to end instead, up to a bound or a
/// second signal.
async fn interrupted(mut listener: interrupt::Listener) -> interrupt::Signal {
    let signal = listener.recv().await;
    if interrupt::claimed() {
        let _ = tokio::time::timeout(interrupt::CLAIM_GRACE, listener.recv()).await;
    }
    signal
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.color);
    // On a signal the job is dropped, and with it its `Vm`, which kills QEMU.
    let listener = interrupt::Listener::new();
    tokio::select! {
        result = run(cli) => match result {
            Ok(class) => ExitCode::from(class.code()),
            Err(e) => {
                let class = exit_code::classify(&e);
                eprintln!("error ({class}): {}", exit_code::error_text(&e));
                ExitCode::from(class.code())
            }
        },
        signal = interrupted(listener) => {
            eprintln!("interrupted by {signal}: QEMU killed");
            ExitCode::from(signal.exit_code())
        }
    }
}
