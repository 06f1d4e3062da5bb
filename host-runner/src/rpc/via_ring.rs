//! Requests through the shared-memory ring (`protocol::ring`) once one is
//! attached: post the frame, ring the doorbell when the guest may sleep
//! (again when it missed its wake-up), and take the answer from the ring.

use std::time::Duration;

use protocol::frame::{self, FrameError};
use protocol::{GuestMessage, Response};
use tokio::time::Instant;

use super::{Inbound, LineError, RpcClient};
use crate::ring::RingPort;

impl RpcClient {
    /// From now on requests and answers go through `ring`.
    pub fn attach_ring(&mut self, ring: RingPort) {
        self.ring = Some(ring);
    }

    /// Whether requests go through the shared-memory ring.
    pub fn uses_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// The ring's port, once attached.
    pub fn ring(&self) -> Option<&RingPort> {
        self.ring.as_ref()
    }

    /// Posts a frame in the ring, rings the doorbell if the guest may
    /// sleep, and waits until `deadline` (`timeout` from the call) for the
    /// answer in the ring.
    pub(super) async fn exchange_ring(
        &mut self,
        bytes: &[u8],
        what: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Response, LineError> {
        let ring = self.ring.as_mut().expect("a ring");
        let posted = ring.post(bytes)?;
        let mut answer = self.ring_answer(posted, what, deadline, timeout).await?;
        match frame::decode::<GuestMessage>(&mut answer) {
            Ok(GuestMessage::Reply(r)) => Ok(r),
            Ok(other) => {
                tracing::warn!("ring answer {} is not a reply: {other:?}", posted.0);
                Err(LineError::Garbled(FrameError::Decode))
            }
            Err(e) => Err(LineError::Garbled(e)),
        }
    }

    /// Rings the doorbell for the request `posted` (its sequence number,
    /// and whether the guest may sleep) when needed, and waits until
    /// `deadline` for its answer frame in the ring.
    pub(super) async fn ring_answer(
        &mut self,
        (seq, doorbell): (u64, bool),
        what: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<u8>, LineError> {
        if doorbell {
            self.write(&[0], what, deadline, timeout).await?;
        }
        let nudge = Duration::from_millis(protocol::ring::NUDGE_MS);
        let mut look_again = Instant::now() + nudge;
        loop {
            if let Some(answer) = self.ring.as_mut().expect("a ring").answer(seq) {
                return Ok(answer?);
            }
            let wake = look_again.min(deadline);
            let inbound = match self.next(wake, what, timeout).await {
                Err(LineError::Timeout { .. }) if wake < deadline => {
                    // Rule 6: asleep with the request posted, the guest
                    // missed its wake-up; ring again.
                    look_again = Instant::now() + nudge;
                    let ring = self.ring.as_mut().expect("a ring");
                    if ring.guest_sleeps() {
                        ring.count_nudge();
                        tracing::debug!("ring: request {seq} posted, guest asleep: doorbell again");
                        self.write(&[0], what, deadline, timeout).await?;
                    }
                    continue;
                }
                r => r?,
            };
            match inbound {
                Inbound::Doorbell => {}
                Inbound::Reply(r) => {
                    tracing::warn!("a serial reply while the ring is in use: {r:?}")
                }
                other => tracing::warn!("unexpected {other:?}"),
            }
        }
    }
}
