//! The request loop: frames in from the serial line or the shared-memory
//! ring (`protocol::ring`), `vmm_core::dispatch::handle`, answers out the
//! way the request came. A frame that does not decode is answered
//! `BadFrame` and the loop goes on (the serial accumulator resynchronizes
//! on the next 0). With nothing to do the CPU looks at the ring for the
//! host's next request for as long as the ring's `spin` says
//! (`protocol::ring`, rule 4), then sleeps (`serial::wait`) until a byte
//! arrives: a serial frame, or the ring's doorbell.
//!
//! Decoding is `protocol::scan::decode_request`: a frame that nests
//! `Batch` too deep, names more than `MAX_BATCH` requests or has bytes after
//! its request is refused before anything is decoded.

use protocol::frame::{self, FrameError};
use protocol::scan::decode_request;
use protocol::{GuestMessage, Response};

use crate::machine::Kernel;
use crate::ring::Ring;
use crate::serial::{self, Incoming, Receiver};

/// Serves requests for good.
pub fn serve(kernel: &mut Kernel) -> ! {
    let mut rx = Receiver::take();
    let mut ring = Ring::default();
    loop {
        if let Some(posted) = ring.take() {
            let seq = posted.seq;
            let response = match posted.frame {
                Some(bytes) => match decode_request(bytes) {
                    Ok(request) => vmm_core::dispatch::handle(kernel, request),
                    Err(refusal) => refusal.answer(),
                },
                None => Response::BadFrame(FrameError::Decode),
            };
            let len = encode_answer(&GuestMessage::Reply(response), ring.answer_area(seq));
            ring.publish(seq, len);
            continue;
        }
        if let Some(incoming) = rx.poll() {
            let response = match incoming {
                Incoming::TooLong => Response::BadFrame(frame::FrameError::TooLong),
                Incoming::Frame(bytes) => match decode_request(bytes) {
                    Ok(request) => vmm_core::dispatch::handle(kernel, request),
                    Err(refusal) => refusal.answer(),
                },
            };
            serial::send(&GuestMessage::Reply(response));
            continue;
        }
        if rx.in_frame() {
            // The rest of a serial frame is on its way: the UART gets at
            // most a FIFO's worth at a time, and sleeping between them
            // would double the line's latency.
            core::hint::spin_loop();
            continue;
        }
        if ring.in_use() && spin_for_request(&ring) {
            continue;
        }
        serial::wait(|| ring.set_waiting(true), || ring.pending());
        ring.set_waiting(false);
    }
}

/// Looks at the ring until a request is posted (true) or the ring's
/// `spin` ticks pass (false; read again each turn, so the host can end
/// the look early). Never inlined: the profiler counts the samples in it as
/// waiting for the host (`host-runner profile`), not as work.
#[inline(never)]
fn spin_for_request(ring: &Ring) -> bool {
    let start = tsc();
    loop {
        if ring.pending() {
            return true;
        }
        if tsc().wrapping_sub(start) > ring.spin_ticks() {
            return false;
        }
        core::hint::spin_loop();
    }
}

/// The time-stamp counter.
fn tsc() -> u64 {
    // SAFETY: `rdtsc` reads a counter; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Encodes `message` into `area` (a ring slot's frame area) and answers the
/// frame's length, without its trailing zero. A message too big for a frame
/// is replaced by `Reply(BadFrame(Encode))`, so the host always gets an
/// answer.
fn encode_answer(message: &GuestMessage<'_>, area: &mut [u8]) -> usize {
    serial::with_scratch(|scratch| match frame::encode_into(message, scratch, area) {
        Ok(bytes) => bytes.len() - 1,
        Err(err) => {
            let fallback = GuestMessage::Reply(Response::BadFrame(err));
            frame::encode_into(&fallback, scratch, area).map_or(0, |b| b.len() - 1)
        }
    })
}
