//! The serial RPC client: sends framed [`Request`]s and demultiplexes what
//! the guest sends back ([`protocol::GuestMessage`]).
//!
//! A reader task owns the receiving half of the line. It turns the byte
//! stream into frames, logs the guest's `Log` lines through `tracing`
//! (target `guest`), and passes everything else to the client: replies,
//! `Ready`, panic and exception reports, undecodable frames, and the end of
//! the line. The client sends one request at a time and waits for its reply
//! with a timeout. Every frame the guest receives is answered by exactly one
//! reply (a `BadFrame` for a damaged one), so when a request times out the
//! client remembers that one reply is still owed and drops it when it comes
//! late, instead of taking it for the answer to the next request.
//!
//! Once a [`RingPort`] is attached ([`RpcClient::attach_ring`]), requests
//! and answers travel through the shared-memory ring (`protocol::ring`)
//! instead, and the serial line carries only the doorbells, logs and
//! reports; [`RpcClient::call_serial`] still sends over the line.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use protocol::frame::{self, FrameError};
use protocol::{ExceptionReport, PanicReport, Request, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ring::{RingError, RingPort};

/// The last report the guest sent before it died.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestReport {
    Panic(PanicReport<'static>),
    Exception(ExceptionReport),
}

/// What can go wrong on the serial line.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// No answer in time; the late reply, if any, will be dropped.
    #[error("{request} got no answer within {timeout:?}")]
    Timeout { request: String, timeout: Duration },
    /// The guest panicked.
    #[error("guest panicked: {}", .0.message)]
    Panic(PanicReport<'static>),
    /// The guest took an unexpected exception.
    #[error("guest took exception {}", .0.vector)]
    Exception(ExceptionReport),
    /// The line closed (QEMU ended); `last_report` is what the guest said
    /// before, if anything.
    #[error("serial line closed{}", .io.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Closed {
        last_report: Option<GuestReport>,
        io: Option<io::Error>,
    },
    /// The request does not fit in a frame.
    #[error("cannot encode request: {0}")]
    Encode(FrameError),
    /// The shared-memory ring broke its rules.
    #[error("shared-memory transport: {0}")]
    Ring(#[from] RingError),
    /// The guest sent a frame that does not decode (it was taken as the
    /// reply to the pending request).
    #[error("undecodable frame from the guest: {0}")]
    Garbled(FrameError),
}

#[derive(Debug)]
enum Inbound {
    Ready(u32),
    /// An empty frame: the ring's doorbell.
    Doorbell,
    Reply(Response),
    Report(GuestReport),
    Garbled(FrameError),
    Closed(Option<io::Error>),
}

/// Sends requests over a byte stream and receives their replies.
pub struct RpcClient {
    writer: Pin<Box<dyn AsyncWrite + Send>>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    reader: JoinHandle<()>,
    timeout: Duration,
    /// Replies owed to requests that timed out.
    stale: usize,
    /// A write was cut short inside a frame: send a lone delimiter first.
    partial_frame: bool,
    last_report: Option<GuestReport>,
    closed: bool,
    ring: Option<RingPort>,
}

impl fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcClient")
            .field("timeout", &self.timeout)
            .field("stale", &self.stale)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl RpcClient {
    /// A client over `stream` whose requests time out after `timeout`.
    pub fn new<S>(stream: S, timeout: Duration) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        let (tx, inbound) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_frames(read, tx));
        RpcClient {
            writer: Box::pin(write),
            inbound,
            reader,
            timeout,
            stale: 0,
            partial_frame: false,
            last_report: None,
            closed: false,
            ring: None,
        }
    }

    /// The default request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the default request timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The guest's last panic or exception report, if it sent one.
    pub fn last_report(&self) -> Option<&GuestReport> {
        self.last_report.as_ref()
    }

    /// Waits for the guest's `Ready` message; returns its protocol version.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<u32, LineError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline, "Ready", timeout).await? {
                Inbound::Ready(version) => return Ok(version),
                other => tracing::warn!("guest sent {other:?} before Ready; ignored"),
            }
        }
    }

    /// Sends `request` and waits (the default timeout) for its reply.
    pub async fn call(&mut self, request: &Request) -> Result<Response, LineError> {
        self.call_timeout(request, self.timeout).await
    }

    /// Sends `request` and waits up to `timeout` for its reply.
    pub async fn call_timeout(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, LineError> {
        if self.ring.is_none() {
            return self.call_serial(request, timeout).await;
        }
        let bytes = frame::encode(request).map_err(LineError::Encode)?;
        let deadline = Instant::now() + timeout;
        self.exchange_ring(&bytes, &label(request), deadline, timeout)
            .await
    }

    /// Sends `request` over the serial line whatever the transport, and
    /// waits up to `timeout` for its reply there.
    pub async fn call_serial(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, LineError> {
        let bytes = frame::encode(request).map_err(LineError::Encode)?;
        self.exchange(&bytes, &label(request), timeout).await
    }

    /// Sends raw bytes (a hand-made or damaged frame) and waits up to
    /// `timeout` for the one reply they should get.
    pub async fn call_raw(
        &mut self,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<Response, LineError> {
        self.exchange(bytes, "raw frame", timeout).await
    }

    /// Sends `request` without waiting for a reply (`Shutdown`, `Panic`).
    /// It goes on the serial line, which a guest looking at the ring for
    /// its next request does not read until its spin ends: with a ring,
    /// the spin ends first (`protocol::ring` rule 4; the guest then sleeps
    /// and the line's byte wakes it).
    pub async fn send(&mut self, request: &Request) -> Result<(), LineError> {
        if let Some(ring) = &self.ring {
            ring.swap_spin(0);
        }
        let bytes = frame::encode(request).map_err(LineError::Encode)?;
        let deadline = Instant::now() + self.timeout;
        self.write(&bytes, &label(request), deadline, self.timeout)
            .await
    }

    /// Waits up to `timeout` for the line to close, and returns what the
    /// guest reported before (replies are dropped).
    pub async fn wait_closed(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<GuestReport>, LineError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline, "end of the serial line", timeout).await {
                Ok(_) | Err(LineError::Panic(_)) | Err(LineError::Exception(_)) => {}
                Err(LineError::Closed { last_report, .. }) => return Ok(last_report),
                Err(e) => return Err(e),
            }
        }
    }
}

/// A short name for a request, for errors and logs.
pub fn label(request: &Request) -> String {
    match request {
        Request::Batch(v) => format!("Batch of {}", v.len()),
        Request::Write { addr, len, .. } => format!("Write {len:#x} bytes at {addr:#x}"),
        other => {
            let s = format!("{other:?}");
            s.chars().take(120).collect()
        }
    }
}

mod error;
mod line;
mod raw;
mod reader;
mod via_ring;
pub use error::RpcError;
pub use raw::BurstReplies;
use reader::read_frames;
pub use reader::vector_name;

#[cfg(test)]
mod tests;
