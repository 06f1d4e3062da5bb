//! The campaign's report (its options, the `fuzz` command line, are in
//! [`crate::args::fuzz`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use trace::{Failure, Shard};

use super::coverage::Coverage;
use crate::minimize::MinimizeReport;

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
    /// Each part's median over the judged resets: the guest's `Reset` and
    /// `Stats`, judging them, the check of the fresh state; and in
    /// `resets`, the most `Reset`s one judged reset sent.
    pub reset_parts: Option<crate::judge::ResetParts>,
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
        let fine = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
        let parts = self.reset_parts.map_or(String::new(), |p| {
            let again = if p.resets > 1 {
                format!(
                    "; up to {} Resets in one (a reset gave back many heap pages)",
                    p.resets
                )
            } else {
                String::new()
            };
            format!(
                ", of which (each part's median) the guest's Reset and Stats {}, \
                 judging them {}, the check of the fresh state {}{again}",
                fine(p.guest),
                fine(p.model),
                fine(p.check)
            )
        });
        format!(
            "boot {}, reset {}{parts}",
            figure(self.boot),
            figure(self.reset)
        )
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
