//! A fresh guest state per sequence: a judged `Reset` of the job's guest
//! (every frame back, checked), or a fresh boot. In `--fresh auto` each job
//! measures both and checks that they are the same state: its first
//! sequence runs on a fresh boot, then again after a reset. The generator
//! learns from the guest's answers (frames, valloc ranges), so the two runs
//! send the same operations only if `Reset` really restores the boot state.
//! Reset is used only if it does and is faster: a failure found after a
//! reset must replay from a fresh boot.
//!
//! The probe is one sequence; a guest whose state leaks through a reset in
//! rarer ways can still fail after a reset and pass from a fresh boot. So
//! each job also keeps every operation its guest received since it booted
//! (earlier sequences, each followed by the campaign's `reset`): a failure
//! after a reset is saved with that history too, which replays from a
//! fresh boot whatever the reset left behind. A guest is booted afresh
//! after [`MAX_RESETS_PER_BOOT`] resets, which bounds that history.

use std::time::{Duration, Instant};

use protocol::Privilege;
use trace::format::write_entry;
use trace::{Op, Trace};

use super::campaign::{FuzzError, Shared};
use super::sequence::SequenceRun;
use super::summary::FreshState;
use crate::judge::{is_runner_failure, JudgedVm};

/// Resets of one guest before the job boots a fresh one: bounds the
/// history a failure after a reset is saved with (at most this many
/// sequences before the failing one) at the cost of one boot (tens of
/// milliseconds) per this many sequences.
pub const MAX_RESETS_PER_BOOT: usize = 8;

/// A job's guest between sequences, and how it gets a fresh state.
#[derive(Debug)]
pub(super) struct Fresh {
    pub vm: Option<JudgedVm>,
    mode: FreshState,
    boot: Option<Duration>,
    reset: Option<Duration>,
    /// In `auto`: the first sequence's number and operations, to run again
    /// after a reset.
    probe: Option<(u64, Vec<Op>)>,
    /// The last passing sequence, blamed when the reset after it fails.
    pub prev: Option<SequenceRun>,
    /// What the guest received since it booted, up to the sequence
    /// running now: earlier sequences, each followed by a `reset`.
    history: Vec<Op>,
    resets: usize,
}

impl Fresh {
    pub fn new(mode: FreshState) -> Self {
        Fresh {
            vm: None,
            mode,
            boot: None,
            reset: None,
            probe: None,
            prev: None,
            history: Vec::new(),
            resets: 0,
        }
    }

    /// The operations the current guest received before the sequence
    /// running now (empty on a fresh boot).
    pub fn since_boot(&self) -> &[Op] {
        &self.history
    }

    /// The sequence to run again after a reset, when the probe is due.
    pub fn probe_due(&self) -> Option<u64> {
        self.probe.as_ref().map(|p| p.0)
    }

    /// Learns from a passing sequence: in `auto`, the first one becomes the
    /// probe; its run after the reset decides. Answers the decision, once.
    pub fn passed(&mut self, k: u64, run: &SequenceRun) -> Option<String> {
        if self.mode != FreshState::Auto {
            return None;
        }
        let Some((pk, ops)) = self.probe.take() else {
            self.probe = Some((k, run.ops.clone()));
            return None;
        };
        if pk != k {
            self.probe = Some((pk, ops));
            return None;
        }
        let same = ops.iter().zip(&run.ops).position(|(a, b)| a != b);
        let (boot, reset) = (self.boot?, self.reset?);
        let figures = format!(
            "boot {:.1} ms, reset {:.1} ms",
            boot.as_secs_f64() * 1e3,
            reset.as_secs_f64() * 1e3
        );
        let (mode, why) = match same {
            Some(i) => (
                FreshState::Boot,
                format!(
                    "reset does not restore the boot state (sequence {k} after a reset \
                     differed from its run on a fresh boot at op {i}: {} instead of {}; \
                     a guest issue: its answers depend on history)",
                    write_entry(&run.ops[i].clone().into()),
                    write_entry(&ops[i].clone().into())
                ),
            ),
            None if reset < boot => (
                FreshState::Reset,
                "reset restores the boot state and is faster".into(),
            ),
            None => (FreshState::Boot, "boot is faster".into()),
        };
        self.mode = mode;
        Some(format!(
            "{figures}: using {} — {why}",
            match mode {
                FreshState::Reset => "reset",
                _ => "boot",
            }
        ))
    }

