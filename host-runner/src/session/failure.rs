//! Turning what went wrong on the serial line into the guest's errors,
//! with QEMU's exit status.

use protocol::{Request, Response};

use super::EXIT_WAIT;
use crate::qemu::Qemu;
use crate::rpc::{label, GuestReport, LineError, RpcError};

pub(super) fn unexpected(request: &Request, response: Response) -> RpcError {
    RpcError::UnexpectedResponse {
        request: label(request),
        response: Box::new(response),
    }
}

/// Turns a serial-line error into the guest's error, with QEMU's exit
/// status when the guest died.
pub(super) async fn guest_error(qemu: &mut Qemu, e: LineError) -> RpcError {
    match e {
        LineError::Timeout { request, timeout } => RpcError::Timeout { request, timeout },
        LineError::Encode(e) => RpcError::Encode(e),
        LineError::Garbled(e) => RpcError::GuestFrame(e),
        LineError::Ring(e) => RpcError::Ring(e),
        LineError::Panic(p) => report_error(qemu, GuestReport::Panic(p)).await,
        LineError::Exception(x) => report_error(qemu, GuestReport::Exception(x)).await,
        LineError::Closed {
            last_report: Some(report),
            ..
        } => report_error(qemu, report).await,
        LineError::Closed {
            last_report: None,
            io,
        } => {
            if let Some(io) = io {
                tracing::debug!("serial line: {io}");
            }
            let exit = qemu.wait_exit(EXIT_WAIT).await;
            RpcError::GuestDied {
                exit,
                stderr: qemu.final_output().await,
            }
        }
    }
}

pub(super) async fn report_error(qemu: &mut Qemu, report: GuestReport) -> RpcError {
    let exit = qemu.wait_exit(EXIT_WAIT).await;
    match report {
        GuestReport::Panic(report) => RpcError::GuestPanic { report, exit },
        GuestReport::Exception(report) => RpcError::GuestException { report, exit },
    }
}
