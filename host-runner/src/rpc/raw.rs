//! Raw bytes for the wire fuzzer (`crate::wire`): on the serial line, a
//! burst of anything, closed by a lone frame delimiter and a `Ping`, and
//! every reply the guest sends until that `Ping`'s `Pong`; in the ring,
//! one slot per frame, under headers that may lie, and the answer of
//! each.

use std::time::Duration;

use protocol::frame::{self, FrameError};
use protocol::{GuestMessage, Request, Response};
use tokio::time::Instant;

use super::{Inbound, LineError, RpcClient};
use crate::ring::SlotHeader;

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
    ) -> Result<BurstReplies, LineError> {
        let deadline = Instant::now() + timeout;
        let mut out = bytes.to_vec();
        out.push(0);
        out.extend(frame::encode(&Request::Ping { nonce }).map_err(LineError::Encode)?);
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

impl RpcClient {
    /// Posts each of `slots` in the ring (its bytes cut to a slot's
    /// capacity, under its header) and waits for its answer before the
    /// next, all within `timeout`: each slot's answer, in order (a
    /// `BadFrame` when its header lies or its bytes are no frame; an
    /// answer that is no reply is undecodable). Without a ring, nothing is
    /// sent.
    pub async fn ring_burst(
        &mut self,
        slots: &[(Vec<u8>, SlotHeader)],
        timeout: Duration,
    ) -> Result<Vec<Result<Response, FrameError>>, LineError> {
        let deadline = Instant::now() + timeout;
        let what = "wire burst in the ring";
        let mut got = Vec::with_capacity(slots.len());
        for (bytes, header) in slots {
            let Some(ring) = self.ring.as_mut() else {
                break;
            };
            let posted = ring.post_raw(bytes, *header)?;
            let mut answer = self.ring_answer(posted, what, deadline, timeout).await?;
            got.push(match frame::decode::<GuestMessage>(&mut answer) {
                Ok(GuestMessage::Reply(r)) => Ok(r),
                Ok(_) => Err(FrameError::Decode),
                Err(e) => Err(e),
            });
        }
        Ok(got)
    }
}
