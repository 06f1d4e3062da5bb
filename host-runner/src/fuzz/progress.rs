//! What a campaign has done so far: counters the jobs update, the progress
//! bar (indicatif; hidden when stderr is not a terminal, then a log line
//! every half minute), and the fresh-state timings.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::coverage::Coverage;
use super::timeline::{Sample, Timeline};
use crate::judge::ResetParts;

/// How often the bar's message is refreshed, and the log line's period.
const TICK: Duration = Duration::from_millis(250);
const LOG_EVERY: Duration = Duration::from_secs(30);

/// The campaign's counters, shared by its jobs.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    pub sequences: AtomicU64,
    pub ops: AtomicU64,
    /// Pages the answered operations touched ([`super::pages::pages_touched`]).
    pub pages: AtomicU64,
    pub batches: AtomicU64,
    pub failures: AtomicU64,
    /// Times of fresh boots (until Ready and Hello) and of judged resets,
    /// each reset with its parts.
    pub boots: Mutex<Vec<Duration>>,
    pub resets: Mutex<Vec<(Duration, ResetParts)>>,
    /// The answers of every sequence so far.
    pub coverage: Mutex<Coverage>,
    /// Where the jobs' time went.
    pub timings: Mutex<crate::judge::Timings>,
    /// Time the jobs spent saving and minimizing failures (summed over
    /// jobs): not fuzzing.
    pub capturing: Mutex<Duration>,
    /// Guest edges and model transitions every sequence so far reached.
    pub reached: Mutex<crate::coverage::Coverage>,
    /// The counters sampled over time (for the campaign report).
    pub timeline: Mutex<Timeline>,
    bar: ProgressBar,
}

/// What the bar counts: sequences (`--sequences`) or seconds (`--duration`).
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    Sequences(u64),
    Time(Duration),
}

