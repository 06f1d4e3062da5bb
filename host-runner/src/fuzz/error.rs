//! Why a campaign stops.

use std::path::PathBuf;

use trace::Failure;

use crate::exit_code::{Classify, ExitClass};

/// Why a campaign could not go on (a guest bug is a failure in the
/// summary, not an error).
#[derive(Debug, thiserror::Error)]
pub enum FuzzError {
    #[error("writing {}: {source}{}", .path.display(), disk_hint(.source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the guest did not start: {0}")]
    Boot(Failure),
    #[error("an environment fault twice in a row on sequence {k} (not a VMM bug): {failure}")]
    Runner { k: u64, failure: Failure },
    #[error(
        "starting job {index}'s thread or runtime (not a VMM bug; fewer --jobs may do): {source}"
    )]
    Thread {
        index: usize,
        source: std::io::Error,
    },
}

/// The class of a campaign's error: writing and a runner failing twice
/// are the environment's; a guest that does not start is its failure's.
impl Classify for FuzzError {
    fn exit_class(&self) -> ExitClass {
        match self {
            FuzzError::Io { .. } | FuzzError::Runner { .. } | FuzzError::Thread { .. } => {
                ExitClass::Environment
            }
            FuzzError::Boot(f) => ExitClass::of_failure(f),
        }
    }
}

/// What to do about a full disk (an environment fault, not a VMM bug).
fn disk_hint(e: &std::io::Error) -> &'static str {
    if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) {
        " (the disk is full: free some space or pass --out on another disk; nothing \
         about the VMM is known)"
    } else {
        ""
    }
}
