//! The CI job (`host-runner ci`, and `host-runner` with no subcommand):
//! smoke, then every `testcases/*.jsonl` replayed on a fresh guest (judged
//! by the model, memory checked every K operations and at the end), then a
//! time-bounded fuzz campaign; one summary table; success only if all
//! passed. With a fuzz budget, a few seconds of wire fuzzing
//! ([`crate::wire`]) come before the campaign.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use trace::Outcome;

pub use crate::ci_row::{exit_class, table, CiRow};
use crate::error::{Error, Result};
use crate::exit_code::{Classify, ExitClass};
use crate::fuzz::{FreshState, FuzzArgs};
use crate::replay::{self, ReplayOptions};
use crate::session::{Transport, VmConfig};

/// Seconds of fuzzing in the CI job unless told otherwise.
pub const DEFAULT_FUZZ_SECS: u64 = 120;

/// The CI job's campaign seed unless told otherwise. CI fuzzes from a fixed
/// seed (how far it gets depends on the machine's speed) so that a red run
/// reproduces; exploring new seeds is `host-runner fuzz`'s job.
pub const DEFAULT_FUZZ_SEED: u64 = 0x005e_edc1;

/// What the CI job runs.
#[derive(Clone, Debug)]
pub struct CiPlan {
    /// The folder of traces (`testcases/`).
    pub testcases: PathBuf,
    /// Memory check every this many operations (and at each trace's end).
    pub check_every: usize,
    /// The fuzz campaign's time budget (zero: no campaign).
    pub fuzz_budget: Duration,
    /// The fuzz campaign's seed: fixed by default, so that a failure in CI
    /// is the same failure on the developer's machine.
    pub fuzz_seed: u64,
    /// Where the fuzz campaign saves failing traces.
    pub failures_dir: PathBuf,
    /// The command that replays a saved failure (printed with it).
    pub replay_command: String,
    /// Where the fuzz campaign's report goes (`--report DIR`), if anywhere.
    pub report_dir: Option<PathBuf>,
}

impl CiPlan {
    /// `testcases/` of this source tree, checks every 16 operations, 120 s
    /// of fuzzing from seed [`DEFAULT_FUZZ_SEED`], failures under
    /// `failures/`.
    pub fn new() -> Self {
        CiPlan {
            testcases: default_testcases(),
            check_every: 16,
            fuzz_budget: Duration::from_secs(DEFAULT_FUZZ_SECS),
            fuzz_seed: DEFAULT_FUZZ_SEED,
            failures_dir: PathBuf::from("failures"),
            replay_command: "host-runner replay".into(),
            report_dir: None,
        }
    }
}

impl Default for CiPlan {
    fn default() -> Self {
        Self::new()
    }
}

/// `testcases/` beside this crate.
pub fn default_testcases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testcases")
}

/// Every `*.jsonl` in `dir`, sorted.
pub fn corpus(dir: &Path) -> Result<Vec<PathBuf>> {
    trace::trace_files(dir).map_err(|e| Error::io(format!("listing {}", dir.display()), e))
}

/// Replays one trace file (quietly) and says how it went.
pub async fn replay_file(config: &VmConfig, path: &Path, check_every: usize) -> CiRow {
    let started = Instant::now();
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let trace = match replay::read_trace(path) {
        Ok(t) => t,
        Err(e) => {
            return CiRow {
                name,
                ops: 0,
                failure: Some(e.to_string()),
                class: e.exit_class(),
                time: started.elapsed(),
            }
        }
    };
    let opts = ReplayOptions {
        check_every: Some(check_every),
        ..ReplayOptions::default()
    };
    let run = replay::run(config, &trace, &opts, |_| {}).await;
    let (failure, class) = match &run.report.outcome {
        Outcome::Passed => (None, ExitClass::Passed),
        Outcome::Failed(f) => (Some(run.text.clone()), ExitClass::of_failure(f)),
    };
    CiRow {
        name,
        ops: trace.len(),
        failure,
        class,
        time: started.elapsed(),
    }
}

