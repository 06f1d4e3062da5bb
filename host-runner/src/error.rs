//! The runner's errors. Every variant says what went wrong and, where the
//! user can do something about it, what to do.

use std::path::PathBuf;
use std::time::Duration;

use protocol::frame::FrameError;
use protocol::{ExceptionReport, PanicReport, Response};

use crate::qemu::{stderr_suffix, QemuExit};

/// Result with the runner's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while running the guest.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// QEMU could not be launched or the guest did not boot (its own
    /// message).
    #[error(transparent)]
    Launch(#[from] crate::qemu::LaunchError),

    /// The guest speaks another protocol version.
    #[error("guest protocol version {guest}, host speaks {host}: rebuild the guest and the runner from the same tree")]
    VersionMismatch { guest: u32, host: u32 },

    /// A request got no answer in time.
    #[error("request {request} got no answer within {timeout:?}: the guest hangs (its serial loop is stuck or it spins in a fault)")]
    Timeout { request: String, timeout: Duration },

    /// The guest panicked.
    #[error("guest panicked at {}:{}:{}: {} (QEMU {exit})", .report.file, .report.line, .report.column, .report.message)]
    GuestPanic {
        report: PanicReport<'static>,
        exit: QemuExit,
    },

    /// The guest took a CPU exception it did not expect.
    #[error("guest took unexpected exception {} ({}) at rip {:#x}, error code {:#x}, cr2 {:#x}, rsp {:#x} (QEMU {exit})",
        .report.vector, crate::rpc::vector_name(.report.vector), .report.rip, .report.error_code, .report.cr2, .report.rsp)]
    GuestException {
        report: ExceptionReport,
        exit: QemuExit,
    },

    /// The serial line closed without a panic or exception report.
    #[error("the guest closed the serial line without a report (QEMU {exit}){}", stderr_suffix(.stderr))]
    GuestDied { exit: QemuExit, stderr: String },

    /// QEMU ended with a status other than the one expected.
    #[error("QEMU ended with {exit}, expected {expected}{}", stderr_suffix(.stderr))]
    UnexpectedExit {
        exit: QemuExit,
        expected: &'static str,
        stderr: String,
    },

    /// The guest sent a frame the host could not decode.
    #[error(
        "the guest sent an undecodable frame: {0} (a guest framing bug or a protocol mismatch)"
    )]
    GuestFrame(FrameError),

    /// A request could not be encoded.
    #[error("request does not fit in a frame: {0}")]
    Encode(FrameError),

    /// The shared-memory transport could not be set up or broke its rules.
    #[error("shared-memory transport: {0} (a guest transport bug, or a VMM that wrote over the ring; `--transport serial` avoids the ring)")]
    Ring(#[from] crate::ring::RingError),

    /// The guest answered something the request does not allow.
    #[error("unexpected answer to {request}: {response:?}")]
    UnexpectedResponse {
        request: String,
        response: Box<Response>,
    },

    /// A QMP command failed (its own message).
    #[error(transparent)]
    Qmp(#[from] crate::qmp::QmpError),

    /// The memory dump does not hold what it should.
    #[error("memory check failed: {0}")]
    MemoryCheck(String),

    /// A guest no run can boot: RAM or files out of range
    /// (`trace::limits`). Refused before QEMU starts (a usage error).
    #[error("{0}")]
    Config(String),

    /// A trace file that cannot be opened or read (a usage error: the
    /// input is wrong, not the guest or the machine).
    #[error("trace {}: {source}", .path.display())]
    Trace {
        path: PathBuf,
        source: trace::TraceError,
    },

    /// An I/O error on the serial line, a socket or a file.
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
