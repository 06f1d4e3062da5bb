//! The request loop: frames in, `vmm_core::dispatch::handle`, replies out.
//! A frame that does not decode is answered `BadFrame` and the loop goes on
//! (the accumulator resynchronizes on the next 0).
//!
//! Decoding is `protocol::frame::decode` with one step between unframing and
//! postcard: frames that nest `Batch` too deep are refused (`batch_depth`).

use protocol::frame::{self, FrameError};
use protocol::{GuestMessage, Request, Response};

use crate::batch_depth::{self, Scan};
use crate::machine::Kernel;
use crate::serial::{self, Incoming, Receiver};

/// Serves requests for good.
pub fn serve(kernel: &mut Kernel) -> ! {
    batch_depth::self_check();
    let mut rx = Receiver::take();
    loop {
        let response = match rx.next() {
            Incoming::TooLong => Response::BadFrame(frame::FrameError::TooLong),
            Incoming::Frame(bytes) => match decode(bytes) {
                Ok(request) => vmm_core::dispatch::handle(kernel, request),
                Err(err) => Response::BadFrame(err),
            },
        };
        serial::send(&GuestMessage::Reply(response));
    }
}

/// Unframes and decodes one request, refusing deep `Batch` nesting.
fn decode(bytes: &mut [u8]) -> Result<Request, FrameError> {
    let body = frame::unframe(bytes)?;
    if batch_depth::scan(body) == Scan::TooDeep {
        return Err(FrameError::Decode);
    }
    postcard::from_bytes(body).map_err(|_| FrameError::Decode)
}
