//! `host-runner`: the command line. With no subcommand it runs the CI job.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use host_runner::error_class::classify;
use host_runner::exit_code::{self, ExitClass, UsageError};
use host_runner::{check, ci_job, ci_results, interrupt, replay, report, smoke, RunnerOptions};

mod cli;
mod cli_args;
mod cli_profile;
use cli::{Cli, Command};
use cli_args::{CiArgs, ColorChoice};

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
        edge_counts: cli.edge_counts,
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
                let report = run.failure_report(&args.trace, &command);
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
            let (pages, errors) = outputs.write(&summary, Some(&config.kernel));
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
            return Ok(campaign_exit("fuzz", &summary, class));
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
        Command::Profile(args) => return cli_profile::run(&options, &args).await,
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
                reuse: host_runner::judge::target::Reuse::ResetBetween,
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
/// The exit class of a campaign (`fuzz`, `profile`): interrupted, a VMM
/// failure found, or `otherwise` (what became of its outputs); says which.
fn campaign_exit(
    what: &str,
    summary: &host_runner::fuzz::Summary,
    otherwise: ExitClass,
) -> ExitClass {
    if let Some(signal) = summary.interrupted {
        eprintln!("{what} interrupted by {signal}: QEMU killed");
        return ExitClass::Interrupted(signal);
    }
    if !summary.failures.is_empty() {
        eprintln!("{what} found {} failure(s)", summary.failures.len());
        return ExitClass::VmmFailed;
    }
    otherwise
}

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
                let class = classify(&e);
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
