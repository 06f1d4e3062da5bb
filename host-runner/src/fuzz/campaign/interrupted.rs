//! What a campaign leaves for later when it cannot decide or finish now: a
//! hang saved as unconfirmed before its rerun (a slow machine, or a VMM
//! hang?), settled after it; and, when a signal stops the campaign, the
//! traces in flight that its summary names.

use std::path::{Path, PathBuf};

use trace::recorder::failure_path;
use trace::Trace;

use super::shared::Shared;
use crate::args::fuzz::FuzzArgs;
use crate::fuzz::error::FuzzError;

/// Where a hang's trace waits for its rerun's verdict: the failure's own
/// name with `-unconfirmed` before `.jsonl`.
pub fn unconfirmed_path(out: &Path, trace: &Trace) -> PathBuf {
    let failure = trace.header.failure.as_ref().expect("a failing trace");
    let path = failure_path(out, failure, trace);
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!("{stem}-unconfirmed.jsonl"))
}

impl Shared {
    /// Saves the first hang's trace (atomically) before the sequence runs
    /// again with twice the timeout: the rerun boots a new guest, whose
    /// in-flight log starts afresh, so until the rerun decides this file
    /// is the hang's only record. Returns its path.
    pub(super) fn save_unconfirmed(&self, mut trace: Trace) -> Result<PathBuf, FuzzError> {
        trace.header.note = Some(
            "unconfirmed: this hang is running again on a fresh boot with twice the timeout \
             (a slow machine, or a hang?); the campaign removes this file once the rerun \
             passes (a slow machine) or saves its failure (a hang)"
                .into(),
        );
        let path = unconfirmed_path(&self.args.out, &trace);
        trace::save_atomically(&path, &trace).map_err(self.io(path.clone()))?;
        self.pending
            .lock()
            .expect("not poisoned")
            .push(path.clone());
        Ok(path)
    }

    /// The rerun decided (it passed, or its failure is saved): the
    /// unconfirmed trace goes.
    pub(super) fn settle_unconfirmed(&self, path: &Path) {
        self.pending
            .lock()
            .expect("not poisoned")
            .retain(|p| p != path);
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("removing {}: {e}", path.display());
        }
    }
}

/// The traces in flight when a signal stopped the campaign: each job's
/// log of what its guest received since it booted, and the hangs waiting
/// for their rerun.
pub(super) fn in_flight(args: &FuzzArgs, shared: &Shared) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = (0..args.jobs.max(1))
        .map(|i| args.out.join(format!("running-job{i}.jsonl")))
        .filter(|p| p.exists())
        .collect();
    paths.extend(shared.pending.lock().expect("not poisoned").iter().cloned());
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use trace::{Failure, FailureKind, TraceHeader};

    #[test]
    fn the_unconfirmed_name_is_the_failure_name_marked() {
        let header = TraceHeader {
            seed: Some(7),
            failure: Some(Failure::new(FailureKind::Hang, "no answer", Some(3))),
            ..Default::default()
        };
        let t = Trace::new(header);
        let out = Path::new("/x");
        let plain = failure_path(out, t.header.failure.as_ref().unwrap(), &t);
        let pending = unconfirmed_path(out, &t);
        let plain = plain.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            pending.file_name().unwrap().to_string_lossy(),
            format!("{plain}-unconfirmed.jsonl")
        );
        assert!(plain.starts_with("hang-7-"), "{plain}");
    }
}
