//! The serial line under the client: writes that mend a frame cut short,
//! the next message that is not a report, and one request–reply exchange
//! that drops the late replies owed to timed-out requests.

use std::io;
use std::time::Duration;

use protocol::Response;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::{GuestReport, Inbound, LineError, RpcClient};

impl RpcClient {
    pub(super) async fn exchange(
        &mut self,
        bytes: &[u8],
        what: &str,
        timeout: Duration,
    ) -> Result<Response, LineError> {
        let deadline = Instant::now() + timeout;
        self.write(bytes, what, deadline, timeout).await?;
        loop {
            match self.next(deadline, what, timeout).await {
                Ok(Inbound::Reply(r)) if self.stale > 0 => {
                    self.stale -= 1;
                    tracing::debug!("dropped a late reply: {r:?}");
                }
                Ok(Inbound::Garbled(e)) if self.stale > 0 => {
                    self.stale -= 1;
                    tracing::debug!("dropped a late undecodable reply: {e}");
                }
                Ok(Inbound::Reply(r)) => return Ok(r),
                Ok(Inbound::Garbled(e)) => return Err(LineError::Garbled(e)),
                Ok(Inbound::Ready(v)) => {
                    tracing::warn!("guest sent Ready (protocol {v}) again: did it restart?")
                }
                Ok(Inbound::Doorbell) => {}
                Ok(other) => tracing::warn!("unexpected {other:?}"),
                Err(e) => {
                    if matches!(e, LineError::Timeout { .. }) {
                        self.stale += 1;
                    }
                    return Err(e);
                }
            }
        }
    }

    pub(super) async fn write(
        &mut self,
        bytes: &[u8],
        what: &str,
        deadline: Instant,
        total: Duration,
    ) -> Result<(), LineError> {
        if self.closed {
            return Err(self.closed_error(None));
        }
        let this = &mut *self;
        let io = async move {
            if this.partial_frame {
                // End the cut frame: the guest answers it with a BadFrame,
                // which is dropped as a stale reply.
                this.writer.write_all(&[0]).await?;
                this.partial_frame = false;
                this.stale += 1;
            }
            let mut done = 0;
            while done < bytes.len() {
                let n = this.writer.write(&bytes[done..]).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                done += n;
                this.partial_frame = done < bytes.len();
            }
            this.writer.flush().await
        };
        match tokio::time::timeout_at(deadline, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.closed = true;
                Err(self.closed_error(Some(e)))
            }
            Err(_) => Err(LineError::Timeout {
                request: what.to_owned(),
                timeout: total,
            }),
        }
    }

    /// The next message that is not a report; reports end the wait as errors.
    pub(super) async fn next(
        &mut self,
        deadline: Instant,
        what: &str,
        total: Duration,
    ) -> Result<Inbound, LineError> {
        if self.closed {
            return Err(self.closed_error(None));
        }
        match tokio::time::timeout_at(deadline, self.inbound.recv()).await {
            Err(_) => Err(LineError::Timeout {
                request: what.to_owned(),
                timeout: total,
            }),
            Ok(None) => {
                self.closed = true;
                Err(self.closed_error(None))
            }
            Ok(Some(Inbound::Closed(io))) => {
                self.closed = true;
                Err(self.closed_error(io))
            }
            Ok(Some(Inbound::Report(report))) => {
                self.last_report = Some(report.clone());
                Err(match report {
                    GuestReport::Panic(p) => LineError::Panic(p),
                    GuestReport::Exception(e) => LineError::Exception(e),
                })
            }
            Ok(Some(msg)) => Ok(msg),
        }
    }

    fn closed_error(&self, io: Option<io::Error>) -> LineError {
        LineError::Closed {
            last_report: self.last_report.clone(),
            io,
        }
    }
}
