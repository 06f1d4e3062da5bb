//! Where a judged guest's time goes: waiting for the guest's answers,
//! judging them with the model, checking memory. The fuzzer adds its own
//! parts (generating, fresh states) and prints the split, so a campaign
//! says what bounds its rate.

use std::fmt;
use std::ops::AddAssign;
use std::time::{Duration, Instant};

/// Time spent, by part, and how often.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// From sending a batch to having its answers (transport and the
    /// guest's own work; [`Timings::model_ahead`] runs inside it).
    pub guest: Duration,
    pub batches: u64,
    /// The model judging answers.
    pub model: Duration,
    /// Of the model's time: judging one batch after the next was sent
    /// (`JudgedVm::run_batch_ahead`), while the guest ran it. The guest
    /// waited for none of it unless the judging outlasted the batch; then
    /// the rest counts in `guest` too (the answer is read after judging).
    pub model_ahead: Duration,
    /// Memory checks: reading, the checker, QEMU's view.
    pub checks: Duration,
    pub check_count: u64,
    /// The full checks among them, and their time (the rest are
    /// incremental).
    pub full_checks: Duration,
    pub full_count: u64,
    /// Of the checks' time: QEMU's view (`info tlb`, `info registers`,
    /// the comparison), full checks only, beyond the oracle's check (QEMU
    /// answers while the oracle checks: `judge::inspect`).
    pub qemu_view: Duration,
    /// Generating operations (the fuzzer's).
    pub generate: Duration,
    /// Fresh states between sequences: judged resets, boots (the fuzzer's).
    pub fresh: Duration,
    /// Answers the guest gave only after a second doorbell: asleep with a
    /// request posted, it had missed the first (`protocol::ring` rule 6),
    /// and the answer came up to [`protocol::ring::NUDGE_MS`] late.
    pub nudges: u64,
}

impl AddAssign for Timings {
    fn add_assign(&mut self, o: Timings) {
        self.guest += o.guest;
        self.batches += o.batches;
        self.model += o.model;
        self.model_ahead += o.model_ahead;
        self.checks += o.checks;
        self.check_count += o.check_count;
        self.full_checks += o.full_checks;
        self.full_count += o.full_count;
        self.qemu_view += o.qemu_view;
        self.generate += o.generate;
        self.fresh += o.fresh;
        self.nudges += o.nudges;
    }
}

impl Timings {
    /// What was spent since `earlier` (a copy taken before).
    pub fn since(&self, earlier: &Timings) -> Timings {
        Timings {
            guest: self.guest.saturating_sub(earlier.guest),
            batches: self.batches - earlier.batches,
            model: self.model.saturating_sub(earlier.model),
            model_ahead: self.model_ahead.saturating_sub(earlier.model_ahead),
            checks: self.checks.saturating_sub(earlier.checks),
            check_count: self.check_count - earlier.check_count,
            full_checks: self.full_checks.saturating_sub(earlier.full_checks),
            full_count: self.full_count - earlier.full_count,
            qemu_view: self.qemu_view.saturating_sub(earlier.qemu_view),
            generate: self.generate.saturating_sub(earlier.generate),
            fresh: self.fresh.saturating_sub(earlier.fresh),
            nudges: self.nudges - earlier.nudges,
        }
    }
}

/// Adds the time `f` takes to `slot`.
pub fn timed<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    *slot += t.elapsed();
    r
}

