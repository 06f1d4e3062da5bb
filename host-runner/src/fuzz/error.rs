//! Why a campaign stops.

use std::path::PathBuf;

use trace::Failure;

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
