//! What a campaign's jobs share: the configuration, the sequence source,
//! the progress, the failures found and the corpus. The campaign
//! (`campaign.rs`) makes it; the jobs, their fresh states (`fresh.rs`), the
//! capture of failures and the interrupted campaign's report use it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use trace::{GenConfig, Signature};

use crate::args::fuzz::FuzzArgs;
use crate::fuzz::corpus::Corpus;
use crate::fuzz::error::FuzzError;
use crate::fuzz::plan::SequenceSource;
use crate::fuzz::progress::Progress;
use crate::fuzz::summary::FoundFailure;
use crate::judge::JudgeOptions;
use crate::session::VmConfig;

/// What the jobs share.
pub(in crate::fuzz) struct Shared {
    /// The guest edges the corpus leaves out of what is new.
    pub(in crate::fuzz) guidance: Option<crate::coverage::Guidance>,
    pub(in crate::fuzz) config: VmConfig,
    pub(in crate::fuzz) args: FuzzArgs,
    pub(in crate::fuzz) seed: u64,
    pub(in crate::fuzz) source: SequenceSource,
    pub(in crate::fuzz) progress: Progress,
    pub(in crate::fuzz) deadline: Option<Instant>,
    pub(in crate::fuzz) stop: AtomicBool,
    pub(in crate::fuzz) found: Mutex<Vec<FoundFailure>>,
    pub(in crate::fuzz) minimized: Mutex<HashSet<Signature>>,
    pub(in crate::fuzz) replay: String,
    /// Each job's choice of fresh state, and why.
    pub(in crate::fuzz) fresh_notes: Mutex<Vec<String>>,
    pub(in crate::fuzz) corpus: Mutex<Corpus>,
    /// Sequences run as corpus mutants.
    pub(in crate::fuzz) mutants: AtomicU64,
    /// Environment faults met and retried (not VMM bugs).
    pub(in crate::fuzz) environment: Mutex<Vec<String>>,
    /// Hangs saved as unconfirmed, waiting for their rerun.
    pub(in crate::fuzz) pending: Mutex<Vec<PathBuf>>,
}

impl Shared {
    pub(in crate::fuzz) fn judge(&self) -> JudgeOptions {
        let campaign = JudgeOptions::campaign(self.args.jobs);
        JudgeOptions {
            spin: self.args.guest_spin.or(campaign.spin),
            ..campaign
        }
    }

    /// Sequence `seed`'s mutant, when the draw says it mutates (share
    /// `--mutate`) and the corpus holds something.
    pub(in crate::fuzz) fn mutant(
        &self,
        seed: u64,
        gen: &GenConfig,
    ) -> Option<crate::fuzz::corpus::Mutant> {
        let p = self.args.mutate.clamp(0.0, 1.0);
        let roll = (seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 11) as f64 / (1u64 << 53) as f64;
        if roll >= p {
            return None;
        }
        self.corpus.lock().expect("not poisoned").mutant(seed, gen)
    }

    /// Reports an environment fault that is being retried, and keeps it
    /// for the summary.
    pub(in crate::fuzz) fn environment_fault(&self, what: String) {
        self.progress
            .println(format!("environment fault (not a VMM bug): {what}"));
        self.environment.lock().expect("not poisoned").push(what);
    }

    pub(in crate::fuzz) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub(in crate::fuzz) fn io(&self, path: PathBuf) -> impl FnOnce(std::io::Error) -> FuzzError {
        move |source| FuzzError::Io { path, source }
    }
}
