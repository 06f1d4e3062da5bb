//! A burst as the ring sees it: each frame of the burst (its bytes
//! between delimiters, as the serial line would cut them) in a slot of its
//! own, an oversize one under the length it really has, and a few slots
//! whose headers lie about an honest `Ping` (a length past the slot, a
//! sequence number that is not the slot's). The lies come from the burst's
//! seed, so burst `k` of seed `s` is still `s` and `k` alone.

use protocol::frame;
use protocol::{ring, Request};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::burst::Burst;
use crate::ring::SlotHeader;

/// Most slots one burst fills (a burst of random bytes with many zeros
/// holds hundreds of frames; the first of them are enough to vary).
pub const MAX_SLOTS: usize = 64;

/// The nonce of the `Ping` under a lying header (never answered as a
/// `Pong`: the guest must refuse the slot).
pub const LIE_NONCE: u64 = 0x11e5_0000_0000_0000;

/// One slot: its bytes and header, and whether the header lies (then the
/// guest must answer `BadFrame`, whatever the bytes hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub bytes: Vec<u8>,
    pub header: SlotHeader,
    pub lies: bool,
}

/// The slots of `burst` in campaign `seed`.
pub fn slots(seed: u64, burst: &Burst) -> Vec<Slot> {
    let capacity = ring::slot_capacity();
    let mut out: Vec<Slot> = burst
        .bytes
        .split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .take(MAX_SLOTS)
        .map(|f| {
            let len = f.len() as u64;
            let lies = len > capacity;
            let header = if lies {
                SlotHeader::Len(len)
            } else {
                SlotHeader::True
            };
            Slot {
                bytes: f.to_vec(),
                header,
                lies,
            }
        })
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ burst.index.rotate_left(17) ^ LIE_NONCE);
    let ping = frame::encode(&Request::Ping { nonce: LIE_NONCE }).expect("a Ping encodes");
    let ping = ping.strip_suffix(&[0]).unwrap_or(&ping).to_vec();
    for _ in 0..rng.random_range(1..=3) {
        let header = match rng.random_range(0..4) {
            0 => SlotHeader::Len(capacity + 1),
            1 => SlotHeader::Len(u64::MAX),
            2 => SlotHeader::Tag(0),
            _ => SlotHeader::Tag(u64::MAX),
        };
        let slot = Slot {
            bytes: ping.clone(),
            header,
            lies: true,
        };
        let at = rng.random_range(0..=out.len());
        out.insert(at, slot);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::burst::burst;

    #[test]
    fn a_burst_fills_the_same_slots_every_time() {
        for k in 0..20 {
            let b = burst(7, k);
            assert_eq!(slots(7, &b), slots(7, &b));
        }
    }

    #[test]
    fn every_frame_of_the_burst_gets_a_slot_and_some_headers_lie() {
        let mut lies = std::collections::BTreeSet::new();
        for k in 0..200 {
            let b = burst(3, k);
            let frames: Vec<&[u8]> = b
                .bytes
                .split(|&x| x == 0)
                .filter(|f| !f.is_empty())
                .collect();
            let s = slots(3, &b);
            let honest: Vec<&[u8]> = s
                .iter()
                .filter(|s| s.header == SlotHeader::True)
                .map(|s| &s.bytes[..])
                .collect();
            assert!(s.iter().any(|s| s.lies), "burst {k} has a lying slot");
            for slot in &s {
                match slot.header {
                    SlotHeader::True => {
                        assert!(!slot.lies && slot.bytes.len() as u64 <= ring::slot_capacity())
                    }
                    SlotHeader::Len(n) if n == slot.bytes.len() as u64 => {
                        assert!(slot.lies && n > ring::slot_capacity(), "oversize {n}");
                        lies.insert("oversize");
                    }
                    SlotHeader::Len(n) => {
                        assert!(slot.lies && n > ring::slot_capacity(), "{n}");
                        lies.insert("len");
                    }
                    SlotHeader::Tag(_) => {
                        assert!(slot.lies);
                        lies.insert("tag");
                    }
                }
            }
            let small: Vec<&[u8]> = frames
                .iter()
                .take(MAX_SLOTS)
                .copied()
                .filter(|f| f.len() as u64 <= ring::slot_capacity())
                .collect();
            assert_eq!(honest, small, "burst {k}: its frames, in order");
        }
        assert!(
            lies.contains("len") && lies.contains("tag"),
            "both kinds of lie come up: {lies:?}"
        );
    }
}
