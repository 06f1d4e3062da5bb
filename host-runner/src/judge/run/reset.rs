//! A [`JudgedVm`] back to the boot state: `Reset` judged, again while the
//! last one gave back many heap pages ([`another_reset`]), a fresh model,
//! and what the reset spent.

use oracle::Model;
use protocol::{Hello, Privilege, Request, Response, Stats, RECLAIM_RING};
use std::convert::Infallible;
use std::time::{Duration, Instant};
use trace::{Failure, FailureKind};

use super::{stale_check, JudgedVm};
use crate::session::VmConfig;

/// Where a judged reset's time goes (the bench's fresh-state rows, the
/// campaign's fresh-state line).
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
    /// `Reset`s sent ([`another_reset`]).
    pub resets: u32,
}

/// Why [`JudgedVm::reset_logged`] ended without a fresh state; `E` is its
/// log's error.
#[derive(Debug)]
pub enum ResetError<E = std::io::Error> {
    /// The log refused a batch, which was not sent: the caller's to
    /// report, never the guest's fault.
    Log(E),
    /// The guest, or its judging, failed the reset.
    Failed(Failure),
}

/// What [`JudgedVm::reset_logged`] gives each batch before it is sent:
/// the batch, and whether it is a round after the first.
pub type Ahead<'a, E> = dyn FnMut(&[Request], bool) -> Result<(), E> + Send + 'a;

impl<E> From<Failure> for ResetError<E> {
    fn from(f: Failure) -> Self {
        ResetError::Failed(f)
    }
}

/// Heap pages a `Reset` may give back and still leave the heap as a boot
/// leaves it. The reset scavenges the heap, then builds its answer, whose
/// events take heap memory (24 bytes each, `protocol::budget`) after the
/// scavenge: past about a hundred events they fault in pages a boot has not
/// (measured on the guest: 105 events none, 305 one, 425 to 512 two to
/// four). The next `Reset` gives those few back, and its answer fits.
pub const SETTLED_RESET_EVENTS: usize = 64;

/// Whether another `Reset` is due after one answered `answer`: it gave
/// back more than [`SETTLED_RESET_EVENTS`] heap pages. That covers a reset
/// whose scavenge filled the reclaim ring and stopped there, leaving free
/// heap pages present (`protocol::semantics`, **Reset**, and "Reclaim
/// events", rule 5), and one whose answer took new heap pages.
pub fn another_reset(answer: &Response) -> bool {
    matches!(answer, Response::Reclaimed { events, .. } if events.len() > SETTLED_RESET_EVENTS)
}

/// The most rounds a judged reset can need: one per ring of the heap's
/// pages, one for the pages the last answer took, and one that settles.
fn max_rounds(stats: &Stats) -> u64 {
    stats
        .heap_max_bytes
        .div_ceil(4096)
        .div_ceil(RECLAIM_RING as u64)
        + 2
}

/// After round `round` (0 first) of a judged reset answered `reset` and
/// `stats`: whether another round is due ([`another_reset`]), or what is
/// wrong (every `Stats` after a `Reset` has free frames plus heap pages at
/// the boot count; a bounded heap cannot keep a reset giving back pages
/// for more than [`max_rounds`]).
fn another_round(reset: &Response, stats: &Stats, round: u32) -> Result<bool, String> {
    if stats.free_frames + stats.heap_pages != stats.boot_free_frames {
        return Err(format!(
            "Stats after Reset: free_frames + heap_pages must equal boot_free_frames, \
             got {stats:?}"
        ));
    }
    if !another_reset(reset) {
        return Ok(false);
    }
    if u64::from(round) + 1 >= max_rounds(stats) {
        return Err(format!(
            "a heap of at most {} bytes still gives back more than {SETTLED_RESET_EVENTS} \
             pages after {} resets",
            stats.heap_max_bytes,
            round + 1
        ));
    }
    Ok(true)
}

impl JudgedVm {
    /// Back to the boot state, without a log of what is sent: see
    /// [`JudgedVm::reset_logged`].
    pub async fn reset(&mut self) -> Result<(), Failure> {
        match self
            .reset_logged(&mut |_, _| Ok::<(), Infallible>(()))
            .await
        {
            Ok(()) => Ok(()),
            Err(ResetError::Failed(f)) => Err(f),
            Err(ResetError::Log(never)) => match never {},
        }
    }

