//! The RPC client against a fake guest on an in-memory stream. The tests
//! of timeouts run on paused time (`start_paused`): the timeouts and the
//! guest's delays follow tokio's virtual clock, in a fixed order whatever
//! the machine's load.

use std::borrow::Cow;
use std::time::Duration;

use protocol::frame::{self, Feed, FrameAccumulator, FrameError};
use protocol::{ExceptionReport, GuestMessage, PanicReport, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{GuestReport, LineError, RpcClient};

/// Nonces the fake guest treats specially.
const HANG: u64 = u64::MAX;
const LATE: u64 = u64::MAX - 1;
const LOG_FIRST: u64 = 42;

const T: Duration = Duration::from_secs(5);

async fn send(io: &mut DuplexStream, msg: &GuestMessage<'_>) {
    io.write_all(&frame::encode(msg).unwrap()).await.unwrap();
}

/// A guest that says Ready and answers like the real one.
async fn fake_guest(io: DuplexStream) {
    slow_fake_guest(io, Duration::ZERO).await
}

/// A guest that reads nothing for `stall` after saying Ready.
async fn slow_fake_guest(mut io: DuplexStream, stall: Duration) {
    // Noise before Ready is ignored by the host.
    io.write_all(b"boot noise\0").await.unwrap();
    send(
        &mut io,
        &GuestMessage::Ready {
            protocol_version: 1,
        },
    )
    .await;
    tokio::time::sleep(stall).await;
    let mut acc = FrameAccumulator::new(vec![0u8; frame::MAX_ENCODED_FRAME]);
    let mut buf = [0u8; 4096];
    loop {
        let n = match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for &byte in &buf[..n] {
            let len = match acc.push(byte) {
                Feed::Pending | Feed::Empty => continue,
                Feed::TooLong => {
                    send(
                        &mut io,
                        &GuestMessage::Reply(Response::BadFrame(FrameError::TooLong)),
                    )
                    .await;
                    continue;
                }
                Feed::Frame(len) => len,
            };
            let reply = match frame::decode::<Request>(acc.frame(len)) {
                Err(e) => Response::BadFrame(e),
                Ok(Request::Ping { nonce: HANG }) => continue,
                Ok(Request::Ping { nonce: LATE }) => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Response::Pong { nonce: LATE }
                }
                Ok(Request::Ping { nonce }) => {
                    if nonce == LOG_FIRST {
                        send(&mut io, &GuestMessage::Log(Cow::Borrowed("about to pong"))).await;
                    }
                    Response::Pong { nonce }
                }
                Ok(Request::Batch(v)) => Response::Batch(
                    v.into_iter()
                        .map(|r| match r {
                            Request::Ping { nonce } => Response::Pong { nonce },
                            _ => Response::Done,
                        })
                        .collect(),
                ),
                Ok(Request::Panic { .. }) => {
                    let report = PanicReport {
                        message: Cow::Borrowed("panic requested by host"),
                        file: Cow::Borrowed("kernel/src/rpc.rs"),
                        line: 12,
                        column: 5,
                    };
                    send(&mut io, &GuestMessage::Panic(report)).await;
                    return;
                }
                Ok(Request::Stats) => {
                    let e = ExceptionReport {
                        vector: 14,
                        error_code: 2,
                        rip: 0x1000,
                        cr2: 0xdead_0000,
                        rsp: 0x8000,
                    };
                    send(&mut io, &GuestMessage::Exception(e)).await;
                    return;
                }
                Ok(Request::Shutdown) => return,
                Ok(_) => Response::Done,
            };
            send(&mut io, &GuestMessage::Reply(reply)).await;
        }
    }
}

async fn client() -> RpcClient {
    let (host, guest) = tokio::io::duplex(1 << 16);
    tokio::spawn(fake_guest(guest));
    let mut c = RpcClient::new(host, T);
    assert_eq!(c.wait_ready(T).await.unwrap(), 1);
    c
}