/// The CI job's fuzz campaign: the fuzz engine (`host-runner fuzz`,
/// [`crate::fuzz`]) for `budget` from `seed`, one guest per CPU (at most
/// 4), failures saved to `failures_dir` before anything else and
/// minimized (30 s); with `report`, its campaign report written there
/// (one that cannot be written is logged: the verdict stands). Which guest runs a sequence does not change its
/// trace; on a 2-CPU machine two guests run 22% more operations in the
/// same time than one (707 against 580 ops/s, measured).
pub async fn fuzz_campaign(
    config: &VmConfig,
    budget: Duration,
    seed: u64,
    failures_dir: &Path,
    replay_command: String,
    report: Option<&Path>,
) -> CiRow {
    let started = Instant::now();
    let args = FuzzArgs {
        seed: Some(seed),
        duration: Some(budget),
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
        out: failures_dir.to_owned(),
        fresh: FreshState::Auto,
        max_failures: 1,
        minimize_duration: Duration::from_secs(30),
        ..FuzzArgs::default()
    };
    let name = format!("fuzz ({}s)", budget.as_secs());
    match crate::fuzz::run(config, &args, replay_command).await {
        Ok(summary) => {
            if let Some(dir) = report {
                let doc = crate::fuzz::results::document(&summary);
                match crate::report::campaign::write(
                    dir,
                    &doc,
                    &summary.reached,
                    Some(&config.kernel),
                ) {
                    Ok(page) => tracing::info!("campaign report: {}", page.display()),
                    Err(e) => tracing::error!("no campaign report: {e}"),
                }
            }
            let failure = (!summary.failures.is_empty() || summary.interrupted.is_some())
                .then(|| summary.to_string());
            let ops = usize::try_from(summary.ops).unwrap_or(usize::MAX);
            CiRow {
                name,
                ops,
                class: match (summary.interrupted, failure.is_some()) {
                    (Some(signal), _) => ExitClass::Interrupted(signal),
                    (None, true) => ExitClass::VmmFailed,
                    (None, false) => ExitClass::Passed,
                },
                failure,
                time: started.elapsed(),
            }
        }
        Err(e) => CiRow {
            name,
            ops: 0,
            failure: Some(e.to_string()),
            class: e.exit_class(),
            time: started.elapsed(),
        },
    }
}

/// Runs the whole job; prints each failure's details as it happens, and
/// the table at the end. Returns the rows (the job passed when none failed).
pub async fn run(config: &VmConfig, plan: &CiPlan, print: impl Fn(&str)) -> Result<Vec<CiRow>> {
    let mut rows = Vec::new();
    let started = Instant::now();
    let smoke = crate::smoke::run(config).await;
    if let Ok(report) = &smoke {
        print(&format!("{report}\n"));
    }
    rows.push(CiRow {
        name: "smoke".into(),
        ops: 0,
        failure: smoke.as_ref().err().map(ToString::to_string),
        class: smoke
            .as_ref()
            .err()
            .map_or(ExitClass::Passed, Classify::exit_class),
        time: started.elapsed(),
    });
    let testcases = corpus(&plan.testcases)?;
    for path in &testcases {
        let row = replay_file(config, path, plan.check_every).await;
        if let Some(f) = &row.failure {
            print(&format!("--- {} FAILED\n{f}\n", row.name));
        }
        rows.push(row);
    }
    // The serial line stays a complete transport: the corpus passes on it
    // too (a few seconds), unless it was the transport already.
    if config.transport == Transport::Ring {
        let serial = VmConfig {
            transport: Transport::Serial,
            ..config.clone()
        };
        for path in &testcases {
            let mut row = replay_file(&serial, path, plan.check_every).await;
            row.name = format!("serial: {}", row.name);
            if let Some(f) = &row.failure {
                print(&format!("--- {} FAILED\n{f}\n", row.name));
            }
            rows.push(row);
        }
    }
    let row = crate::pressure::ci_row(config).await;
    if let Some(f) = &row.failure {
        print(&format!("--- {} FAILED\n{f}\n", row.name));
    }
    rows.push(row);
    if !plan.fuzz_budget.is_zero() {
        let budget = plan.fuzz_budget.min(crate::wire::CI_BUDGET);
        let row = crate::wire::ci_row(config, plan.fuzz_seed, budget).await;
        if let Some(f) = &row.failure {
            print(&format!("--- {} FAILED\n{f}\n", row.name));
        }
        rows.push(row);
        let replay = plan.replay_command.clone();
        let row = fuzz_campaign(
            config,
            plan.fuzz_budget,
            plan.fuzz_seed,
            &plan.failures_dir,
            replay,
            plan.report_dir.as_deref(),
        )
        .await;
        if let Some(f) = &row.failure {
            let what = match row.class {
                ExitClass::Interrupted(_) => "INTERRUPTED",
                _ => "FAILED",
            };
            print(&format!("--- fuzz {what}\n{f}\n"));
        }
        rows.push(row);
    }
    print(&table(&rows));
    print(&format!(
        "CI job: {:.1}s\n",
        started.elapsed().as_secs_f64()
    ));
    Ok(rows)
}
