//! The host's side of the shared-memory transport (`protocol::ring`):
//! requests written into the ring's slots in guest RAM, answers read from
//! them, a one-byte doorbell on the serial line each way.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use protocol::ring::{
    self, MAGIC, OFF_MAGIC, OFF_REQ_SEQ, OFF_RESP_SEQ, OFF_SLOTS, OFF_SLOT_BYTES, OFF_SPIN,
    OFF_VERSION, OFF_WAITING, RING_BYTES, SLOTS, SLOT_BYTES, SLOT_HEADER,
};
use protocol::PhysRange;

use crate::ram::{Mapping, SharedRam};

/// Why the ring cannot be used, or what went wrong on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// The guest reported a ring that is not inside its RAM or too small.
    #[error("the guest's ring {start:#x}..{end:#x} is not {RING_BYTES} bytes of page-aligned RAM")]
    Placement { start: u64, end: u64 },
    /// The ring's header does not describe the layout this host speaks.
    #[error(
        "the guest's ring header is not ring version {} with {SLOTS} slots of {SLOT_BYTES} bytes",
        ring::VERSION
    )]
    Header,
    /// A frame does not fit in a slot.
    #[error("a frame of {len} bytes does not fit in a ring slot")]
    TooBig { len: usize },
    /// The host posted more requests than the slots hold (a runner bug).
    #[error("request {seq} posted before answer {} was read", seq - SLOTS)]
    Overrun { seq: u64 },
    /// The answer slot does not hold the answer it should: the guest (or a
    /// VMM scribbling on the ring) broke the transport's rules.
    #[error("ring slot of answer {seq} holds sequence number {tag} and length {len}")]
    BadAnswer { seq: u64, tag: u64, len: u64 },
}

/// The header words of a posted slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotHeader {
    /// The slot's sequence number and the frame's length.
    True,
    /// The sequence number, and this length instead of the frame's.
    Len(u64),
    /// This sequence number instead of the slot's, and the frame's length.
    Tag(u64),
}

/// The host's end of the ring.
#[derive(Debug)]
pub struct RingPort {
    /// Keeps `base` mapped.
    _map: Arc<Mapping>,
    base: *mut u8,
    /// The last request posted.
    posted: u64,
    /// The last answer read.
    read: u64,
    /// Doorbells rung again for a guest asleep with a request posted
    /// (rule 6).
    nudges: u64,
}

// SAFETY: `base` points into `_map`, which the port keeps alive; the memory
// is shared with the guest and only reached through raw pointers.
unsafe impl Send for RingPort {}

impl RingPort {
    /// The ring the guest reported at `range`, checked against its header.
    pub fn open(ram: &SharedRam, range: PhysRange) -> Result<RingPort, RingError> {
        let placement = RingError::Placement {
            start: range.start,
            end: range.end,
        };
        if range.start % 4096 != 0 || range.end.saturating_sub(range.start) < RING_BYTES {
            return Err(placement);
        }
        let map = ram.mapping();
        let base = map.at(range.start, RING_BYTES).ok_or(placement)?;
        let port = RingPort {
            _map: map,
            base,
            posted: 0,
            read: 0,
            nudges: 0,
        };
        let mut head = [0u8; 24];
        port.read_bytes(OFF_MAGIC, &mut head);
        let word =
            |o: u64| u32::from_le_bytes(head[o as usize..o as usize + 4].try_into().unwrap());
        let ok = head[..8] == MAGIC
            && word(OFF_VERSION) == ring::VERSION
            && u64::from(word(OFF_SLOTS)) == SLOTS
            && u64::from_le_bytes(head[OFF_SLOT_BYTES as usize..24].try_into().unwrap())
                == SLOT_BYTES;
        if !ok {
            return Err(RingError::Header);
        }
        let (posted, answered) = (port.word64(OFF_REQ_SEQ), port.word64(OFF_RESP_SEQ));
        // A guest that served requests before (another port, say) goes on
        // from where it is.
        let at = answered.load(Ordering::Acquire);
        if posted.load(Ordering::Acquire) != at {
            return Err(RingError::Header);
        }
        Ok(RingPort {
            posted: at,
            read: at,
            ..port
        })
    }

    fn word64(&self, offset: u64) -> &AtomicU64 {
        // SAFETY: an 8-aligned header word inside the ring, which `_map`
        // keeps mapped; both sides access it only atomically.
        unsafe { AtomicU64::from_ptr(self.base.add(offset as usize).cast()) }
    }

    fn word32(&self, offset: u64) -> &AtomicU32 {
        // SAFETY: as in `word64`, a 4-aligned u32.
        unsafe { AtomicU32::from_ptr(self.base.add(offset as usize).cast()) }
    }

