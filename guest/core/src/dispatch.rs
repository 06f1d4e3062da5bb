//! Requests in, responses out: every [`Request`] variant.
//!
//! Validation and state changes run inside [`Machine::with_vmm`]; touches
//! (`Write`/`Read`) run after it is released, since they fault into the
//! VMM. Answer vectors are allocated outside `with_vmm` with their full
//! capacity, so nothing allocates while the VMM is held.
//!
//! Every answer (each element of a `Batch`) is finished by [`finish`]: the
//! reclaim events recorded since the previous answer are moved out of the
//! VMM's ring in small stack-sized chunks (the `Vec` grows outside the
//! lock) and wrap the answer as `Reclaimed`; then the swap slots freed by
//! swap-ins during the request are released; then the stale-translation
//! probe runs (`stale`) and may wrap it as `Stale`.
//!
//! The VMM methods a request enters by (`Vmm::map`, `Vmm::heap_alloc`, …)
//! are `#[inline(never)]`: the kernel is one LLVM module (link-time
//! optimization, `guest/kernel/Cargo.toml`), and a request's entry point
//! kept as a function of its own has a coverage entry counter, so the
//! coverage report counts how often each ran. Everything below them
//! inlines.

use alloc::boxed::Box;
use alloc::vec::Vec;
use protocol::budget::{Used, MAX_ANSWER_SLOTS};
use protocol::{
    Error, Privilege, Reclaim, Request, Response, MAX_ALLOC_FRAMES, MAX_BATCH, MAX_QUERY_PAGES,
};

mod wire;

use crate::conv::usize_of;
use crate::machine::Machine;
use crate::stale::{self, Scope};
use crate::validate::canonical;

/// Answers one request (a `Batch` answers one response per request, a
/// nested `Batch` `Error(NestedBatch)` in its place).
pub fn handle<M: Machine>(m: &mut M, req: Request) -> Response {
    // The guest's frames were scanned for this before decoding
    // (`protocol::scan`); a request built in memory is held to it here.
    if protocol::scan::batch_elements(&req) > MAX_BATCH {
        return Response::Error(Error::TooLarge);
    }
    match req {
        Request::Batch(reqs) => {
            // No more answers fit the memory budget than these slots (each
            // holds at least a `Response`), the `BatchCut` included.
            let mut out = Vec::with_capacity(reqs.len().min(MAX_ANSWER_SLOTS));
            // What the answers so far take, encoded and in memory: the
            // batch is cut before an element whose largest answer might not
            // fit either budget (see `protocol::budget`), so no valid batch
            // can overflow a frame or the kernel's reserve.
            let mut used = Used::default();
            for r in reqs {
                if !out.is_empty() && !used.fits(&r) {
                    out.push(Response::Error(Error::BatchCut));
                    break;
                }
                let answer = probed(m, r);
                used.add(&answer);
                out.push(answer);
            }
            Response::Batch(out)
        }
        r => probed(m, r),
    }
}

/// Answers one request that is not a whole batch (a `Batch` inside one is
/// answered `Error(NestedBatch)`), with its events, between the TLB's
/// priming and the stale-translation probe of its scope.
fn probed<M: Machine>(m: &mut M, r: Request) -> Response {
    let scope = Scope::of(&r);
    let before = stale::prime(m, scope);
    let answer = match r {
        Request::Batch(_) => Response::Error(Error::NestedBatch),
        r => handle_one(m, r),
    };
    let answer = finish(m, answer);
    stale::check(m, scope, answer, before)
}

/// Wraps `answer` with the events recorded since the previous answer, then
/// frees the swap slots of this request's swap-ins.
fn finish<M: Machine>(m: &mut M, answer: Response) -> Response {
    // This answer carries the events in the ring now. Growing the vector
    // may fault heap pages in and reclaim again; those events happened
    // after the request and go to the next answer (and never push this
    // one past the ring's capacity).
    let pending = m.with_vmm(|v| v.pending_events());
    let mut events: Vec<Reclaim> = Vec::with_capacity(pending);
    let mut left = pending;
    while left > 0 {
        let mut chunk = [Reclaim::Dropped { addr: 0 }; 32];
        let want = left.min(chunk.len());
        let n = m.with_vmm(|v| v.drain_events(&mut chunk[..want]));
        if n == 0 {
            break;
        }
        events.extend_from_slice(&chunk[..n]);
        left -= n;
    }
    m.with_vmm(|v| v.end_request());
    if events.is_empty() {
        answer
    } else {
        Response::Reclaimed {
            events,
            response: Box::new(answer),
        }
    }
}

/// Adds the pages a touch of `addr..addr + len` (`len > 0`, validated)
/// reached to the touched set: up to and including the page of `stop`, the
/// first byte not touched, when it faulted.
fn record_touch<M: Machine>(m: &mut M, addr: u64, len: u64, stop: Option<u64>) {
    let end = stop.unwrap_or(addr.wrapping_add(len - 1));
    let (lo, hi) = (canonical(addr) >> 12, canonical(end) >> 12);
    m.touched().add(lo, hi.max(lo) + 1);
}

/// `Done`, or the operation's error as the protocol's (`wire`).
fn done<E: Into<Error>>(r: Result<(), E>) -> Response {
    match r {
        Ok(()) => Response::Done,
        Err(e) => Response::Error(e.into()),
    }
}

