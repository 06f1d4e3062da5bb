//! Turning what went wrong on the serial line into the runner's errors,
//! with QEMU's exit status.

use protocol::{Request, Response};

use super::EXIT_WAIT;
use crate::error::Error;
use crate::qemu::Qemu;
use crate::rpc::{label, GuestReport, RpcError};

pub(super) fn unexpected(request: &Request, response: Response) -> Error {
    Error::UnexpectedResponse {
        request: label(request),
        response: Box::new(response),
    }
}

/// Turns a serial-line error into the runner's error, with QEMU's exit
/// status when the guest died.
pub(super) async fn guest_error(qemu: &mut Qemu, e: RpcError) -> Error {
    match e {
        RpcError::Timeout { request, timeout } => Error::Timeout { request, timeout },
        RpcError::Encode(e) => Error::Encode(e),
        RpcError::Garbled(e) => Error::GuestFrame(e),
        RpcError::Ring(e) => Error::Ring(e),
        RpcError::Panic(p) => report_error(qemu, GuestReport::Panic(p)).await,
        RpcError::Exception(x) => report_error(qemu, GuestReport::Exception(x)).await,
        RpcError::Closed {
            last_report: Some(report),
            ..
        } => report_error(qemu, report).await,
        RpcError::Closed {
            last_report: None,
            io,
        } => {
            if let Some(io) = io {
                tracing::debug!("serial line: {io}");
            }
            let exit = qemu.wait_exit(EXIT_WAIT).await;
            Error::GuestDied {
                exit,
                stderr: qemu.final_output().await,
            }
        }
    }
}

pub(super) async fn report_error(qemu: &mut Qemu, report: GuestReport) -> Error {
    let exit = qemu.wait_exit(EXIT_WAIT).await;
    match report {
        GuestReport::Panic(report) => Error::GuestPanic { report, exit },
        GuestReport::Exception(report) => Error::GuestException { report, exit },
    }
}
