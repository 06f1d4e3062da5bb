//! The request loop: frames in, `vmm_core::dispatch::handle`, replies out.
//! A frame that does not decode is answered `BadFrame` and the loop goes on
//! (the accumulator resynchronizes on the next 0).

use protocol::frame;
use protocol::{GuestMessage, Request, Response};

use crate::machine::Kernel;
use crate::serial::{self, Incoming, Receiver};

/// Serves requests for good.
pub fn serve(kernel: &mut Kernel) -> ! {
    let mut rx = Receiver::take();
    loop {
        let response = match rx.next() {
            Incoming::TooLong => Response::BadFrame(frame::FrameError::TooLong),
            Incoming::Frame(bytes) => match frame::decode::<Request>(bytes) {
                Ok(request) => vmm_core::dispatch::handle(kernel, request),
                Err(err) => Response::BadFrame(err),
            },
        };
        serial::send(&GuestMessage::Reply(response));
    }
}
