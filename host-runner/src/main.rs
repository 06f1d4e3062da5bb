//! `host-runner`: the command line. With no subcommand it runs the CI job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use host_runner::bench::{self, BenchPlan};
use host_runner::judge::MemorySource;
use host_runner::{accel, check, ci_job, replay, smoke, AccelChoice, RunnerOptions, Transport};

/// Boots the vmmfuzz guest kernel under QEMU and drives its VMM over a
/// serial RPC.
#[derive(Debug, Parser)]
#[command(version, about)]
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
    /// Timeout of one request, in milliseconds.
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    /// How requests and answers travel after the handshake: the
    /// shared-memory ring (with shared guest RAM), or the serial line.
    #[arg(long, global = true, value_enum, default_value_t = Transport::Ring)]
    transport: Transport,
    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
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
    /// the failing address. Fails unless the trace passes.
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
    },
    /// Boot, handshake, a ping batch, a memory check through QMP, shutdown.
    Smoke,
    /// Boot time, round-trip latency and batched throughput (medians), for
    /// KVM and TCG both when both work (or the one --accel names).
    Bench {
        #[arg(long, default_value_t = 5)]
        boots: usize,
        #[arg(long, default_value_t = 200)]
        round_trips: usize,
        #[arg(long, default_value_t = 20)]
        batches: usize,
        #[arg(long, default_value_t = 500)]
        batch_size: usize,
        /// Batches of VMM work (map, write, read, unmap, page faults).
        #[arg(long, default_value_t = 5)]
        vmm_batches: usize,
        /// Instead: the guest's cost per kind of operation, over this many
        /// generated operations sent one by one.
        #[arg(long, value_name = "OPS")]
        op_costs: Option<usize>,
    },
    /// Fuzz the VMM: seeded sequences, judged by the model and the memory
    /// checker; failures saved to --out, minimized, with the replay command.
    Fuzz {
        #[command(flatten)]
        args: host_runner::fuzz::FuzzArgs,
        /// Write what the campaign reached (guest edges, model transitions)
        /// here, as JSON, for `coverage --data`.
        #[arg(long, value_name = "FILE")]
        coverage_out: Option<PathBuf>,
    },
    /// Which functions and lines of guest/core and guest/kernel the fuzzer
    /// reached, and how often, with the model's transition table: from a
    /// campaign run now (the `fuzz` options) and/or saved coverage (--data).
    Coverage(host_runner::coverage::cli::CoverageArgs),
    /// Shrink a failing trace to the smallest that fails the same way;
    /// writes TRACE-min.jsonl beside it.
    Minimize {
        trace: PathBuf,
        /// Time for the whole search; the best trace so far is kept.
        #[arg(long, default_value = "5m", value_parser = host_runner::fuzz::plan::parse_duration)]
        duration: Duration,
        /// Memory check cadence of each attempt (0: only at its end);
        /// default: the trace's own.
        #[arg(long, value_name = "K")]
        check_every: Option<usize>,
    },
}

#[derive(Debug, PartialEq, Eq, clap::Args)]
struct CiArgs {
    /// Seconds of fuzzing after the corpus (0: none).
    #[arg(long, default_value_t = ci_job::DEFAULT_FUZZ_SECS, value_name = "SECS")]
    fuzz_secs: u64,
    /// Seed of that campaign (fixed by default, so a red CI run reproduces).
    #[arg(long, default_value_t = ci_job::DEFAULT_FUZZ_SEED, value_name = "SEED",
          value_parser = host_runner::fuzz::summary::parse_seed)]
    fuzz_seed: u64,
    /// Memory check every K operations of each trace (and at its end).
    #[arg(long, default_value_t = 16, value_name = "K")]
    check_every: usize,
    /// The folder of traces to replay.
    #[arg(long, value_name = "DIR")]
    testcases: Option<PathBuf>,
}

impl Default for CiArgs {
    fn default() -> Self {
        CiArgs {
            fuzz_secs: ci_job::DEFAULT_FUZZ_SECS,
            fuzz_seed: ci_job::DEFAULT_FUZZ_SEED,
            check_every: 16,
            testcases: None,
        }
    }
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    trace: PathBuf,
    /// Memory check after each batch that brings the operations since the
    /// last check to N (0: only at the end); default: the trace's own
    /// cadence (its `check_every`), as it ran when it was saved.
    #[arg(long, value_name = "N")]
    check_every: Option<usize>,
    /// Where the memory check reads guest RAM.
    #[arg(long, value_enum, default_value_t = MemorySource::default())]
    memory: MemorySource,
    /// Skip the `info tlb` comparison in memory checks.
    #[arg(long)]
    no_tlb: bool,
    /// At a failure, replay again up to the operation before it and leave
    /// QEMU paused with a gdb stub on a unix socket; prints the gdb command.
    #[arg(long)]
    gdb: bool,
    /// At a failure, write an ELF core of the guest (dump-guest-memory).
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
}

