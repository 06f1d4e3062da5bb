//! The request loop: frames in, dispatch, replies out.

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
                Ok(request) => dispatch(kernel, request),
                Err(err) => Response::BadFrame(err),
            },
        };
        serial::send(&GuestMessage::Reply(response));
    }
}

/// Temporary dispatcher for bring-up, until `vmm_core::dispatch` lands.
fn dispatch(kernel: &mut Kernel, request: Request) -> Response {
    match request {
        Request::Hello => Response::Hello(kernel.hello()),
        Request::Ping { nonce } => Response::Pong { nonce },
        Request::Batch(requests) => Response::Batch(
            requests
                .into_iter()
                .map(|r| match r {
                    Request::Batch(_) => Response::Error(protocol::Error::NestedBatch),
                    r => dispatch(kernel, r),
                })
                .collect(),
        ),
        Request::Panic { .. } => kernel.panic_now(),
        Request::Shutdown => kernel.shutdown(),
        Request::Write {
            addr, len, seed, ..
        } => match kernel.touch_write(addr, len, seed) {
            Ok(()) => Response::Done,
            Err((addr, reason)) => Response::Fault {
                addr,
                write: true,
                reason,
            },
        },
        Request::Read { addr, len, .. } => match kernel.touch_read(addr, len) {
            Ok(checksum) => Response::Checksum { checksum },
            Err((addr, reason)) => Response::Fault {
                addr,
                write: false,
                reason,
            },
        },
        _ => Response::Error(protocol::Error::Reserved),
    }
}
