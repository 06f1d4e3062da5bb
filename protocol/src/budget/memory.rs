//! How much kernel memory an answer holds: the second budget of a `Batch`
//! (see `semantics`, **Batch** and **The kernel's reserve**).
//!
//! An answer's encoding is small next to what it takes in the kernel's
//! heap while the batch is built: a `Response` is [`RESPONSE_BYTES`] in
//! memory and 2 bytes on the wire, an unusable page of a `Query` answer
//! 24 bytes and 1. The frame budget alone would let one batch hold
//! several MiB of answers; this one bounds them by [`ANSWER_MEMORY_BUDGET`],
//! so that [`KERNEL_REQUEST_MEMORY`] bounds everything the kernel allocates
//! for one request frame.
//!
//! The sizes are fixed numbers (compile-time checks hold the types to
//! them), not `size_of`, so that the guest and the host count the same
//! whatever their targets.

use core::mem::size_of;

use crate::{
    FrameRun, PageState, Reclaim, Request, Response, MAX_ALLOC_FRAMES, MAX_BATCH, MAX_QUERY_PAGES,
    RECLAIM_RING,
};

/// Kernel memory the answers to one `Batch` may hold (each answer counted
/// by [`answer_memory`]).
pub const ANSWER_MEMORY_BUDGET: usize = 384 * 1024;

/// Bytes a [`Response`] takes in memory, at most (its slot in a batch's
/// answer vector, or the box of a `Reclaimed` answer).
pub const RESPONSE_BYTES: usize = 256;
/// Bytes a [`Request`] takes in memory, at most.
pub const REQUEST_BYTES: usize = 32;
const PAGE_STATE_BYTES: usize = 24;
const FRAME_RUN_BYTES: usize = 16;
const RECLAIM_BYTES: usize = 24;
/// Kernel memory of a `Hello` answer's lists, at most (and again as much
/// while the kernel builds them).
const HELLO_BYTES: usize = 16 * 1024;
/// The heap hands out whole granules.
const GRANULE: usize = crate::KMALLOC_GRANULE as usize;

const _: () = assert!(size_of::<Response>() <= RESPONSE_BYTES);
const _: () = assert!(size_of::<Request>() <= REQUEST_BYTES);
const _: () = assert!(size_of::<PageState>() <= PAGE_STATE_BYTES);
const _: () = assert!(size_of::<FrameRun>() <= FRAME_RUN_BYTES);
const _: () = assert!(size_of::<Reclaim>() <= RECLAIM_BYTES);

/// A heap block of `n` bytes, as the heap hands it out.
const fn block(n: usize) -> usize {
    n.div_ceil(GRANULE) * GRANULE
}

/// Slots of a batch's answer vector the guest allocates at most: every
/// answer holds at least [`RESPONSE_BYTES`], so no more fit the budget,
/// plus the closing `Error(BatchCut)`.
pub const MAX_ANSWER_SLOTS: usize = ANSWER_MEMORY_BUDGET / RESPONSE_BYTES + 1;

/// The most kernel heap one request frame needs, from decoding to the
/// answer sent: the decoded requests (a `Batch` of at most
/// [`MAX_BATCH`]), the answer vector ([`MAX_ANSWER_SLOTS`]) and what the
/// answers own (within [`ANSWER_MEMORY_BUDGET`]).
pub const KERNEL_REQUEST_MEMORY: usize = block(MAX_BATCH * REQUEST_BYTES)
    + block(MAX_ANSWER_SLOTS * RESPONSE_BYTES)
    + ANSWER_MEMORY_BUDGET;

