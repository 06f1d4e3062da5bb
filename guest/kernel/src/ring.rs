//! The guest's side of the shared-memory transport (`protocol::ring`): a
//! static in the kernel image holds the ring; the host writes requests into
//! its slots and the guest answers in place.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use protocol::ring::{
    self, MAGIC, OFF_MAGIC, OFF_REQ_SEQ, OFF_RESP_SEQ, OFF_SLOTS, OFF_SLOT_BYTES, OFF_SPIN,
    OFF_VERSION, OFF_WAITING, RING_BYTES, SLOTS, SLOT_BYTES, SLOT_HEADER, SPIN_TICKS,
};
use protocol::PhysRange;

use vmm_core::conv::usize_of;

use crate::boot;

/// `SLOTS` as the header's u32 field.
#[allow(clippy::cast_possible_truncation)] // checked by the assertion
const SLOTS_FIELD: u32 = {
    assert!(SLOTS <= 0xffff_ffff, "the slot count is a u32 field");
    SLOTS as u32
};

#[repr(C, align(4096))]
struct RingSpace([u8; usize_of(RING_BYTES)]);

/// The ring. The host writes it (through its mapping of guest RAM) while
/// the kernel runs, so it is only reached through raw pointers, never
/// through a reference.
static mut RING: RingSpace = RingSpace([0; usize_of(RING_BYTES)]);

fn base() -> *mut u8 {
    core::ptr::addr_of_mut!(RING).cast()
}

fn word64(offset: u64) -> &'static AtomicU64 {
    // SAFETY: `offset` is one of the header's 8-aligned u64 fields, inside
    // the static (page aligned). The memory is only ever accessed
    // atomically at this offset, by the kernel and by the host.
    unsafe { AtomicU64::from_ptr(base().add(usize_of(offset)).cast()) }
}

fn word32(offset: u64) -> &'static AtomicU32 {
    // SAFETY: as in `word64`, for a 4-aligned u32 field.
    unsafe { AtomicU32::from_ptr(base().add(usize_of(offset)).cast()) }
}

/// Writes the header's constant part and the default `spin`. Call once
/// at boot, before `Hello` tells the host where the ring is.
pub fn init() {
    // SAFETY: the header's first 24 bytes, inside the static; the host does
    // not know the ring yet, so nothing else accesses it.
    unsafe {
        let b = base();
        core::ptr::copy_nonoverlapping(MAGIC.as_ptr(), b.add(usize_of(OFF_MAGIC)), 8);
        b.add(usize_of(OFF_VERSION))
            .cast::<u32>()
            .write(ring::VERSION.to_le());
        b.add(usize_of(OFF_SLOTS))
            .cast::<u32>()
            .write(SLOTS_FIELD.to_le());
        b.add(usize_of(OFF_SLOT_BYTES))
            .cast::<u64>()
            .write(SLOT_BYTES.to_le());
    }
    word64(OFF_SPIN).store(SPIN_TICKS, Ordering::Relaxed);
}

/// Where the ring lies in physical memory.
pub fn range() -> PhysRange {
    let start = boot::kernel_phys(base() as u64);
    PhysRange {
        start,
        end: start + RING_BYTES,
    }
}

/// The guest's position in the ring: the last request it answered.
#[derive(Debug, Default)]
pub struct Ring {
    served: u64,
}

/// A request taken from the ring: its sequence number and its frame.
#[derive(Debug)]
pub struct Posted<'a> {
    pub seq: u64,
    /// The frame, or `None` when the slot does not hold request `seq` (a
    /// bad sequence number or length: answered as a damaged frame).
    pub frame: Option<&'a mut [u8]>,
}

impl Ring {
    /// Whether the host has posted a request not served yet.
    pub fn pending(&self) -> bool {
        word64(OFF_REQ_SEQ).load(Ordering::Acquire) > self.served
    }

    /// Whether the host has used the ring (it may also use only the serial
    /// line).
    pub fn in_use(&self) -> bool {
        self.served > 0
    }

    /// The next request, if one is posted.
    pub fn take(&mut self) -> Option<Posted<'_>> {
        if !self.pending() {
            return None;
        }
        let seq = self.served + 1;
        let slot = ring::slot(seq);
        let capacity = ring::slot_capacity();
        // SAFETY: the slot's two header words lie inside the static; the
        // host wrote them before publishing `req_seq` (acquire above) and
        // leaves the slot alone until the answer is published.
        let (tag, len) = unsafe {
            let p = base().add(usize_of(slot)).cast::<u64>();
            (p.read_volatile(), p.add(1).read_volatile())
        };
        let frame = (tag == seq && len <= capacity).then(|| {
            // SAFETY: `len <= capacity` bytes after the slot's header, inside
            // the static; the slot is the kernel's alone until it publishes
            // the answer (rule 1 of `protocol::ring`), and the borrow of
            // `self` keeps this the only reference made to it.
            unsafe {
                core::slice::from_raw_parts_mut(
                    base().add(usize_of(slot + SLOT_HEADER)),
                    usize_of(len),
                )
            }
        });
        Some(Posted { seq, frame })
    }

    /// The frame area of request `seq`'s slot, for its answer: encode into
    /// it, then [`Ring::publish`].
    pub fn answer_area(&mut self, seq: u64) -> &mut [u8] {
        let slot = ring::slot(seq);
        // SAFETY: the slot's frame area, inside the static; the request's
        // frame is no longer referenced (it was decoded into an owned
        // request), and the host does not touch the slot before the answer
        // is published. `&mut self` keeps this the only reference.
        unsafe {
            core::slice::from_raw_parts_mut(
                base().add(usize_of(slot + SLOT_HEADER)),
                usize_of(ring::slot_capacity()),
            )
        }
    }

    /// Publishes the answer to request `seq` of `len` bytes (already in its
    /// slot), then rings the host's doorbell.
    pub fn publish(&mut self, seq: u64, len: usize) {
        let slot = ring::slot(seq);
        // SAFETY: the slot's two header words, inside the static; the host
        // reads them only after `resp_seq` is published below (release).
        unsafe {
            let p = base().add(usize_of(slot)).cast::<u64>();
            p.add(1).write_volatile(len as u64);
            p.write_volatile(seq);
        }
        word64(OFF_RESP_SEQ).store(seq, Ordering::Release);
        self.served = seq;
        crate::serial::doorbell();
    }

    /// How long to look for the next request before sleeping, in ticks of
    /// the time-stamp counter: the host's `spin` (rule 4), which it may
    /// change at any time.
    pub fn spin_ticks(&self) -> u64 {
        word64(OFF_SPIN).load(Ordering::Relaxed)
    }

    /// Says the kernel may sleep (rule 4): the host then rings the doorbell
    /// after posting.
    pub fn set_waiting(&self, waiting: bool) {
        word32(OFF_WAITING).store(u32::from(waiting), Ordering::SeqCst);
    }
}