fn init_tracing(verbose: u8) {
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
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let options = RunnerOptions {
        qemu: cli.qemu,
        kernel: cli.kernel,
        accel: cli.accel,
        ram_mib: Some(cli.ram),
        request_timeout: Some(Duration::from_millis(cli.timeout_ms)),
        remeasure_accel: cli.remeasure_accel,
        transport: cli.transport,
    };
    if cli.command.is_some() && cli.ci != CiArgs::default() {
        anyhow::bail!("--fuzz-secs, --fuzz-seed, --check-every and --testcases go with the CI job (no subcommand, or after `ci`)");
    }
    match cli.command.unwrap_or(Command::Ci(cli.ci)) {
        Command::Ci(args) => {
            let config = host_runner::config(&options).await?;
            let mut plan = ci_job::CiPlan::new();
            plan.fuzz_budget = Duration::from_secs(args.fuzz_secs);
            plan.fuzz_seed = args.fuzz_seed;
            plan.check_every = args.check_every;
            plan.replay_command = host_runner::fuzz::replay_command(&options);
            if let Some(dir) = args.testcases {
                plan.testcases = dir;
            }
            let rows = ci_job::run(&config, &plan, |s| print!("{s}")).await?;
            let failed = rows.iter().filter(|r| r.failure.is_some()).count();
            anyhow::ensure!(failed == 0, "CI job: {failed} failed");
        }
        Command::Replay(args) => {
            let config = host_runner::config(&options).await?;
            let trace = replay::read_trace(&args.trace)?;
            let opts = replay::ReplayOptions {
                check_every: args.check_every,
                memory: args.memory,
                tlb_check: !args.no_tlb,
                gdb: args.gdb,
                dump: args.dump,
            };
            let run = replay::run(&config, &trace, &opts, |s| print!("{s}")).await;
            if let (true, Some(f)) = (opts.gdb, run.report.outcome.failure()) {
                let stop = f.op_index.unwrap_or(trace.len());
                replay::pause_for_gdb(&config, &trace, &opts, stop, |s| print!("{s}")).await?;
            }
            anyhow::ensure!(run.passed(), "replay of {} failed", args.trace.display());
        }
        Command::Check {
            trace,
            memory,
            no_tlb,
        } => {
            let config = host_runner::config(&options).await?;
            let trace = trace.map(|p| replay::read_trace(&p)).transpose()?;
            let run = check::run(&config, trace.as_ref(), memory, !no_tlb)
                .await
                .map_err(|f| anyhow::anyhow!("check: {f}"))?;
            print!("{}", check::format_report(&run));
            anyhow::ensure!(run.passed(), "check: invariants violated");
        }
        Command::Smoke => {
            let config = host_runner::config(&options).await?;
            let report = smoke::run(&config).await.context("smoke")?;
            println!("{report}");
        }
        Command::Bench {
            boots,
            round_trips,
            batches,
            batch_size,
            vmm_batches,
            op_costs,
        } => {
            if let Some(n) = op_costs {
                let mut config = host_runner::config(&options).await?;
                config.files = trace::files_of_pages(&trace::DEFAULT_FILE_PAGES);
                print!("{}", bench::op_costs(&config, n, 1).await?);
                return Ok(());
            }
            let base = host_runner::base_config(&options)?;
            let accels = match options.accel {
                AccelChoice::Auto => accel::available(),
                AccelChoice::Kvm => vec![host_runner::Accel::Kvm],
                AccelChoice::Tcg => vec![host_runner::Accel::Tcg],
            };
            let plan = BenchPlan {
                boots,
                round_trips,
                batches,
                batch_size,
                vmm_batches,
            };
            let mut results = Vec::new();
            for a in accels {
                tracing::info!("bench: {a}…");
                let r = bench::bench(&base, a, plan)
                    .await
                    .with_context(|| format!("bench under {a}"))?;
                results.push(r);
            }
            print!("{}", bench::table(plan, &results));
        }
        Command::Fuzz { args, coverage_out } => {
            let config = host_runner::config(&options).await?;
            let replay = host_runner::fuzz::replay_command(&options);
            let summary = host_runner::fuzz::run(&config, &args, replay).await?;
            print!("{summary}");
            if let Some(path) = coverage_out {
                summary.reached.save(&path)?;
            }
            anyhow::ensure!(
                summary.failures.is_empty(),
                "fuzz found {} failure(s)",
                summary.failures.len()
            );
        }
        Command::Coverage(args) => print!(
            "{}",
            host_runner::coverage::cli::run(&options, &args).await?
        ),
        Command::Minimize {
            trace,
            duration,
            check_every,
        } => {
            let config = host_runner::config(&options).await?;
            let opts = host_runner::minimize::MinimizeOptions {
                judge: host_runner::judge::JudgeOptions::default(),
                reuse: host_runner::judge::target::Reuse::FreshBoot,
                duration,
                check_every,
            };
            let log =
                |s: &trace::minimize::Step| eprintln!("{}", host_runner::minimize::step_line(s));
            let report = host_runner::minimize::minimize_file(&config, &trace, &opts, log).await?;
            println!("{report}");
            println!(
                "reproduce: {} {}",
                host_runner::fuzz::replay_command(&options),
                report.path.display()
            );
        }
    }
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM or SIGHUP; returns the exit code to end with.
async fn interrupted() -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return 130;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => 130,
        _ = term.recv() => 143,
        _ = hup.recv() => 129,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    // On a signal the job is dropped, and with it its `Vm`, which kills QEMU.
    tokio::select! {
        result = run(cli) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        code = interrupted() => {
            eprintln!("interrupted: QEMU killed");
            ExitCode::from(code)
        }
    }
}