impl Progress {
    pub fn new(goal: Goal) -> Self {
        let (len, unit) = match goal {
            Goal::Sequences(n) => (n, "seq"),
            Goal::Time(d) => (d.as_secs().max(1), "s"),
        };
        let bar = ProgressBar::new(len);
        let template = format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress {
            started: Instant::now(),
            sequences: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            pages: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            boots: Mutex::new(Vec::new()),
            resets: Mutex::new(Vec::new()),
            coverage: Mutex::new(Coverage::default()),
            timings: Mutex::new(Default::default()),
            capturing: Mutex::new(Duration::ZERO),
            reached: Mutex::default(),
            timeline: Mutex::default(),
            bar,
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Operations per second so far.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops.load(Ordering::Relaxed) as f64 / self.elapsed().as_secs_f64().max(1e-3)
    }

    /// One line: sequences, operations, rate, failures.
    pub fn status(&self) -> String {
        format!(
            "{} seq, {} ops, {:.0} ops/s, {} failures",
            self.sequences.load(Ordering::Relaxed),
            self.ops.load(Ordering::Relaxed),
            self.ops_per_sec(),
            self.failures.load(Ordering::Relaxed)
        )
    }

    /// The counters now.
    pub fn sample(&self) -> Sample {
        Sample {
            seconds: self.elapsed().as_secs_f64(),
            sequences: self.sequences.load(Ordering::Relaxed),
            ops: self.ops.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// Samples the counters into the timeline when a sample is due, or
    /// always (`force`: the campaign's end).
    pub fn record_sample(&self, force: bool) {
        let mut t = self.timeline.lock().expect("not poisoned");
        let now = self.sample();
        if force || t.due(now.seconds) {
            t.record(now);
        }
    }

    /// A line above the bar (a failure, a minimization step).
    pub fn println(&self, line: impl AsRef<str>) {
        self.printer().println(line);
    }

    /// Prints above the bar from anywhere (a job's thread, its minimizer).
    pub fn printer(&self) -> Printer {
        Printer(self.bar.clone())
    }

    pub fn record_boot(&self, d: Duration) {
        self.boots.lock().expect("not poisoned").push(d);
    }

    pub fn record_reset(&self, d: Duration, parts: ResetParts) {
        self.resets.lock().expect("not poisoned").push((d, parts));
    }

    /// Median boot and reset times so far.
    pub fn fresh_state_medians(&self) -> (Option<Duration>, Option<Duration>) {
        let boots = median(&self.boots.lock().expect("not poisoned"));
        let resets = reset_median(&self.resets.lock().expect("not poisoned"));
        (boots, resets.map(|r| r.0))
    }

    /// Redraws the bar until `done` resolves; logs the status line every
    /// half minute when the bar is hidden (not a terminal).
    pub async fn tick(&self, goal: Goal, done: impl std::future::Future<Output = ()>) {
        tokio::pin!(done);
        let mut last_log = Instant::now();
        loop {
            let pos = match goal {
                Goal::Sequences(_) => self.sequences.load(Ordering::Relaxed),
                Goal::Time(_) => self.elapsed().as_secs(),
            };
            self.bar.set_position(pos);
            self.bar.set_message(self.status());
            self.record_sample(false);
            if self.bar.is_hidden() && last_log.elapsed() >= LOG_EVERY {
                tracing::info!("fuzz: {}", self.status());
                last_log = Instant::now();
            }
            tokio::select! {
                _ = &mut done => break,
                _ = tokio::time::sleep(TICK) => {}
            }
        }
        self.bar.finish_and_clear();
    }
}

/// Prints lines above the progress bar, or to stderr when it is hidden.
#[derive(Debug, Clone)]
pub struct Printer(ProgressBar);

impl Printer {
    pub fn println(&self, line: impl AsRef<str>) {
        if self.0.is_hidden() {
            eprintln!("{}", line.as_ref());
        } else {
            self.0.println(line);
        }
    }
}

/// The median of some durations.
pub fn median(v: &[Duration]) -> Option<Duration> {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// The median of the judged resets' times, and how many there were (none
/// without resets).
pub fn reset_median(resets: &[(Duration, ResetParts)]) -> Option<(Duration, usize)> {
    let times: Vec<Duration> = resets.iter().map(|r| r.0).collect();
    median(&times).map(|m| (m, times.len()))
}

/// Each part's median over `resets` (none without resets): where a
/// typical reset's time goes. The parts' medians need not add up to the
/// total's median; `resets` is the most `Reset`s one judged reset sent.
pub fn median_parts(resets: &[(Duration, ResetParts)]) -> Option<ResetParts> {
    let part = |f: fn(&ResetParts) -> Duration| {
        median(&resets.iter().map(|r| f(&r.1)).collect::<Vec<_>>())
    };
    Some(ResetParts {
        guest: part(|p| p.guest)?,
        model: part(|p| p.model)?,
        check: part(|p| p.check)?,
        resets: resets.iter().map(|r| r.1.resets).max()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resets_parts_are_each_parts_median_and_the_most_resets() {
        let ms = Duration::from_millis;
        assert_eq!(median_parts(&[]), None);
        let part = |guest, check, resets| ResetParts {
            guest: ms(guest),
            model: ms(1),
            check: ms(check),
            resets,
        };
        let parts = median_parts(&[
            (ms(9), part(5, 1, 1)),
            (ms(9), part(1, 9, 3)),
            (ms(9), part(3, 4, 1)),
        ]);
        assert_eq!(parts, Some(part(3, 4, 3)));
    }

    #[test]
    fn medians_and_status() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[ms(5), ms(1), ms(3)]), Some(ms(3)));
        let p = Progress::new(Goal::Sequences(10));
        p.ops.store(120, Ordering::Relaxed);
        p.sequences.store(3, Ordering::Relaxed);
        p.record_boot(ms(400));
        p.record_reset(ms(20), ResetParts::default());
        assert_eq!(p.fresh_state_medians(), (Some(ms(400)), Some(ms(20))));
        let s = p.status();
        assert!(
            s.starts_with("3 seq, 120 ops, ") && s.ends_with(" ops/s, 0 failures"),
            "{s}"
        );
    }
}
