//! How big an answer can get: the rule that keeps every `Batch` answer
//! inside one frame and inside the kernel's reserve (see `semantics`,
//! **Batch**).
//!
//! Every function here is a pure function of the messages, so the guest
//! uses them to decide where to cut a batch ([`Used::fits`]) and the host
//! uses them to check that a cut was needed.

use serde::Serialize;

use crate::{Request, Response, MAX_ALLOC_FRAMES, MAX_QUERY_PAGES, RECLAIM_RING};

mod memory;

pub use memory::{
    answer_memory, max_answer_memory, ANSWER_MEMORY_BUDGET, KERNEL_REQUEST_MEMORY,
    MAX_ANSWER_SLOTS, REQUEST_BYTES, RESPONSE_BYTES,
};

/// What the answers to a batch's first elements take: encoded bytes (of
/// the frame, [`ANSWER_BUDGET`]) and kernel memory
/// ([`ANSWER_MEMORY_BUDGET`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Used {
    /// [`encoded_len`] of the answers, summed.
    pub bytes: usize,
    /// [`answer_memory`] of the answers, summed.
    pub memory: usize,
}

impl Used {
    /// What `answers` take.
    pub fn of(answers: &[Response]) -> Used {
        let mut u = Used::default();
        answers.iter().for_each(|a| u.add(a));
        u
    }

    /// Counts one more answer.
    pub fn add(&mut self, answer: &Response) {
        self.bytes = self.bytes.saturating_add(encoded_len(answer));
        self.memory = self.memory.saturating_add(answer_memory(answer));
    }

    /// Whether `next` may run after these answers: its largest answer
    /// fits both budgets. A batch is cut before the first element that
    /// does not (never before its first element).
    pub fn fits(&self, next: &Request) -> bool {
        self.bytes.saturating_add(max_answer_bytes(next)) <= ANSWER_BUDGET
            && self.memory.saturating_add(max_answer_memory(next)) <= ANSWER_MEMORY_BUDGET
    }
}

/// Bytes a `Batch` answer's elements may take: a frame less the `Reply` and
/// `Batch` tags, the element count and the checksum, with room to spare.
pub const ANSWER_BUDGET: usize = crate::frame::MAX_FRAME - 64;

/// Largest encoding of one [`crate::PageState`].
const PAGE_STATE_BYTES: usize = 24;
/// Largest encoding of one [`crate::FrameRun`].
const FRAME_RUN_BYTES: usize = 21;
/// Largest encoding of one [`crate::Reclaim`].
const RECLAIM_BYTES: usize = 21;
/// Largest `Reclaimed` wrapping: tag, event count, the events.
const RECLAIMED_BYTES: usize = 1 + 3 + RECLAIM_RING * RECLAIM_BYTES;
/// Largest `Stale` wrapping: tag and address.
const STALE_BYTES: usize = 1 + 10;
/// Largest answer of a request with a fixed-size answer (`Stats` is the
/// biggest: a tag and at most 24 counters of at most 10 bytes).
const FIXED_ANSWER_BYTES: usize = 256;
/// Largest `Hello` answer: the layout with up to 255 files and a memory map
/// of boot reservations.
const HELLO_BYTES: usize = 16 * 1024;

/// The number of bytes `value` takes encoded with postcard.
pub fn encoded_len<T: Serialize + ?Sized>(value: &T) -> usize {
    postcard::serialize_with_flavor::<T, _, usize>(value, postcard::ser_flavors::Size::default())
        .unwrap_or(usize::MAX)
}

