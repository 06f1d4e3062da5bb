//! A fresh guest state per sequence: a judged `Reset` of the job's guest
//! (every frame back, checked), or a fresh boot. In `--fresh auto` each job
//! checks that the two are the same state: its first sequence runs on a
//! fresh boot, then again after a reset. The generator learns from the
//! guest's answers (frames, valloc ranges), so the two runs send the same
//! operations only if `Reset` really restores the boot state. The rule is
//! stable, never a race of timings: reset when it restores the boot state,
//! boot when it does not (or when a reset fails), decided once per job.
//!
//! The probe is one sequence; a guest whose state leaks through a reset in
//! rarer ways can still fail after a reset and pass from a fresh boot. So
//! each job keeps everything its guest received since it booted
//! ([`SinceBoot`]): a failure after a reset is saved with that history
//! too, which replays from a fresh boot whatever the reset left behind. A
//! guest is booted afresh after [`MAX_RESETS_PER_BOOT`] resets, which
//! bounds that history.

use std::path::PathBuf;
use std::time::Instant;

use trace::format::write_entry;
use trace::{Op, TraceHeader};

use super::campaign::shared::Shared;
use super::error::FuzzError;
use super::history::SinceBoot;
use super::sequence::SequenceRun;
use crate::args::fuzz::FreshState;
use crate::judge::{is_runner_failure, JudgedVm, ResetError};

/// Resets of one guest before the job boots a fresh one: bounds the
/// history a failure after a reset is saved with (at most this many
/// sequences before the failing one, 12,800 operations at 200 each) at
/// the cost of one boot (tens of milliseconds) per this many sequences.
pub const MAX_RESETS_PER_BOOT: usize = 64;

/// A job's guest between sequences, and how it gets a fresh state.
#[derive(Debug)]
pub(super) struct Fresh {
    pub vm: Option<JudgedVm>,
    mode: FreshState,
    /// In `auto`: the first sequence's number and operations, to run again
    /// after a reset.
    probe: Option<(u64, Vec<Op>)>,
    /// The last passing sequence, blamed when the reset after it fails.
    pub prev: Option<SequenceRun>,
    /// What the guest received since it booted, and the in-flight log.
    since: Option<SinceBoot>,
    /// Where the in-flight log goes, and its header.
    log: (PathBuf, TraceHeader),
    resets: usize,
    /// The request timeout's multiplier for the next boots (2 while a
    /// sequence that hung runs again: a slow machine or a hang?).
    pub timeout_scale: u32,
}

impl Fresh {
    pub fn new(mode: FreshState, log: PathBuf, header: TraceHeader) -> Self {
        Fresh {
            vm: None,
            mode,
            probe: None,
            prev: None,
            since: None,
            log: (log, header),
            resets: 0,
            timeout_scale: 1,
        }
    }

    /// What the current guest received since boot, and its log.
    pub fn since_boot(&mut self) -> &mut SinceBoot {
        self.since.as_mut().expect("a guest is running")
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
        let (mode, why) = match ops.iter().zip(&run.ops).position(|(a, b)| a != b) {
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
            None => (
                FreshState::Reset,
                format!("sequence {k} ran the same after a reset as on a fresh boot"),
            ),
        };
        self.mode = mode;
        Some(format!(
            "using {} — {why}",
            match mode {
                FreshState::Reset => "reset",
                _ => "boot",
            }
        ))
    }

    async fn boot(&mut self, s: &Shared) -> Result<JudgedVm, FuzzError> {
        drop(self.vm.take());
        self.resets = 0;
        let (path, header) = &self.log;
        self.since = Some(SinceBoot::start(path, header).map_err(s.io(path.clone()))?);
        let t = Instant::now();
        let config = crate::session::VmConfig {
            request_timeout: s.config.request_timeout * self.timeout_scale,
            ..s.config.clone()
        };
        let vm = match JudgedVm::start(&config, s.judge()).await {
            // QEMU killed from outside or failing to start: once more.
            Err(f) if is_runner_failure(&f) => {
                s.environment_fault(format!("boot: {f}; booting again"));
                JudgedVm::start(&config, s.judge()).await
            }
            r => r,
        }
        .map_err(FuzzError::Boot)?;
        s.progress.record_boot(t.elapsed());
        Ok(vm)
    }

    /// A guest in the boot state: the kept one after a judged `Reset`, or
    /// a fresh boot. A reset that fails blames everything since boot: that
    /// trace, ending with the reset, is saved as a failure.
    pub async fn guest(&mut self, s: &Shared) -> Result<JudgedVm, FuzzError> {
        let Some(mut vm) = self.vm.take() else {
            return self.boot(s).await;
        };
        if self.mode == FreshState::Boot || self.resets >= MAX_RESETS_PER_BOOT {
            return self.boot(s).await;
        }
        let since = self.since.as_mut().expect("a guest is running");
        if let Some(prev) = &self.prev {
            since.sequence(&prev.trace());
        }
        // Each batch of the reset goes to the history and the in-flight log
        // before it is sent; a log that cannot be written ends the job, as
        // the sequence's own log does.
        let t = Instant::now();
        match vm
            .reset_logged(&mut |reqs, again| since.reset_batch(reqs, again))
            .await
        {
            Ok(()) => {
                self.resets += 1;
                s.progress.record_reset(t.elapsed(), vm.last_reset());
                Ok(vm)
            }
            Err(ResetError::Log(e)) => Err(s.io(self.log.0.clone())(e)),
            Err(ResetError::Failed(f)) if is_runner_failure(&f) => {
                s.environment_fault(format!("reset: {f}; booting a fresh guest"));
                self.boot(s).await
            }
            Err(ResetError::Failed(mut f)) => {
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
                // it left behind, in its last round: the last batch.
                let since = self.since.as_ref().expect("a guest is running");
                f.op_index = since.last_batch_start();
                let header = TraceHeader {
                    failure: Some(f),
                    ..prev.header
                };
                s.capture(since.trace(header), None).await?;
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
            refs: vec![None; ops.len()],
            ops,
            batch_sizes: vec![1],
            failure: None,
            coverage: Default::default(),
            timings: Default::default(),
            reached: Default::default(),
        }
    }

    fn fresh(mode: FreshState) -> Fresh {
        Fresh::new(mode, PathBuf::from("unused.jsonl"), TraceHeader::default())
    }

    #[test]
    fn the_first_sequence_is_run_again_after_a_reset_and_decides() {
        let a = run(vec![Op::Stats, Op::Hello]);
        let mut f = fresh(FreshState::Auto);
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
        let mut f = fresh(FreshState::Auto);
        f.passed(0, &run(vec![Op::Stats, Op::Hello]));
        let note = f
            .passed(0, &run(vec![Op::Stats, Op::Stats]))
            .expect("decided");
        assert!(
            note.contains("using boot") && note.contains("at op 1"),
            "{note}"
        );
        assert_eq!(f.mode, FreshState::Boot);
    }

    #[test]
    fn fixed_modes_do_not_probe() {
        let mut f = fresh(FreshState::Reset);
        assert_eq!(f.passed(0, &run(vec![Op::Stats])), None);
        assert_eq!(f.probe_due(), None);
    }
}