/// The operation's error as the protocol's (`wire`).
fn error(e: impl Into<Error>) -> Response {
    Response::Error(e.into())
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
            | Request::Kmalloc { .. }
            | Request::Kfree { .. }
            | Request::HeapScavenge { .. }
            | Request::CreateSpace { .. }
            | Request::SwitchSpace { .. }
            | Request::DestroySpace { .. }
            | Request::Share { .. }
    )
}

/// One request's own work. Kept out of line (one call a request): the
/// profiler's reports name the VMM's time per request by this frame, and
/// its symbol test looks for it.
#[inline(never)]
fn handle_one<M: Machine>(m: &mut M, req: Request) -> Response {
    if kernel_only(&req) && req.privilege() == Some(Privilege::User) {
        return Response::Error(Error::PermissionDenied);
    }
    m.with_vmm(|v| v.set_pin(None));
    match req {
        Request::Hello => Response::Hello(alloc::boxed::Box::new(m.hello())),
        Request::Ping { nonce } => Response::Pong { nonce },
        Request::Batch(_) => Response::Error(Error::NestedBatch),
        Request::Panic { .. } => m.panic_now(),
        Request::Shutdown => m.shutdown(),
        Request::Map {
            addr,
            pages,
            writable,
            executable,
            contiguous,
            privilege,
        } => done(m.with_vmm(|v| v.map(addr, pages, writable, executable, contiguous, privilege))),
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
            Err(e) => error(e),
            Ok(None) => Response::Done,
            Ok(Some(_)) => {
                let r = m.touch_write(addr, len, seed);
                record_touch(m, addr, len, r.as_ref().err().map(|e| e.0));
                match r {
                    Ok(()) => Response::Done,
                    Err((addr, reason)) => Response::Fault {
                        addr,
                        write: true,
                        reason,
                    },
                }
            }
        },
        Request::Read {
            addr,
            len,
            privilege,
        } => match m.with_vmm(|v| v.check_touch(addr, len, privilege)) {
            Err(e) => error(e),
            Ok(None) => Response::Checksum {
                checksum: protocol::pattern::checksum(&[]),
            },
            Ok(Some(_)) => {
                let r = m.touch_read(addr, len);
                record_touch(m, addr, len, r.as_ref().err().map(|e| e.0));
                match r {
                    Ok(checksum) => Response::Checksum { checksum },
                    Err((addr, reason)) => Response::Fault {
                        addr,
                        write: false,
                        reason,
                    },
                }
            }
        },
        Request::Query {
            addr,
            pages,
            privilege,
        } => {
            let mut out = Vec::with_capacity(pages.min(MAX_QUERY_PAGES) as usize);
            match m.with_vmm(|v| v.query(addr, pages, privilege, |s| out.push(s))) {
                Ok(()) => Response::Pages(out),
                Err(e) => error(e),
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
            let mut out = Vec::with_capacity(usize_of(cap));
            match m.with_vmm(|v| v.alloc_frames(count, contiguous, |r| out.push(r))) {
                Ok(()) => {
                    // The answer holds what it counts in the memory budget
                    // (`protocol::budget::answer_memory`): its runs.
                    out.shrink_to_fit();
                    Response::Frames(out)
                }
                Err(e) => error(e),
            }
        }
        Request::FreeFrames { frame, count, .. } => {
            done(m.with_vmm(|v| v.free_frames(frame, count)))
        }
        Request::Valloc { pages, .. } => match m.with_vmm(|v| v.valloc(pages)) {
            Ok(addr) => Response::Valloc { addr },
            Err(e) => error(e),
        },
        Request::Vfree { addr, pages, .. } => done(m.with_vmm(|v| v.vfree(addr, pages))),
        Request::Stats => Response::Stats(m.with_vmm(|v| v.stats())),
        Request::Reset { .. } => {
            m.with_vmm(|v| v.reset());
            Response::Done
        }
        Request::MapFile {
            addr,
            pages,
            file,
            file_page,
            privilege,
        } => done(m.with_vmm(|v| v.map_file(addr, pages, file, file_page, privilege))),
        Request::Evict {
            addr,
            pages,
            privilege,
        } => match m.with_vmm(|v| v.evict(addr, pages, privilege)) {
            Ok((swapped, dropped)) => Response::Evicted { swapped, dropped },
            Err(e) => error(e),
        },
        Request::Kmalloc { size, align, .. } => {
            match m.with_vmm(|v| v.heap_alloc(size, align, true)) {
                Ok(addr) => Response::Kmalloc { addr },
                Err(e) => error(e),
            }
        }
        Request::Kfree { addr, .. } => done(m.with_vmm(|v| v.heap_free(addr, true).map(|_| ()))),
        Request::HeapScavenge { .. } => Response::Scavenged {
            pages: m.with_vmm(|v| v.heap_scavenge()),
        },
        Request::CreateSpace { .. } => match m.with_vmm(|v| v.create_space()) {
            Ok((space, root)) => Response::Space {
                space,
                root: root.start_address().as_u64(),
            },
            Err(e) => error(e),
        },
        Request::SwitchSpace { space, .. } => done(m.with_vmm(|v| v.switch_space(space))),
        Request::DestroySpace { space, .. } => done(m.with_vmm(|v| v.destroy_space(space))),
        Request::Share {
            addr,
            pages,
            space,
            to,
            ..
        } => done(m.with_vmm(|v| v.share(addr, pages, space, to))),
    }
}