impl Timings {
    /// The parts as one line, each with its share of `total` (the wall
    /// time they ran in; with several jobs the parts add up to more).
    pub fn split(&self, total: Duration) -> String {
        let total = total.as_secs_f64().max(1e-9);
        let part = |name: &str, d: Duration| {
            format!(
                "{name} {:.1} s ({:.0}%)",
                d.as_secs_f64(),
                100.0 * d.as_secs_f64() / total
            )
        };
        let per = |d: Duration, n: u64| d.as_secs_f64() * 1e3 / n.max(1) as f64;
        let incremental = self.checks.saturating_sub(self.full_checks);
        // The model's time while the guest ran is inside `guest`: its
        // share is the time the guest waited for it.
        let ahead = if self.model_ahead.is_zero() {
            String::new()
        } else {
            format!(
                " (and {:.1} s more while the guest ran the next batch)",
                self.model_ahead.as_secs_f64()
            )
        };
        let incremental_count = self.check_count - self.full_count;
        let nudges = match self.nudges {
            0 => String::new(),
            n => format!(
                "; {n} answer(s) after a second doorbell (a guest asleep had missed the first: up to {} ms each)",
                protocol::ring::NUDGE_MS
            ),
        };
        format!(
            "{}, {}{}, {} in {} checks ({:.2} ms each: {} full {:.2} ms, of which QEMU's view after the oracle {:.2} ms; {} incremental {:.2} ms), {}, {}; {:.2} ms per batch round trip{}",
            part("guest", self.guest),
            part("model", self.model.saturating_sub(self.model_ahead)),
            ahead,
            part("memory checks", self.checks),
            self.check_count,
            per(self.checks, self.check_count),
            self.full_count,
            per(self.full_checks, self.full_count),
            per(self.qemu_view, self.full_count),
            incremental_count,
            per(incremental, incremental_count),
            part("generator", self.generate),
            part("fresh states", self.fresh),
            per(self.guest, self.batches),
            nudges,
        )
    }
}

impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The model's time while the guest ran is inside `guest` already.
        let model = self.model.saturating_sub(self.model_ahead);
        let sum = self.guest + model + self.checks + self.generate + self.fresh;
        f.write_str(&self.split(sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_names_full_and_incremental_checks_apart() {
        let ms = Duration::from_millis;
        let t = Timings {
            checks: ms(50),
            check_count: 6,
            full_checks: ms(40),
            full_count: 2,
            qemu_view: ms(10),
            ..Timings::default()
        };
        let line = t.split(ms(100));
        assert!(line.contains("in 6 checks (8.33 ms each: 2 full 20.00 ms, of which QEMU's view after the oracle 5.00 ms; 4 incremental 2.50 ms)"), "{line}");
        let mut sum = t;
        sum += t;
        assert_eq!(sum.since(&t), t);
        assert_eq!(sum.full_count, 4);
        assert!(!line.contains("doorbell"), "no nudges, no words: {line}");
    }

    /// Answers that waited for a second doorbell (`protocol::ring` rule 6)
    /// are counted in the split, summed over guests and taken apart by
    /// `since`.
    #[test]
    fn the_split_counts_the_answers_after_a_second_doorbell() {
        let t = Timings {
            nudges: 3,
            ..Timings::default()
        };
        let line = t.split(Duration::from_secs(1));
        let want = format!(
            "; 3 answer(s) after a second doorbell (a guest asleep had missed the first: up to {} ms each)",
            protocol::ring::NUDGE_MS
        );
        assert!(line.ends_with(&want), "{line}");
        let mut sum = t;
        sum += t;
        assert_eq!(sum.nudges, 6);
        assert_eq!(sum.since(&t).nudges, 3);
    }

    /// Judging done while the guest ran the next batch is inside the
    /// guest's time: the split shows the model's waited-for share, and the
    /// rest beside it, and the whole counts it once.
    #[test]
    fn the_model_beside_the_guest_is_counted_once() {
        let s = Duration::from_secs;
        let t = Timings {
            guest: s(10),
            model: s(3),
            model_ahead: s(2),
            ..Timings::default()
        };
        let line = t.to_string();
        assert!(
            line.starts_with("guest 10.0 s (91%), model 1.0 s (9%) (and 2.0 s more while the guest ran the next batch), "),
            "{line}"
        );
        let judged_at_once = Timings {
            model_ahead: Duration::ZERO,
            ..t
        };
        assert!(
            judged_at_once
                .to_string()
                .starts_with("guest 10.0 s (77%), model 3.0 s (23%), "),
            "{}",
            judged_at_once
        );
    }
}