/// The kernel memory `answer` holds: [`RESPONSE_BYTES`] and the blocks it
/// owns (a `Reclaimed` answer's box included).
pub fn answer_memory(answer: &Response) -> usize {
    RESPONSE_BYTES
        + match answer {
            Response::Pages(v) => block(v.len() * PAGE_STATE_BYTES),
            Response::Frames(v) => block(v.len() * FRAME_RUN_BYTES),
            Response::Hello(_) => HELLO_BYTES,
            Response::Batch(v) => {
                block(v.len() * RESPONSE_BYTES)
                    + v.iter()
                        .map(|a| answer_memory(a) - RESPONSE_BYTES)
                        .sum::<usize>()
            }
            Response::Reclaimed { events, response } => {
                block(events.len() * RECLAIM_BYTES) + answer_memory(response)
            }
            Response::Stale { response, .. } => answer_memory(response),
            _ => 0,
        }
}

/// The most kernel memory the answer to `request` can hold, or take while
/// it is built, reclaim events and a `Stale` wrapping included.
pub fn max_answer_memory(request: &Request) -> usize {
    let own = match *request {
        Request::Hello => 2 * HELLO_BYTES,
        Request::Query { pages, .. } => {
            block(pages.min(MAX_QUERY_PAGES) as usize * PAGE_STATE_BYTES)
        }
        Request::AllocFrames {
            count, contiguous, ..
        } => {
            let runs = if contiguous {
                1
            } else {
                count.min(MAX_ALLOC_FRAMES) as usize
            };
            block(runs * FRAME_RUN_BYTES)
        }
        _ => 0,
    };
    // The slot, what the answer owns, the box of a `Reclaimed` wrapping and
    // its events, the box of a `Stale` wrapping.
    RESPONSE_BYTES + own + RESPONSE_BYTES + block(RECLAIM_RING * RECLAIM_BYTES) + RESPONSE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Privilege;
    use alloc::boxed::Box;
    use alloc::vec;

    #[test]
    fn the_largest_answers_hold_at_most_their_bound() {
        let events = vec![Reclaim::Dropped { addr: 0 }; RECLAIM_RING];
        let wrap = |r: Response| Response::Stale {
            addr: 0,
            response: Box::new(Response::Reclaimed {
                events: events.clone(),
                response: Box::new(r),
            }),
        };
        let q = Request::Query {
            addr: 0,
            pages: u64::MAX,
            privilege: Privilege::User,
        };
        let pages = vec![PageState::Unusable; MAX_QUERY_PAGES as usize];
        assert!(answer_memory(&wrap(Response::Pages(pages))) <= max_answer_memory(&q));
        let a = Request::AllocFrames {
            count: u64::MAX,
            contiguous: false,
            privilege: Privilege::Kernel,
        };
        let runs = vec![FrameRun { start: 0, count: 1 }; MAX_ALLOC_FRAMES as usize];
        assert!(answer_memory(&wrap(Response::Frames(runs))) <= max_answer_memory(&a));
        assert!(answer_memory(&wrap(Response::Done)) <= max_answer_memory(&Request::Stats));
    }

    #[test]
    fn a_query_holds_far_more_than_it_encodes() {
        let a = Response::Pages(vec![PageState::Unusable; 4096]);
        let enc = crate::budget::encoded_len(&a);
        assert!(
            answer_memory(&a) > 20 * enc,
            "{} vs {enc}",
            answer_memory(&a)
        );
    }

    #[test]
    fn the_request_memory_fits_the_reserve() {
        let reserve = crate::HEAP_RESERVE_FRAMES as usize * crate::PAGE_SIZE as usize;
        assert!(
            KERNEL_REQUEST_MEMORY <= reserve,
            "{KERNEL_REQUEST_MEMORY} bytes needed, {reserve} kept"
        );
        // Every element's largest answer fits the budget alone: the first
        // element of a batch is never cut.
        let q = Request::Query {
            addr: 0,
            pages: MAX_QUERY_PAGES,
            privilege: Privilege::User,
        };
        assert!(max_answer_memory(&q) <= ANSWER_MEMORY_BUDGET);
        assert!(max_answer_memory(&Request::Hello) <= ANSWER_MEMORY_BUDGET);
    }
}
