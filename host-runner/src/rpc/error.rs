//! What can go wrong talking to the guest once it is up: its answers, its
//! death (with QEMU's exit status), and the transport under them.

use std::time::Duration;

use protocol::frame::FrameError;
use protocol::{ExceptionReport, PanicReport, Response};

use super::reader::vector_name;
use crate::qemu::launch_error::stderr_suffix;
use crate::qemu::QemuExit;
use crate::ring::RingError;

/// What can go wrong in a request to the guest, or in the guest while it
/// runs.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Guest protocol version `guest`, host speaks `host`: rebuild the
    /// guest and the runner from the same tree.
    #[error("guest protocol version {guest}, host speaks {host}: rebuild the guest and the runner from the same tree")]
    VersionMismatch { guest: u32, host: u32 },

    /// Request `request` got no answer within `timeout`: the guest hangs
    /// (its serial loop is stuck or it spins in a fault).
    #[error("request {request} got no answer within {timeout:?}: the guest hangs (its serial loop is stuck or it spins in a fault)")]
    Timeout { request: String, timeout: Duration },

    /// Guest panicked at file:line:column: its message (QEMU's `exit`).
    #[error("guest panicked at {}:{}:{}: {} (QEMU {exit})", .report.file, .report.line, .report.column, .report.message)]
    GuestPanic {
        report: PanicReport<'static>,
        exit: QemuExit,
    },

    /// Guest took unexpected exception (vector and name) at rip, error
    /// code, cr2, rsp (QEMU's `exit`).
    #[error("guest took unexpected exception {} ({}) at rip {:#x}, error code {:#x}, cr2 {:#x}, rsp {:#x} (QEMU {exit})",
        .report.vector, vector_name(.report.vector), .report.rip, .report.error_code, .report.cr2, .report.rsp)]
    GuestException {
        report: ExceptionReport,
        exit: QemuExit,
    },

    /// The guest closed the serial line without a report (QEMU's `exit`);
    /// QEMU said `stderr`.
    #[error("the guest closed the serial line without a report (QEMU {exit}){}", stderr_suffix(.stderr))]
    GuestDied { exit: QemuExit, stderr: String },

    /// QEMU ended with `exit`, expected `expected`; QEMU said `stderr`.
    #[error("QEMU ended with {exit}, expected {expected}{}", stderr_suffix(.stderr))]
    UnexpectedExit {
        exit: QemuExit,
        expected: &'static str,
        stderr: String,
    },

    /// The guest sent an undecodable frame: the frame error (a guest
    /// framing bug or a protocol mismatch).
    #[error(
        "the guest sent an undecodable frame: {0} (a guest framing bug or a protocol mismatch)"
    )]
    GuestFrame(FrameError),

    /// Request does not fit in a frame: the frame error.
    #[error("request does not fit in a frame: {0}")]
    Encode(FrameError),

    /// Shared-memory transport: the ring's error (a guest transport bug, or
    /// a VMM that wrote over the ring; `--transport serial` avoids the
    /// ring).
    #[error("shared-memory transport: {0} (a guest transport bug, or a VMM that wrote over the ring; `--transport serial` avoids the ring)")]
    Ring(#[from] RingError),

    /// Unexpected answer to `request`: the response.
    #[error("unexpected answer to {request}: {response:?}")]
    UnexpectedResponse {
        request: String,
        response: Box<Response>,
    },
}
