//! The runner's error: the sum of its modules' errors (launching QEMU,
//! talking to the guest, QMP) where one operation meets several of them
//! (a session that launches, then talks), and the failures that belong to
//! no module of their own. Every variant says what went wrong and, where
//! the user can do something about it, what to do.

use std::path::PathBuf;

use crate::qemu::launch_error::LaunchError;
use crate::qmp::QmpError;
use crate::ram::RamError;
use crate::rpc::RpcError;

/// Result with the runner's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while running the guest, in the operations that mix
/// launching it, talking to it and QMP.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The launch's message ([`LaunchError`]): QEMU could not be launched
    /// or the guest did not get to `Ready`.
    #[error(transparent)]
    Launch(#[from] LaunchError),

    /// The guest's message ([`RpcError`]): a request failed, or the guest
    /// died.
    #[error(transparent)]
    Rpc(#[from] RpcError),

    /// QMP's message ([`QmpError`]): QMP `command` failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),

    /// Guest RAM's message ([`RamError`]): the RAM file shared with QEMU
    /// could not be created or mapped.
    #[error(transparent)]
    Ram(#[from] RamError),

    /// Memory check failed: what the dump does not hold that it should.
    #[error("memory check failed: {0}")]
    MemoryCheck(String),

    /// Why no run can boot this guest: RAM or files out of range
    /// (`trace::limits`). Refused before QEMU starts (a usage error).
    #[error("{0}")]
    Config(String),

    /// Trace `path`: why it cannot be opened or read (a usage error: the
    /// input is wrong, not the guest or the machine).
    #[error("trace {}: {source}", .path.display())]
    Trace {
        path: PathBuf,
        source: trace::TraceError,
    },

    /// What was being done (on the serial line, a socket or a file): the
    /// I/O error.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
