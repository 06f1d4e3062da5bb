//! The shared-memory transport: request and answer frames in a ring in
//! guest RAM, with a one-byte doorbell on the serial line each way.
//!
//! The serial line stays a complete transport (boot messages, logs, panic
//! and exception reports, and requests and answers when the host chooses
//! it). The ring carries the same frames ([`crate::frame`]: postcard, CRC-32C,
//! COBS, a trailing zero) without pushing them through the 16550 byte by
//! byte: the host maps guest RAM (QEMU's shared memory backend) and writes
//! and reads the slots directly.
//!
//! This module is the specification of the ring's layout and rules, as
//! constants and pure functions. Each side accesses the memory with its own
//! code (the guest through its direct map, the host through its mapping of
//! the RAM file).
//!
//! # Layout
//! At [`crate::Hello::ring`] in physical memory, page aligned, little endian:
//!
//! | offset | field | written by |
//! | --- | --- | --- |
//! | `0x00` | magic `b"VMMRING1"` | guest, at boot |
//! | `0x08` | `u32` version ([`VERSION`]) | guest, at boot |
//! | `0x0c` | `u32` slots ([`SLOTS`]) | guest, at boot |
//! | `0x10` | `u64` slot size in bytes ([`SLOT_BYTES`]) | guest, at boot |
//! | `0x40` | `u64` `req_seq`: the last request posted | host |
//! | `0x80` | `u64` `resp_seq`: the last request answered | guest |
//! | `0xc0` | `u32` `waiting`: 1 while the guest may sleep | guest |
//! | `0x100` | `u64` `spin`: how long the guest looks for the next request before it sleeps | host ([`SPIN_TICKS`] from the guest at boot) |
//! | `0x1000` | slot `k` at `0x1000 + k * SLOT_BYTES` | both |
//!
//! A slot is a `u64` sequence number, a `u64` byte length, then a frame's
//! bytes (without its trailing zero). The request with sequence number `s`
//! (the first is 1) lives in slot `s % SLOTS`; the guest decodes it there
//! (in place) and writes its answer (`GuestMessage::Reply`) over it, with
//! the same `s`.
//!
//! # Rules
//! 1. The host writes request `s` (frame, then length, then sequence number
//!    in the slot) and then stores `req_seq = s` (release). It may post `s`
//!    only when it has read answer `s - SLOTS`, whose slot is reused.
//! 2. Then, if `waiting` reads 1 (after a full fence), the host sends one
//!    `0x00` byte on the serial line: an empty frame, which the serial
//!    framing ignores and which wakes a sleeping guest.
//! 3. The guest serves requests in order. For request `s` it checks the
//!    slot's sequence number (a mismatch is answered as a damaged frame),
//!    decodes, executes, writes the answer into slot `s % SLOTS`
//!    (sequence number last), stores `resp_seq = s` (release), and sends
//!    one `0x00` byte on the serial line.
//! 4. Before sleeping, the guest stores `waiting = 1`, fences, and looks at
//!    `req_seq` and its UART once more; it stores `waiting = 0` when it
//!    wakes. (It may first look at `req_seq` for up to `spin` ticks of
//!    its time-stamp counter with `waiting` still 0: a request posted then
//!    needs no doorbell. It reads `spin` again as it looks, so a host that
//!    stores a smaller `spin` ends the look early: 0 ends it at once.) On
//!    a machine that keeps both fences, a posted request always either is
//!    seen or wakes it. Under TCG with one vCPU it may not: QEMU then emits no host barrier for the guest's fence (nor for a
//!    locked instruction), so the guest's store of `waiting` can still sit
//!    in the host CPU's store buffer when its load of `req_seq` runs, and
//!    the host's rule-2 look at `waiting` can miss it. Rule 6 recovers.
//! 5. After the guest stores `resp_seq = s` it changes no memory but its
//!    own stack and the ring's `waiting` until the host posts `s + 1` (or
//!    sends a serial frame): the host may read guest RAM then without
//!    stopping the VM, as if stopped (the ring is not the VMM's to check).
//! 6. While a posted request is unanswered, the host looks at `waiting`
//!    again every [`NUDGE_MS`] milliseconds and sends another `0x00` byte
//!    when it reads 1: a guest asleep with a request posted missed its
//!    wake-up (rule 4). A spare byte is harmless (an empty frame), and a
//!    guest busy with a long request stores no `waiting = 1`, so it gets
//!    none.
//!
//! The ring's frames belong to the transport: the ring is a boot
//! reservation (listed in `Hello::boot_reserved`). A VMM that scribbles on
//! it is caught by the slot's sequence number and the frame's CRC.

/// How long the host waits for an answer before it looks at `waiting`
/// again (rule 6): a lost wake-up costs this instead of a hang.
pub const NUDGE_MS: u64 = 20;

