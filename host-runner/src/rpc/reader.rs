//! The reader task: bytes from the guest to frames to messages.

use std::borrow::Cow;

use protocol::frame::{self, Feed, FrameAccumulator, FrameError};
use protocol::{GuestMessage, PanicReport};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::{GuestReport, Inbound};

/// The reader task: bytes to frames to messages.
pub(super) async fn read_frames(
    mut read: impl AsyncRead + Unpin,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    let mut acc = FrameAccumulator::new(vec![0u8; frame::MAX_ENCODED_FRAME]);
    let mut buf = vec![0u8; 64 * 1024];
    let mut ready_seen = false;
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(Inbound::Closed(None));
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Inbound::Closed(Some(e)));
                return;
            }
        };
        for &byte in &buf[..n] {
            let msg = match acc.push(byte) {
                Feed::Pending => continue,
                // A lone zero: the ring's doorbell (or a flush before a
                // report), which only means something once the guest runs.
                Feed::Empty if ready_seen => Inbound::Doorbell,
                Feed::Empty => continue,
                Feed::TooLong => Inbound::Garbled(FrameError::TooLong),
                Feed::Frame(len) => match frame::decode::<GuestMessage>(acc.frame(len)) {
                    Ok(GuestMessage::Log(line)) => {
                        tracing::info!(target: "guest", "{line}");
                        continue;
                    }
                    Ok(GuestMessage::Ready { protocol_version }) => {
                        ready_seen = true;
                        Inbound::Ready(protocol_version)
                    }
                    Ok(GuestMessage::Reply(r)) => Inbound::Reply(r),
                    Ok(GuestMessage::Panic(p)) => {
                        let p = PanicReport {
                            message: Cow::Owned(p.message.into_owned()),
                            file: Cow::Owned(p.file.into_owned()),
                            line: p.line,
                            column: p.column,
                        };
                        tracing::error!(target: "guest", "panic at {}:{}:{}: {}", p.file, p.line, p.column, p.message);
                        Inbound::Report(GuestReport::Panic(p))
                    }
                    Ok(GuestMessage::Exception(e)) => {
                        tracing::error!(target: "guest", "exception {} ({}) at {:#x}", e.vector, vector_name(e.vector), e.rip);
                        Inbound::Report(GuestReport::Exception(e))
                    }
                    Err(e) => Inbound::Garbled(e),
                },
            };
            if let (Inbound::Garbled(e), false) = (&msg, ready_seen) {
                tracing::debug!("undecodable bytes before Ready: {e}");
                continue;
            }
            if tx.send(msg).is_err() {
                return;
            }
        }
    }
}

/// The name of a CPU exception vector.
pub fn vector_name(vector: u8) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        _ => "other",
    }
}