/// Asserts that `Ping { nonce }` is answered `Pong { nonce }`.
async fn assert_pongs(c: &mut RpcClient, nonce: u64) {
    let answer = c.call(&Request::Ping { nonce }).await.unwrap();
    assert_eq!(answer, Response::Pong { nonce });
}

#[tokio::test]
async fn ping_and_batch() {
    let mut c = client().await;
    assert_pongs(&mut c, 5).await;
    // A Log before the reply is logged, not taken as the reply.
    assert_pongs(&mut c, LOG_FIRST).await;
    let batch = Request::Batch((0..300).map(|nonce| Request::Ping { nonce }).collect());
    match c.call(&batch).await.unwrap() {
        Response::Batch(v) => {
            assert_eq!(v.len(), 300);
            assert_eq!(v[299], Response::Pong { nonce: 299 });
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn damaged_frame_gets_bad_frame_and_the_line_goes_on() {
    let mut c = client().await;
    let mut bytes = frame::encode(&Request::Ping { nonce: 0x1122_3344 }).unwrap();
    bytes[2] ^= 0x40; // still nonzero: COBS survives, the CRC does not
    assert_ne!(bytes[2], 0);
    match c.call_raw(&bytes, T).await.unwrap() {
        Response::BadFrame(FrameError::Checksum { .. } | FrameError::Cobs) => {}
        other => panic!("{other:?}"),
    }
    assert_pongs(&mut c, 9).await;
}

#[tokio::test(start_paused = true)]
async fn timeout_then_late_reply_is_dropped() {
    let mut c = client().await;
    let err = c
        .call_timeout(&Request::Ping { nonce: LATE }, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LineError::Timeout { timeout, .. } if *timeout == Duration::from_millis(50)),
        "{err}"
    );
    // The late Pong { LATE } arrives during this call and must not be
    // mistaken for its answer.
    assert_pongs(&mut c, 3).await;
}

#[tokio::test(start_paused = true)]
async fn hang_times_out() {
    let mut c = client().await;
    let err = c
        .call_timeout(&Request::Ping { nonce: HANG }, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(matches!(err, LineError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn panic_is_reported_then_eof_keeps_it() {
    let mut c = client().await;
    let err = c
        .call(&Request::Panic {
            privilege: protocol::Privilege::Kernel,
        })
        .await
        .unwrap_err();
    match err {
        LineError::Panic(p) => {
            assert_eq!(p.message, "panic requested by host");
            assert_eq!(
                (p.file.as_ref(), p.line, p.column),
                ("kernel/src/rpc.rs", 12, 5)
            );
        }
        other => panic!("{other}"),
    }
    // The fake guest has gone: the next call sees the end of the line, with
    // the panic as the last report.
    match c.call(&Request::Ping { nonce: 1 }).await.unwrap_err() {
        LineError::Closed {
            last_report: Some(GuestReport::Panic(p)),
            ..
        } => assert_eq!(p.line, 12),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn exception_is_reported() {
    let mut c = client().await;
    match c.call(&Request::Stats).await.unwrap_err() {
        LineError::Exception(e) => assert_eq!((e.vector, e.cr2), (14, 0xdead_0000)),
        other => panic!("{other}"),
    }
    assert!(matches!(c.last_report(), Some(GuestReport::Exception(_))));
}

#[tokio::test]
async fn eof_without_report() {
    let mut c = client().await;
    c.send(&Request::Shutdown).await.unwrap();
    assert_eq!(c.wait_closed(T).await.unwrap(), None);
    match c.call(&Request::Ping { nonce: 1 }).await.unwrap_err() {
        LineError::Closed {
            last_report: None, ..
        } => {}
        other => panic!("{other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn ready_timeout_when_guest_is_silent() {
    let (host, _guest) = tokio::io::duplex(64);
    let mut c = RpcClient::new(host, T);
    let err = c.wait_ready(Duration::from_millis(20)).await.unwrap_err();
    assert!(matches!(err, LineError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn undecodable_reply_is_an_error() {
    let (host, mut guest) = tokio::io::duplex(1 << 16);
    let mut c = RpcClient::new(host, T);
    send(
        &mut guest,
        &GuestMessage::Ready {
            protocol_version: 1,
        },
    )
    .await;
    c.wait_ready(T).await.unwrap();
    let responder = tokio::spawn(async move {
        let mut buf = [0u8; 64];
        let _ = guest.read(&mut buf).await;
        guest.write_all(b"\x05garb\0").await.unwrap();
        guest
    });
    let err = c.call(&Request::Ping { nonce: 1 }).await.unwrap_err();
    assert!(matches!(err, LineError::Garbled(_)), "{err}");
    drop(responder.await);
}

#[tokio::test(start_paused = true)]
async fn write_cut_by_a_timeout_is_ended_and_its_answer_dropped() {
    // A small pipe: a big request fills it while the guest does not read.
    let (host, guest) = tokio::io::duplex(64);
    tokio::spawn(slow_fake_guest(guest, Duration::from_millis(300)));
    let mut c = RpcClient::new(host, T);
    c.wait_ready(T).await.unwrap();
    let big = Request::Batch((0..200).map(|nonce| Request::Ping { nonce }).collect());
    let err = c
        .call_timeout(&big, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, LineError::Timeout { .. }), "{err}");
    // The cut frame is ended with a delimiter; the guest's BadFrame for it is
    // not taken as the answer to this Ping.
    assert_pongs(&mut c, 9).await;
}

/// The guest's end of a ring in memory the test owns, for the ring's
/// wake-up rules: a guest that misses its wake-up (rule 4 can under TCG)
/// must still get the request, through the host's second look (rule 6);
/// the host's `spin` is the guest's word.
mod ring_wakeup {
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::sync::Arc;

    use protocol::ring::{
        self, MAGIC, OFF_MAGIC, OFF_REQ_SEQ, OFF_RESP_SEQ, OFF_SLOTS, OFF_SLOT_BYTES, OFF_SPIN,
        OFF_VERSION, OFF_WAITING, RING_BYTES, SLOTS, SLOT_BYTES, SLOT_HEADER,
    };
    use protocol::PhysRange;

    use super::*;
    use crate::ram::{Mapping, RamBacking};
    use crate::ring::RingPort;

    /// Raw access to the ring at offset 0 of `map`.
    struct Guest(Arc<Mapping>);

    impl Guest {
        fn at(&self, offset: u64, len: u64) -> *mut u8 {
            self.0.at(offset, len).expect("inside the ring")
        }
        fn word64(&self, offset: u64) -> &AtomicU64 {
            // SAFETY: an 8-aligned header word inside the mapping, which
            // `self.0` keeps alive; both sides use it atomically.
            unsafe { AtomicU64::from_ptr(self.at(offset, 8).cast()) }
        }
        fn word32(&self, offset: u64) -> &AtomicU32 {
            // SAFETY: as in `word64`, a 4-aligned u32.
            unsafe { AtomicU32::from_ptr(self.at(offset, 4).cast()) }
        }
        fn write(&self, offset: u64, bytes: &[u8]) {
            let p = self.at(offset, bytes.len() as u64);
            // SAFETY: `at` checked the range; the host does not touch these
            // bytes while the guest writes them (the ring's rules).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) }
        }
        fn read(&self, offset: u64, len: u64) -> Vec<u8> {
            let mut out = vec![0u8; len as usize];
            let p = self.at(offset, len);
            // SAFETY: as in `write`; the host published these bytes.
            unsafe { std::ptr::copy_nonoverlapping(p, out.as_mut_ptr(), out.len()) }
            out
        }
        fn header(&self) {
            self.write(OFF_MAGIC, &MAGIC);
            self.write(OFF_VERSION, &ring::VERSION.to_le_bytes());
            self.write(OFF_SLOTS, &(SLOTS as u32).to_le_bytes());
            self.write(OFF_SLOT_BYTES, &SLOT_BYTES.to_le_bytes());
        }
        /// Serves request `seq`: a Pong for a Ping.
        fn serve(&self, seq: u64) {
            let slot = ring::slot(seq);
            let head = self.read(slot, SLOT_HEADER);
            let len = u64::from_le_bytes(head[8..16].try_into().unwrap());
            let mut body = self.read(slot + SLOT_HEADER, len);
            let reply = match frame::decode::<Request>(&mut body) {
                Ok(Request::Ping { nonce }) => Response::Pong { nonce },
                _ => Response::Done,
            };
            let bytes = frame::encode(&GuestMessage::Reply(reply)).unwrap();
            let bytes = bytes.strip_suffix(&[0]).unwrap();
            self.write(slot + SLOT_HEADER, bytes);
            self.write(slot + 8, &(bytes.len() as u64).to_le_bytes());
            self.write(slot, &seq.to_le_bytes());
            self.word64(OFF_RESP_SEQ).store(seq, Ordering::Release);
        }
    }

    /// A ring at the start of a RAM file of its own (the directory keeps
    /// the file), its header written and `then` done by the guest before
    /// the host opens its port.
    fn ring_in_memory(then: impl FnOnce(&Guest)) -> (tempfile::TempDir, Guest, RingPort) {
        let dir = tempfile::tempdir().unwrap();
        let ram = RamBacking::create(RING_BYTES, dir.path())
            .unwrap()
            .map()
            .unwrap();
        let guest = Guest(ram.mapping());
        guest.header();
        then(&guest);
        let whole = PhysRange {
            start: 0,
            end: RING_BYTES,
        };
        let port = RingPort::open(&ram, whole).unwrap();
        (dir, guest, port)
    }

    /// The host's `spin` lands in the word the guest reads (rule 4).
    #[test]
    fn the_spin_the_host_sets_is_the_word_the_guest_reads() {
        let (_dir, guest, port) = ring_in_memory(|g| {
            g.word64(OFF_SPIN)
                .store(ring::SPIN_TICKS, Ordering::Relaxed)
        });
        assert_eq!(port.spin(), ring::SPIN_TICKS);
        port.swap_spin(0);
        assert_eq!(guest.word64(OFF_SPIN).load(Ordering::Relaxed), 0);
        port.swap_spin(12_345);
        assert_eq!(guest.word64(OFF_SPIN).load(Ordering::Relaxed), 12_345);
    }

    #[tokio::test]
    async fn a_guest_that_missed_its_wake_up_is_woken_again() {
        let (_dir, guest, port) = ring_in_memory(|_| {});
        let (host, mut line) = tokio::io::duplex(1 << 16);
        let mut c = RpcClient::new(host, T);
        c.attach_ring(port);
        let sleeper = tokio::spawn(async move {
            // The lost wake-up: the request is posted while `waiting` is
            // still 0 (no doorbell), and the guest goes to sleep without
            // having seen it, as when its store of `waiting` and its load
            // of `req_seq` pass each other.
            while guest.word64(OFF_REQ_SEQ).load(Ordering::Acquire) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            guest.word32(OFF_WAITING).store(1, Ordering::SeqCst);
            let mut byte = [1u8];
            while byte != [0] {
                line.read_exact(&mut byte).await.unwrap();
            }
            guest.word32(OFF_WAITING).store(0, Ordering::SeqCst);
            guest.serve(1);
            line.write_all(&[0]).await.unwrap();
            line
        });
        let answer = c
            .call_timeout(&Request::Ping { nonce: 7 }, Duration::from_secs(10))
            .await
            .expect("woken by the second doorbell, not a timeout");
        assert_eq!(answer, Response::Pong { nonce: 7 });
        assert!(
            c.ring().expect("a ring").nudges() >= 1,
            "the second doorbell is counted"
        );
        drop(sleeper.await.unwrap());
    }
}