    async fn boot(&mut self, s: &Shared) -> Result<JudgedVm, FuzzError> {
        drop(self.vm.take());
        self.history.clear();
        self.resets = 0;
        let t = Instant::now();
        let vm = JudgedVm::start(&s.config, s.judge())
            .await
            .map_err(FuzzError::Boot)?;
        let took = t.elapsed();
        self.boot.get_or_insert(took);
        s.progress.record_boot(took);
        Ok(vm)
    }

    /// A guest in the boot state: the kept one after a judged `Reset`, or
    /// a fresh boot. A reset that fails blames the last sequence: its
    /// trace, then `reset` and `stats`, is saved as a failure.
    pub async fn guest(&mut self, s: &Shared) -> Result<JudgedVm, FuzzError> {
        let Some(mut vm) = self.vm.take() else {
            return self.boot(s).await;
        };
        if self.mode == FreshState::Boot || self.resets >= MAX_RESETS_PER_BOOT {
            return self.boot(s).await;
        }
        let t = Instant::now();
        match vm.reset().await {
            Ok(()) => {
                if let Some(prev) = &self.prev {
                    self.history.extend(prev.ops.iter().cloned());
                }
                self.history.push(Op::Reset {
                    privilege: Privilege::Kernel,
                });
                self.resets += 1;
                let took = t.elapsed();
                self.reset.get_or_insert(took);
                s.progress.record_reset(took);
                Ok(vm)
            }
            Err(f) if is_runner_failure(&f) => {
                tracing::warn!("reset: {f}; booting a fresh guest");
                self.boot(s).await
            }
            Err(mut f) => {
                // A reset that fails is no way to a fresh state: boot from
                // now on (in `auto`), so the same failure is not met again.
                self.probe = None;
                if self.mode == FreshState::Auto {
                    self.mode = FreshState::Boot;
                    s.progress.println(format!(
                        "fuzz: fresh state per sequence: boot from now on — a reset failed: {f}"
                    ));
                }
                let prev = self
                    .prev
                    .take()
                    .expect("a guest is kept only after a sequence");
                // Everything since boot: the reset failed on what all of
                // it left behind.
                let mut ops = std::mem::take(&mut self.history);
                ops.extend(prev.ops);
                f.op_index = Some(ops.len());
                ops.extend([
                    Op::Reset {
                        privilege: Privilege::Kernel,
                    },
                    Op::Stats,
                ]);
                let header = trace::TraceHeader {
                    failure: Some(f),
                    ..prev.header
                };
                s.capture(Trace::from_ops(header, ops), None).await?;
                self.boot(s).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace::TraceHeader;

    fn run(ops: Vec<Op>) -> SequenceRun {
        SequenceRun {
            header: TraceHeader::default(),
            ops,
            batches: 1,
            failure: None,
            coverage: Default::default(),
            reached: Default::default(),
        }
    }

    fn timed(boot: u64, reset: u64) -> Fresh {
        let mut f = Fresh::new(FreshState::Auto);
        f.boot = Some(Duration::from_millis(boot));
        f.reset = Some(Duration::from_millis(reset));
        f
    }

    #[test]
    fn the_first_sequence_is_run_again_after_a_reset_and_decides() {
        let a = run(vec![Op::Stats, Op::Hello]);
        let mut f = timed(100, 10);
        assert_eq!(f.passed(4, &a), None);
        assert_eq!(f.probe_due(), Some(4));
        let note = f.passed(4, &a).expect("decided");
        assert!(note.contains("using reset"), "{note}");
        assert_eq!(f.mode, FreshState::Reset);
        assert_eq!(f.probe_due(), None);
        assert_eq!(f.passed(5, &a), None, "decided once");
    }

    #[test]
    fn a_reset_that_changes_the_answers_is_not_used() {
        let mut f = timed(100, 10);
        f.passed(0, &run(vec![Op::Stats, Op::Hello]));
        let note = f
            .passed(0, &run(vec![Op::Stats, Op::Stats]))
            .expect("decided");
        assert!(
            note.contains("using boot") && note.contains("at op 1"),
            "{note}"
        );
        assert_eq!(f.mode, FreshState::Boot);
        let mut slow_reset = timed(10, 100);
        slow_reset.passed(0, &run(vec![Op::Stats]));
        let note = slow_reset
            .passed(0, &run(vec![Op::Stats]))
            .expect("decided");
        assert!(note.contains("boot is faster"), "{note}");
    }

    #[test]
    fn fixed_modes_do_not_probe() {
        let mut f = Fresh::new(FreshState::Reset);
        assert_eq!(f.passed(0, &run(vec![Op::Stats])), None);
        assert_eq!(f.probe_due(), None);
    }
}