/// The largest number of bytes the answer to `request` can take encoded,
/// reclaim events included. Never more than [`ANSWER_BUDGET`].
pub fn max_answer_bytes(request: &Request) -> usize {
    let own = match request {
        Request::Hello => HELLO_BYTES,
        Request::Query { pages, .. } => {
            1 + 3 + (*pages).min(MAX_QUERY_PAGES) as usize * PAGE_STATE_BYTES
        }
        Request::AllocFrames {
            count, contiguous, ..
        } => {
            let runs = if *contiguous {
                1
            } else {
                (*count).min(MAX_ALLOC_FRAMES) as usize
            };
            1 + 3 + runs * FRAME_RUN_BYTES
        }
        _ => FIXED_ANSWER_BYTES,
    };
    own + RECLAIMED_BYTES + STALE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FrameRun, PageState, Privilege, Reclaim, Response, Stats, MAX_QUERY_PAGES};
    use alloc::boxed::Box;
    use alloc::vec;

    #[test]
    fn the_largest_single_answers_fit_the_budget() {
        let q = Request::Query {
            addr: 0,
            pages: u64::MAX,
            privilege: Privilege::Kernel,
        };
        let a = Request::AllocFrames {
            count: u64::MAX,
            contiguous: false,
            privilege: Privilege::Kernel,
        };
        assert!(max_answer_bytes(&q) <= ANSWER_BUDGET);
        assert!(max_answer_bytes(&a) <= ANSWER_BUDGET);
        assert!(max_answer_bytes(&Request::Hello) <= ANSWER_BUDGET);
    }

    #[test]
    fn worst_case_answers_stay_within_their_bound() {
        let events = vec![
            Reclaim::Swapped {
                addr: u64::MAX,
                slot: u64::MAX
            };
            RECLAIM_RING
        ];
        let wrap = |r: Response| Response::Stale {
            addr: u64::MAX,
            response: Box::new(Response::Reclaimed {
                events: events.clone(),
                response: Box::new(r),
            }),
        };
        let pages = vec![
            PageState::PresentMmap {
                file: u8::MAX,
                page: u64::MAX,
                private: true,
                frame: u64::MAX
            };
            MAX_QUERY_PAGES as usize
        ];
        let q = Request::Query {
            addr: 0,
            pages: MAX_QUERY_PAGES,
            privilege: Privilege::User,
        };
        assert!(encoded_len(&wrap(Response::Pages(pages))) <= max_answer_bytes(&q));
        let shared = vec![
            PageState::Shared {
                writable: true,
                mappings: u64::MAX,
                frame: u64::MAX
            };
            MAX_QUERY_PAGES as usize
        ];
        assert!(encoded_len(&wrap(Response::Pages(shared))) <= max_answer_bytes(&q));
        let runs = vec![
            FrameRun {
                start: u64::MAX,
                count: u64::MAX
            };
            MAX_ALLOC_FRAMES as usize
        ];
        let a = Request::AllocFrames {
            count: MAX_ALLOC_FRAMES,
            contiguous: false,
            privilege: Privilege::Kernel,
        };
        assert!(encoded_len(&wrap(Response::Frames(runs))) <= max_answer_bytes(&a));
        let max = u64::MAX;
        let stats = Stats {
            total_frames: max,
            free_frames: max,
            boot_free_frames: max,
            page_table_frames: max,
            present_pages: max,
            alloc_on_write_pages: max,
            host_frames: max,
            valloc_pages: max,
            faults_resolved: max,
            swap_slots_used: max,
            swap_bytes_used: max,
            swap_bytes_total: max,
            heap_max_bytes: max,
            heap_pages: max,
            heap_table_frames: max,
            heap_bytes_live: max,
            bytes_freed_since_check: max,
            pages_scavenged: max,
            pages_evicted: max,
            pages_dropped: max,
        };
        assert!(encoded_len(&wrap(Response::Stats(stats))) <= max_answer_bytes(&Request::Stats));
        let fault = Response::Fault {
            addr: max,
            write: true,
            reason: crate::FaultReason::OutOfMemory,
        };
        assert!(encoded_len(&wrap(fault)) <= max_answer_bytes(&Request::Ping { nonce: 0 }));
    }

    #[test]
    fn encoded_len_is_postcards_length() {
        let r = Response::Pages(vec![PageState::AllocOnWrite; 10]);
        assert_eq!(encoded_len(&r), postcard::to_allocvec(&r).unwrap().len());
    }
}
