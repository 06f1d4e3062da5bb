//! Requests in, responses out: every [`Request`] variant.
//!
//! Validation and state changes run inside [`Machine::with_vmm`]; touches
//! (`Write`/`Read`) run after it is released, since they fault into the
//! VMM. Answer vectors are allocated outside `with_vmm` with their full
//! capacity, so nothing allocates while the VMM is held.

use alloc::vec::Vec;
use protocol::{Error, Privilege, Request, Response, MAX_ALLOC_FRAMES, MAX_BATCH, MAX_QUERY_PAGES};

use crate::machine::Machine;

/// Answers one request (a `Batch` answers one response per request, a
/// nested `Batch` `Error(NestedBatch)` in its place).
pub fn handle<M: Machine>(m: &mut M, req: Request) -> Response {
    match req {
        Request::Batch(reqs) => {
            if reqs.len() > MAX_BATCH {
                return Response::Error(Error::TooLarge);
            }
            let mut out = Vec::with_capacity(reqs.len());
            for r in reqs {
                out.push(match r {
                    Request::Batch(_) => Response::Error(Error::NestedBatch),
                    r => handle_one(m, r),
                });
            }
            Response::Batch(out)
        }
        r => handle_one(m, r),
    }
}

fn done(r: Result<(), Error>) -> Response {
    match r {
        Ok(()) => Response::Done,
        Err(e) => Response::Error(e),
    }
}

/// Whether a request is kernel only.
fn kernel_only(req: &Request) -> bool {
    matches!(
        req,
        Request::Panic { .. }
            | Request::AllocFrames { .. }
            | Request::FreeFrames { .. }
            | Request::Valloc { .. }
            | Request::Vfree { .. }
            | Request::Reset { .. }
    )
}

fn handle_one<M: Machine>(m: &mut M, req: Request) -> Response {
    if kernel_only(&req) && req.privilege() == Some(Privilege::User) {
        return Response::Error(Error::PermissionDenied);
    }
    match req {
        Request::Hello => Response::Hello(m.hello()),
        Request::Ping { nonce } => Response::Pong { nonce },
        Request::Batch(_) => Response::Error(Error::NestedBatch),
        Request::Panic { .. } => m.panic_now(),
        Request::Shutdown => m.shutdown(),
        Request::Map {
            addr,
            pages,
            writable,
            contiguous,
            privilege,
        } => done(m.with_vmm(|v| v.map(addr, pages, writable, contiguous, privilege))),
        Request::Unmap {
            addr,
            pages,
            privilege,
        } => done(m.with_vmm(|v| v.unmap(addr, pages, privilege))),
        Request::Convert {
            addr,
            pages,
            to,
            privilege,
        } => done(m.with_vmm(|v| v.convert(addr, pages, to, privilege))),
        Request::Write {
            addr,
            len,
            seed,
            privilege,
        } => match m.with_vmm(|v| v.check_touch(addr, len, privilege)) {
            Err(e) => Response::Error(e),
            Ok(None) => Response::Done,
            Ok(Some(_)) => match m.touch_write(addr, len, seed) {
                Ok(()) => Response::Done,
                Err((addr, reason)) => Response::Fault {
                    addr,
                    write: true,
                    reason,
                },
            },
        },
        Request::Read {
            addr,
            len,
            privilege,
        } => match m.with_vmm(|v| v.check_touch(addr, len, privilege)) {
            Err(e) => Response::Error(e),
            Ok(None) => Response::Checksum {
                checksum: protocol::pattern::checksum(&[]),
            },
            Ok(Some(_)) => match m.touch_read(addr, len) {
                Ok(checksum) => Response::Checksum { checksum },
                Err((addr, reason)) => Response::Fault {
                    addr,
                    write: false,
                    reason,
                },
            },
        },
        Request::Query {
            addr,
            pages,
            privilege,
        } => {
            let mut out = Vec::with_capacity(pages.min(MAX_QUERY_PAGES) as usize);
            match m.with_vmm(|v| v.query(addr, pages, privilege, |s| out.push(s))) {
                Ok(()) => Response::Pages(out),
                Err(e) => Response::Error(e),
            }
        }
        Request::AllocFrames {
            count, contiguous, ..
        } => {
            let cap = if contiguous {
                1
            } else {
                count.min(MAX_ALLOC_FRAMES)
            };
            let mut out = Vec::with_capacity(cap as usize);
            match m.with_vmm(|v| v.alloc_frames(count, contiguous, |r| out.push(r))) {
                Ok(()) => Response::Frames(out),
                Err(e) => Response::Error(e),
            }
        }
        Request::FreeFrames { frame, count, .. } => {
            done(m.with_vmm(|v| v.free_frames(frame, count)))
        }
        Request::Valloc { pages, .. } => match m.with_vmm(|v| v.valloc(pages)) {
            Ok(addr) => Response::Valloc { addr },
            Err(e) => Response::Error(e),
        },
        Request::Vfree { addr, pages, .. } => done(m.with_vmm(|v| v.vfree(addr, pages))),
        Request::Stats => Response::Stats(m.with_vmm(|v| v.stats())),
        Request::Reset { .. } => {
            m.with_vmm(|v| v.reset());
            Response::Done
        }
        // Protocol v2 (files, swap, heap): the VMM side lands in the next
        // commits; until then these requests are refused.
        Request::MapFile { .. }
        | Request::Evict { .. }
        | Request::Kmalloc { .. }
        | Request::Kfree { .. }
        | Request::HeapScavenge { .. } => Response::Error(Error::Reserved),
    }
}
