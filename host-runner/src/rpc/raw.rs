//! Raw bytes on the serial line, for the wire fuzzer (`crate::wire`): a
//! burst of anything, closed by a lone frame delimiter and a `Ping`, and
//! every reply the guest sends until that `Ping`'s `Pong`.

use std::time::Duration;

use protocol::frame::{self, FrameError};
use protocol::{Request, Response};
use tokio::time::Instant;

use super::{Inbound, RpcClient, RpcError};

/// What the guest sent back for a burst, before the closing `Pong`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BurstReplies {
    /// The replies that decoded (a `BadFrame` for each damaged frame, an
    /// answer for each frame that held a request).
    pub answers: Vec<Response>,
    /// Replies that did not decode.
    pub garbled: Vec<FrameError>,
    /// `Ready` messages: the guest restarted.
    pub restarts: usize,
}

impl RpcClient {
    /// Writes `bytes` as they are on the serial line, then a `0` (which
    /// ends any frame the burst left open) and `Ping { nonce }`; collects
    /// every reply until that `Pong`, all within `timeout`.
    pub async fn burst_then_ping(
        &mut self,
        bytes: &[u8],
        nonce: u64,
        timeout: Duration,
    ) -> Result<BurstReplies, RpcError> {
        let deadline = Instant::now() + timeout;
        let mut out = bytes.to_vec();
        out.push(0);
        out.extend(frame::encode(&Request::Ping { nonce }).map_err(RpcError::Encode)?);
        let what = "Ping after a wire burst";
        self.write(&out, what, deadline, timeout).await?;
        let mut got = BurstReplies::default();
        loop {
            match self.next(deadline, what, timeout).await? {
                Inbound::Reply(Response::Pong { nonce: n }) if n == nonce => return Ok(got),
                Inbound::Reply(r) => got.answers.push(r),
                Inbound::Garbled(e) => got.garbled.push(e),
                Inbound::Ready(_) => got.restarts += 1,
                Inbound::Doorbell => {}
                other => tracing::warn!("unexpected {other:?} after a wire burst"),
            }
        }
    }
}
