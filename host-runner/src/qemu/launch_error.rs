//! What can go wrong launching QEMU, before the guest says `Ready`.

use std::path::PathBuf;
use std::time::Duration;

use super::exit::QemuExit;

/// What can go wrong launching QEMU and booting the guest.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// QEMU not found (where it was searched): install it with
    /// `apt-get install qemu-system-x86` (Debian/Ubuntu), or name the binary
    /// with --qemu PATH or VMMFUZZ_QEMU.
    #[error(
        "QEMU not found ({searched}): install it with `apt-get install qemu-system-x86` \
         (Debian/Ubuntu), or name the binary with --qemu PATH or VMMFUZZ_QEMU"
    )]
    QemuNotFound { searched: String },

    /// Could not start QEMU `binary`: the OS's error.
    #[error("could not start QEMU `{binary}`: {source}")]
    QemuSpawn {
        binary: PathBuf,
        source: std::io::Error,
    },

    /// Guest kernel not found at `path`: build it with
    /// `cargo build -p host-runner` (its build script builds guest/kernel),
    /// or pass --kernel PATH.
    #[error(
        "guest kernel not found at {path}: build it with `cargo build -p host-runner` \
         (its build script builds guest/kernel), or pass --kernel PATH"
    )]
    KernelMissing { path: PathBuf },

    /// Could not set up the private socket directory (check TMPDIR: it must
    /// be writable and short, sockets need paths under 108 bytes).
    #[error("could not set up the private socket directory: {0} (check TMPDIR: it must be writable and short, sockets need paths under 108 bytes)")]
    TempDir(#[source] std::io::Error),

    /// QEMU did not connect its serial port within `timeout`; QEMU said
    /// `stderr`.
    #[error("QEMU did not connect its serial port within {timeout:?}{}", stderr_suffix(.stderr))]
    SerialConnectTimeout { timeout: Duration, stderr: String },

    /// QEMU exited (`exit`) before the guest was ready; QEMU said `stderr`.
    #[error("QEMU exited ({exit}) before the guest was ready{}", stderr_suffix(.stderr))]
    ExitedBeforeReady { exit: QemuExit, stderr: String },

    /// The guest sent no Ready message within `timeout`: it hangs or
    /// crashed early (try --accel tcg, or RUST_LOG=debug to see QEMU's
    /// output).
    #[error("the guest sent no Ready message within {timeout:?}: it hangs or crashed early (try --accel tcg, or RUST_LOG=debug to see QEMU's output)")]
    ReadyTimeout { timeout: Duration },

    /// Accelerator `accel` is not usable here: `reason`.
    #[error("accelerator {accel} is not usable here: {reason}")]
    AccelUnavailable { accel: String, reason: String },
}

impl LaunchError {
    /// How QEMU ended, for the errors that say.
    pub fn exit(&self) -> Option<QemuExit> {
        match self {
            LaunchError::ExitedBeforeReady { exit, .. } => Some(*exit),
            _ => None,
        }
    }
}

/// What QEMU wrote, as the end of an error message (nothing if it wrote
/// nothing).
pub(crate) fn stderr_suffix(stderr: &str) -> String {
    let s = stderr.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!("; QEMU said:\n{s}")
    }
}
