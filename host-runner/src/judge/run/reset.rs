//! A [`JudgedVm`] back to the boot state: its `Reset` judged, a fresh
//! model, and what the reset spent.

use oracle::Model;
use protocol::{Hello, Privilege, Request, Response};
use std::time::Instant;
use trace::{Failure, FailureKind};

use super::{stale_check, JudgedVm};
use crate::session::VmConfig;

/// Where a judged reset's time goes (the bench's fresh-state rows).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ResetParts {
    /// `Reset` and `Stats`, one batch's round trip: the guest's work.
    pub guest: std::time::Duration,
    /// Judging the answers and making the fresh model.
    pub model: std::time::Duration,
    /// The memory check of the fresh state (none when the options ask for
    /// none).
    pub check: std::time::Duration,
}

impl JudgedVm {
    /// Back to the boot state: `Reset` and `Stats`, both judged (free
    /// frames plus heap pages must be the boot count), a fresh model,
    /// operation index 0, and a memory check if the options ask for one.
    /// Failures here carry no operation index, but for a wrong answer in a
    /// batch [`JudgedVm::run_batch_ahead`] left unjudged, judged first.
    pub async fn reset(&mut self) -> Result<(), Failure> {
        self.settle()?;
        let reqs = vec![
            Request::Reset {
                privilege: Privilege::Kernel,
            },
            Request::Stats,
        ];
        let t = Instant::now();
        let got = match self.vm.batch(reqs.clone()).await {
            Ok(a) => a,
            Err(e) => return Err(self.fail(e, None).await),
        };
        let guest = t.elapsed();
        let t = Instant::now();
        let bad = |m: String| Failure::new(FailureKind::Divergence, format!("reset: {m}"), None);
        for (req, answer) in reqs.iter().zip(&got) {
            stale_check(0, req, 0, answer).map_err(|mut f| {
                f.op_index = None;
                f.message = format!("reset: {}", f.message);
                f
            })?;
            self.model
                .apply(0, req, answer)
                .map_err(|d| bad(d.to_string()))?;
        }
        match &got[1] {
            Response::Stats(s) if s.free_frames + s.heap_pages == s.boot_free_frames => {}
            other => {
                return Err(bad(format!(
                    "Stats after Reset: free_frames + heap_pages must equal boot_free_frames, got {other:?}"
                )))
            }
        }
        let reached = self.model.take_coverage();
        self.model = model_for(&self.hello, self.vm.config())?;
        self.model.add_coverage(&reached);
        self.index = 0;
        self.checker.forget();
        let model = t.elapsed();
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
        };
        Ok(())
    }

    /// What the last successful [`JudgedVm::reset`] spent, part by part.
    pub fn last_reset(&self) -> ResetParts {
        self.last_reset
    }
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