/// The guest's `spin` from boot until the host stores another (rule 4),
/// in ticks of its time-stamp counter: about 400 µs at 2.5 GHz (under TCG
/// the TSC is the host's).
///
/// Between two batches of a campaign the host judges the answers and
/// generates the next batch: about 200 µs for the default mix's 5 or so
/// operations per batch. A request found while the guest spins costs no
/// doorbell and no wake-up from `hlt`, which goes through QEMU's main loop,
/// the serial device, the interrupt and the vCPU's wake-up, each a
/// hand-over between threads (`bench --only round_trip`, ring, TCG, a
/// 2-core machine: 247-310 µs for a ping after 3 ms idle against 57-60 µs
/// back to back; the difference holds the host's own wake-up too). So the
/// spin outlasts the usual gap, and a host busy longer costs the guest's
/// core this much spinning.
///
/// How it was chosen, on a 2-core machine under TCG (40-s campaigns,
/// checked operations/s, runs alternated):
/// - Against the old 100,000 ticks (about 40 µs), seed 7, `--jobs 1`:
///   medians 2,577 and 2,660 of five runs (3 % more, every pair for the
///   longer spin); at `--jobs 2` no change beyond the noise then.
/// - Later, once each job had a thread of its own in the runner: a spin of
///   0 at `--jobs 2` checked 5,968 and 5,907 against 5,567 and 5,541, and
///   a host word that ended the spin while the host checked memory was
///   within the noise at both job counts; neither was kept then.
/// - Ring version 2 (the host's `spin`), seed 49, three runs each: at
///   `--jobs 2`, 11,335-12,077 with this spin against 17,282-17,808 with
///   none (the batch round trip 0.63 ms against 0.33: two spinning guests
///   held the cores the runners' checks and each other's work needed); at
///   `--jobs 1`, 9,528-9,903 with it against 8,932-9,740 with none
///   (medians 9,564 and 9,602: no difference beyond the noise). So a
///   campaign with no core to spare per guest sets 0
///   (`host_runner::judge::campaign_spin`), one with a spare core keeps
///   this, and a full check with QEMU's view sets 0 while it runs (its
///   full checks went from 10.39-10.70 ms to 9.57-9.92 at `--jobs 1`).
///
/// Tuned under TCG only: under KVM a wake-up is far cheaper and a long
/// `pause` loop may exit to the hypervisor, and this was not measured
/// there.
pub const SPIN_TICKS: u64 = 1_000_000;

/// The magic at the ring's start.
pub const MAGIC: [u8; 8] = *b"VMMRING1";
/// The layout version this module describes (2: the host's `spin`).
pub const VERSION: u32 = 2;
/// Slots: how many requests may be posted ahead of the answers the host
/// has read.
pub const SLOTS: u64 = 2;
/// Bytes of a slot: its two header words and the largest encoded frame,
/// rounded up to whole pages.
pub const SLOT_BYTES: u64 =
    (SLOT_HEADER + crate::frame::MAX_ENCODED_FRAME as u64).div_ceil(4096) * 4096;
/// Bytes before a slot's frame: its sequence number and length.
pub const SLOT_HEADER: u64 = 16;

/// Offset of the magic.
pub const OFF_MAGIC: u64 = 0x00;
/// Offset of the version.
pub const OFF_VERSION: u64 = 0x08;
/// Offset of the slot count.
pub const OFF_SLOTS: u64 = 0x0c;
/// Offset of the slot size.
pub const OFF_SLOT_BYTES: u64 = 0x10;
/// Offset of `req_seq`.
pub const OFF_REQ_SEQ: u64 = 0x40;
/// Offset of `resp_seq`.
pub const OFF_RESP_SEQ: u64 = 0x80;
/// Offset of `waiting`.
pub const OFF_WAITING: u64 = 0xc0;
/// Offset of `spin`.
pub const OFF_SPIN: u64 = 0x100;
/// Offset of the first slot.
pub const OFF_SLOTS_START: u64 = 0x1000;

/// Total bytes of the ring.
pub const RING_BYTES: u64 = OFF_SLOTS_START + SLOTS * SLOT_BYTES;

/// Offset of the slot of sequence number `seq` (its request, then its
/// answer).
pub const fn slot(seq: u64) -> u64 {
    OFF_SLOTS_START + (seq % SLOTS) * SLOT_BYTES
}

/// Largest frame a slot holds.
pub const fn slot_capacity() -> u64 {
    SLOT_BYTES - SLOT_HEADER
}

// The layout's own consistency, checked when it is compiled.
const _: () = {
    assert!(SLOT_BYTES % 4096 == 0);
    assert!(slot_capacity() >= crate::frame::MAX_ENCODED_FRAME as u64);
    assert!(OFF_WAITING + 4 <= OFF_SPIN);
    assert!(OFF_SPIN % 64 == 0 && OFF_SPIN + 8 <= OFF_SLOTS_START);
};

/// Whether the host may post request `seq` now (rule 1), given the last
/// answer it has read.
pub const fn may_post(seq: u64, last_read: u64) -> bool {
    seq >= 1 && seq <= last_read + SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_disjoint_page_aligned_and_hold_a_frame() {
        let mut starts: Vec<u64> = (1..=SLOTS).map(slot).collect();
        starts.sort_unstable();
        for w in starts.windows(2) {
            assert_eq!(w[1] - w[0], SLOT_BYTES);
        }
        assert_eq!(starts[0], OFF_SLOTS_START);
        assert_eq!(starts.last().copied().unwrap() + SLOT_BYTES, RING_BYTES);
    }

    #[test]
    fn posting_is_bounded_by_the_answers_read() {
        assert!(!may_post(0, 0));
        assert!(may_post(1, 0) && may_post(2, 0));
        assert!(!may_post(3, 0));
        assert!(may_post(3, 1));
    }
}