    /// Back to the boot state: `Reset` and `Stats`, one batch, again while
    /// the last `Reset` gave back many heap pages ([`another_reset`]: one
    /// gives back at most a ring of them, and an answer of many events
    /// takes heap pages of its own); the next `Reset` gives back more and
    /// zeroes the counters again, which a `HeapScavenge` would not (its
    /// pages count in `pages_scavenged`, which a boot has at 0). Every
    /// answer is judged, each `Stats` too (free frames plus heap pages must
    /// be the boot count). Then a fresh model, operation index 0, and a
    /// memory check if the options ask for one. `ahead` gets each batch
    /// before it is sent, and whether it is a round after the first (the
    /// campaign writes it to its in-flight log); its error ends the reset
    /// with that batch unsent, as [`ResetError::Log`]. Failures here carry
    /// no operation index, but for a wrong answer in a batch
    /// [`JudgedVm::run_batch_ahead`] left unjudged, judged first.
    pub async fn reset_logged<E: Send>(
        &mut self,
        ahead: &mut Ahead<'_, E>,
    ) -> Result<(), ResetError<E>> {
        self.settle()?;
        let (mut guest, mut model) = (Duration::ZERO, Duration::ZERO);
        let reqs = [
            Request::Reset {
                privilege: Privilege::Kernel,
            },
            Request::Stats,
        ];
        let mut round: u32 = 0;
        loop {
            ahead(&reqs, round > 0).map_err(ResetError::Log)?;
            let t = Instant::now();
            let got = match self.vm.batch(reqs.to_vec()).await {
                Ok(a) => a,
                Err(e) => return Err(self.fail(e, None).await.into()),
            };
            guest += t.elapsed();
            let t = Instant::now();
            self.judge_reset_batch(&reqs, &got)?;
            let again = match got.get(1) {
                Some(Response::Stats(stats)) => another_round(&got[0], stats, round),
                other => Err(format!("a Stats answer after Reset, got {other:?}")),
            };
            model += t.elapsed();
            if !again.map_err(reset_divergence)? {
                break;
            }
            round += 1;
        }
        let t = Instant::now();
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Reclaim;

    fn reset(events: usize) -> Response {
        let events = vec![Reclaim::Scavenged { addr: 0 }; events];
        if events.is_empty() {
            Response::Done
        } else {
            Response::Reclaimed {
                events,
                response: Box::new(Response::Done),
            }
        }
    }

    fn stats(free: u64, heap: u64) -> Stats {
        Stats {
            boot_free_frames: 100,
            free_frames: free,
            heap_pages: heap,
            heap_max_bytes: 4 << 20,
            ..Stats::default()
        }
    }

    #[test]
    fn another_reset_follows_many_pages_given_back() {
        let settled = stats(99, 1);
        for (events, again) in [
            (0, false),
            (1, false),
            (SETTLED_RESET_EVENTS, false),
            (SETTLED_RESET_EVENTS + 1, true),
            (RECLAIM_RING - 1, true),
            (RECLAIM_RING, true),
        ] {
            assert_eq!(
                another_round(&reset(events), &settled, 0),
                Ok(again),
                "{events}"
            );
        }
    }

    #[test]
    fn every_rounds_stats_and_the_bound_are_judged() {
        let err = another_round(&reset(0), &stats(98, 1), 0).unwrap_err();
        assert!(err.contains("boot_free_frames"), "{err}");
        // 4 MiB of heap: two rings of pages, one round for the pages the
        // last answer took, one that settles.
        let s = stats(90, 10);
        assert_eq!(max_rounds(&s), 4);
        assert_eq!(another_round(&reset(RECLAIM_RING), &s, 2), Ok(true));
        let err = another_round(&reset(RECLAIM_RING), &s, 3).unwrap_err();
        assert!(err.contains("after 4 resets"), "{err}");
        assert_eq!(
            another_round(&reset(3), &s, 3),
            Ok(false),
            "settled at the bound"
        );
    }
}
