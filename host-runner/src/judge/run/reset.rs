//! A [`JudgedVm`] back to the boot state: `Reset` judged (again while its
//! heap scavenge filled the reclaim ring), a fresh model, and what the
//! reset spent.

use oracle::Model;
use protocol::{Hello, Privilege, Request, Response, Stats, RECLAIM_RING};
use std::time::{Duration, Instant};
use trace::{Failure, FailureKind};

use super::{stale_check, JudgedVm};
use crate::session::VmConfig;

/// Where a judged reset's time goes (the bench's fresh-state rows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResetParts {
    /// `Reset` and `Stats` (each round: see [`JudgedVm::reset_logged`]):
    /// the guest's work, one round trip a round.
    pub guest: Duration,
    /// Judging the answers and making the fresh model.
    pub model: Duration,
    /// The memory check of the fresh state (none when the options ask for
    /// none).
    pub check: Duration,
    /// `Reset`s sent: more than one when a reset filled the reclaim ring.
    pub resets: u32,
}

/// Whether `Reset`'s answer filled the reclaim ring: its heap scavenge
/// stopped there and free heap pages may be left (`protocol::semantics`,
/// `Reset`, and "Reclaim events", rule 5), so another `Reset` is due
/// before the heap is as after boot.
pub fn ring_filled(answer: &Response) -> bool {
    matches!(answer, Response::Reclaimed { events, .. } if events.len() >= RECLAIM_RING)
}

/// The most rounds a reset can need: one per ring of the heap's pages,
/// and one more that finds the ring not filled.
fn max_rounds(stats: &Stats) -> u64 {
    stats
        .heap_max_bytes
        .div_ceil(4096)
        .div_ceil(RECLAIM_RING as u64)
        + 1
}

impl JudgedVm {
    /// Back to the boot state, without a log of what is sent: see
    /// [`JudgedVm::reset_logged`].
    pub async fn reset(&mut self) -> Result<(), Failure> {
        self.reset_logged(&mut |_, _| Ok(())).await
    }

    /// Back to the boot state: `Reset` and `Stats`, one batch, again while
    /// the `Reset` filled the reclaim ring. A `Reset` gives back at most a
    /// ring of free heap pages (a host block of more, freed by the reset,
    /// leaves the rest present); the next one gives back more and zeroes
    /// the counters again, which a `HeapScavenge` would not (its pages
    /// count in `pages_scavenged`, which a fresh boot has at 0). Every
    /// answer is judged, the last `Stats` too (free frames plus heap pages
    /// must be the boot count). Then a fresh model, operation index
    /// 0, and a memory check if the options ask for one. `ahead` gets each
    /// batch before it is sent, and whether it is a round after the first
    /// (the campaign writes it to its in-flight log); its error ends the
    /// reset as an environment fault. Failures
    /// here carry no operation index, but for a wrong answer in a batch
    /// [`JudgedVm::run_batch_ahead`] left unjudged, judged first.
    pub async fn reset_logged(
        &mut self,
        ahead: &mut (dyn FnMut(&[Request], bool) -> std::io::Result<()> + Send),
    ) -> Result<(), Failure> {
        self.settle()?;
        let kernel = Privilege::Kernel;
        let (mut guest, mut model) = (Duration::ZERO, Duration::ZERO);
        let reqs = [Request::Reset { privilege: kernel }, Request::Stats];
        let mut round: u32 = 0;
        let stats = loop {
            if let Err(e) = ahead(&reqs, round > 0) {
                return Err(self
                    .fail(crate::Error::io("the reset's log", e), None)
                    .await);
            }
            let t = Instant::now();
            let got = match self.vm.batch(reqs.to_vec()).await {
                Ok(a) => a,
                Err(e) => return Err(self.fail(e, None).await),
            };
            guest += t.elapsed();
            let t = Instant::now();
            self.judge_reset_batch(&reqs, &got)?;
            model += t.elapsed();
            let Some(Response::Stats(stats)) = got.get(1) else {
                return Err(reset_divergence(format!(
                    "a Stats answer after Reset, got {:?}",
                    got.get(1)
                )));
            };
            if !ring_filled(&got[0]) {
                break *stats;
            }
            round += 1;
            if u64::from(round) > max_rounds(stats) {
                return Err(reset_divergence(format!(
                    "a heap of at most {} bytes still fills the reclaim ring after {} \
                     resets of {RECLAIM_RING} pages each",
                    stats.heap_max_bytes, round
                )));
            }
        };
        let t = Instant::now();
        if stats.free_frames + stats.heap_pages != stats.boot_free_frames {
            return Err(reset_divergence(format!(
                "Stats after Reset: free_frames + heap_pages must equal boot_free_frames, \
                 got {stats:?}"
            )));
        }
        let reached = self.model.take_coverage();
        self.model = model_for(&self.hello, self.vm.config())?;
        self.model.add_coverage(&reached);
        self.index = 0;
        self.checker.forget();
        model += t.elapsed();
        let t = Instant::now();
        if self.opts.check_after_reset {
            // A full check of the fresh state (QEMU's view aside, as
            // before): the record the sequence's incremental checks
            // compare with.
            self.check_with(None, true, false).await.map_err(|mut f| {
                f.message = format!("after reset: {}", f.message);
                f
            })?;
        }
        self.last_reset = ResetParts {
            guest,
            model,
            check: t.elapsed(),
            resets: round + 1,
        };
        Ok(())
    }

    /// Judges one batch of the reset: each answer for its stale marks and
    /// by the model.
    fn judge_reset_batch(&mut self, reqs: &[Request], got: &[Response]) -> Result<(), Failure> {
        for (req, answer) in reqs.iter().zip(got) {
            stale_check(0, req, 0, answer).map_err(|mut f| {
                f.op_index = None;
                f.message = format!("reset: {}", f.message);
                f
            })?;
            self.model
                .apply(0, req, answer)
                .map_err(|d| reset_divergence(d.to_string()))?;
        }
        Ok(())
    }

    /// What the last successful [`JudgedVm::reset`] spent, part by part.
    pub fn last_reset(&self) -> ResetParts {
        self.last_reset
    }
}

/// A wrong answer during the reset (no operation index: it is no
/// operation of a sequence).
fn reset_divergence(m: String) -> Failure {
    Failure::new(FailureKind::Divergence, format!("reset: {m}"), None)
}
/// The model of a guest booted with `config`: it knows the bytes of every
/// file image the runner gave the guest, so that file pages are judged.
pub(super) fn model_for(hello: &Hello, config: &VmConfig) -> Result<Model, Failure> {
    let specs: Vec<oracle::FileSpec> = config
        .files
        .iter()
        .map(|f| oracle::FileSpec {
            pages: f.pages,
            seed: f.seed,
        })
        .collect();
    Model::with_files(hello, &specs).map_err(|e| {
        Failure::new(
            FailureKind::Environment,
            format!("the guest's Hello does not list the files it was booted with: {e}"),
            None,
        )
        .with_class(trace::FailureClass::Environment {
            what: "the guest's files differ from the runner's".into(),
        })
    })
}
