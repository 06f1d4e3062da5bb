//! Everything the guest sends: replies, and the events a host must see even
//! when no request is pending (ready, log lines, panics, exceptions).

use alloc::borrow::Cow;
use serde::{Deserialize, Serialize};

use crate::Response;

/// One frame from the guest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum GuestMessage<'a> {
    /// The guest has initialized its serial port and serves requests from now
    /// on; bytes sent before this are lost.
    Ready { protocol_version: u32 },
    /// The answer to the request received last.
    Reply(Response),
    /// A line of diagnostics.
    #[serde(borrow)]
    Log(Cow<'a, str>),
    /// The guest panicked; it exits through `isa-debug-exit` with
    /// [`crate::EXIT_PANIC`] next.
    #[serde(borrow)]
    Panic(PanicReport<'a>),
    /// An exception the kernel did not expect; it exits with
    /// [`crate::EXIT_EXCEPTION`] next.
    Exception(ExceptionReport),
}

/// A panic's message and location.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PanicReport<'a> {
    #[serde(borrow)]
    pub message: Cow<'a, str>,
    #[serde(borrow)]
    pub file: Cow<'a, str>,
    pub line: u32,
    pub column: u32,
}

/// An unexpected CPU exception.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionReport {
    /// Vector number (14 = page fault, 13 = general protection, 8 = double
    /// fault, …).
    pub vector: u8,
    /// The error code the CPU pushed, or 0 for vectors without one.
    pub error_code: u64,
    /// Instruction pointer at the exception.
    pub rip: u64,
    /// CR2 (the faulting address, meaningful for page faults).
    pub cr2: u64,
    /// Stack pointer at the exception.
    pub rsp: u64,
}

impl GuestMessage<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> GuestMessage<'static> {
        match self {
            GuestMessage::Ready { protocol_version } => GuestMessage::Ready { protocol_version },
            GuestMessage::Reply(r) => GuestMessage::Reply(r),
            GuestMessage::Log(s) => GuestMessage::Log(Cow::Owned(s.into_owned())),
            GuestMessage::Panic(p) => GuestMessage::Panic(PanicReport {
                message: Cow::Owned(p.message.into_owned()),
                file: Cow::Owned(p.file.into_owned()),
                line: p.line,
                column: p.column,
            }),
            GuestMessage::Exception(e) => GuestMessage::Exception(e),
        }
    }
}