    fn read_bytes(&self, offset: u64, out: &mut [u8]) {
        debug_assert!(offset + out.len() as u64 <= RING_BYTES);
        // SAFETY: inside the ring (callers pass offsets of the layout and
        // lengths bounded by a slot); the guest does not write these bytes
        // while the host may read them (the ring's rules).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.add(offset as usize),
                out.as_mut_ptr(),
                out.len(),
            )
        }
    }

    fn write_bytes(&self, offset: u64, bytes: &[u8]) {
        debug_assert!(offset + bytes.len() as u64 <= RING_BYTES);
        // SAFETY: inside the ring; the slot is the host's until it
        // publishes the request (the ring's rules).
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.add(offset as usize),
                bytes.len(),
            )
        }
    }

    /// The sequence number the next post gets.
    pub fn next_seq(&self) -> u64 {
        self.posted + 1
    }

    /// Whether a request may be posted now (rule 1).
    pub fn may_post(&self) -> bool {
        ring::may_post(self.posted + 1, self.read)
    }

    /// Posts `frame` (a whole frame, with or without its trailing zero):
    /// its sequence number, and whether the guest may sleep, so that the
    /// caller must ring the doorbell (rule 2).
    pub fn post(&mut self, frame: &[u8]) -> Result<(u64, bool), RingError> {
        let frame = frame.strip_suffix(&[0]).unwrap_or(frame);
        if frame.len() as u64 > ring::slot_capacity() {
            return Err(RingError::TooBig { len: frame.len() });
        }
        self.post_with(frame, SlotHeader::True)
    }

    /// Posts `bytes` (cut to a slot's capacity) under a slot header that
    /// may lie (the wire fuzzer's slots): the guest must answer the slot
    /// as a damaged frame, whatever its header says. Same answer as
    /// [`RingPort::post`].
    pub fn post_raw(&mut self, bytes: &[u8], header: SlotHeader) -> Result<(u64, bool), RingError> {
        let cut = bytes.len().min(ring::slot_capacity() as usize);
        self.post_with(&bytes[..cut], header)
    }

    fn post_with(&mut self, frame: &[u8], header: SlotHeader) -> Result<(u64, bool), RingError> {
        let seq = self.posted + 1;
        if !ring::may_post(seq, self.read) {
            return Err(RingError::Overrun { seq });
        }
        let (tag, len) = match header {
            SlotHeader::True => (seq, frame.len() as u64),
            SlotHeader::Len(len) => (seq, len),
            SlotHeader::Tag(tag) => (tag, frame.len() as u64),
        };
        let slot = ring::slot(seq);
        self.write_bytes(slot + SLOT_HEADER, frame);
        self.write_bytes(slot + 8, &len.to_le_bytes());
        self.write_bytes(slot, &tag.to_le_bytes());
        self.word64(OFF_REQ_SEQ).store(seq, Ordering::Release);
        fence(Ordering::SeqCst);
        self.posted = seq;
        Ok((seq, self.word32(OFF_WAITING).load(Ordering::SeqCst) != 0))
    }

    /// Stores the ring's `spin`: how many ticks of its time-stamp counter
    /// the guest looks for the next request before it sleeps (rule 4). It
    /// reads the word as it looks, so a smaller one ends a look under way.
    /// Answers the spin it replaces (for putting it back).
    pub fn swap_spin(&self, ticks: u64) -> u64 {
        self.word64(OFF_SPIN).swap(ticks, Ordering::Relaxed)
    }

    /// The ring's `spin` as last stored (by the guest at boot, or by
    /// [`RingPort::swap_spin`]).
    pub fn spin(&self) -> u64 {
        self.word64(OFF_SPIN).load(Ordering::Relaxed)
    }

    /// Counts a doorbell rung again for a guest that missed its first
    /// (rule 6).
    pub fn count_nudge(&mut self) {
        self.nudges += 1;
    }

    /// The doorbells rung again so far ([`RingPort::count_nudge`]).
    pub fn nudges(&self) -> u64 {
        self.nudges
    }

    /// Whether the guest says it sleeps (`waiting` reads 1): with a request
    /// posted and unanswered, it missed its doorbell (rule 6).
    pub fn guest_sleeps(&self) -> bool {
        self.word32(OFF_WAITING).load(Ordering::SeqCst) != 0
    }

    /// The answer frame of request `seq` (without its trailing zero), once
    /// the guest has published it.
    pub fn answer(&mut self, seq: u64) -> Option<Result<Vec<u8>, RingError>> {
        if self.word64(OFF_RESP_SEQ).load(Ordering::Acquire) < seq {
            return None;
        }
        let slot = ring::slot(seq);
        let mut head = [0u8; 16];
        self.read_bytes(slot, &mut head);
        let tag = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(head[8..].try_into().expect("8 bytes"));
        if tag != seq || len > ring::slot_capacity() {
            return Some(Err(RingError::BadAnswer { seq, tag, len }));
        }
        let mut frame = vec![0u8; len as usize];
        self.read_bytes(slot + SLOT_HEADER, &mut frame);
        self.read = self.read.max(seq);
        Some(Ok(frame))
    }
}
