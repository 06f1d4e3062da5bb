//! The swap store (formats.rs, "The swap store"): its slots are exactly the
//! model's on-swap pages, their units are disjoint and exactly the used
//! bits, nothing is pending between requests (invariant 3 / 5), and each
//! slot's data decodes to the page's bytes (invariant 6, [`super::slots`]).

use protocol::Hello;

use super::bitmap::{frame_mask, set_range};
use super::memory::GuestMemory;
use super::violation::Violation;
use crate::model::{Expected, ModelState};

/// The unit of the data area.
pub const UNIT: u64 = 128;

/// The store's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub units: u64,
    pub used: u64,
    pub pending: u64,
    pub lengths: u64,
    pub data: u64,
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn header(mem: &dyn GuestMemory, hello: &Hello) -> Result<Header, String> {
    let r = hello.swap;
    let mut b = [0u8; 48];
    mem.read(r.start, &mut b).map_err(|e| e.to_string())?;
    if &b[..8] != b"VMMSWAP1" {
        return Err(format!("bad magic {:02x?}", &b[..8]));
    }
    let unit = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    if u64::from(unit) != UNIT {
        return Err(format!("unit size {unit}, not 128"));
    }
    let units = u64::from(u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")));
    let h = Header {
        units,
        used: u64_at(&b, 16),
        pending: u64_at(&b, 24),
        lengths: u64_at(&b, 32),
        data: u64_at(&b, 40),
    };
    let size = r.end - r.start;
    let parts = [
        (h.used, units.div_ceil(8)),
        (h.pending, units.div_ceil(8)),
        (h.lengths, units * 2),
        (h.data, units * UNIT),
    ];
    for (off, len) in parts {
        if off % 4096 != 0 || off.checked_add(len).is_none_or(|e| e > size) {
            return Err(format!(
                "part at offset {off:#x} (+{len:#x}) not page aligned or outside the store"
            ));
        }
    }
    Ok(h)
}

/// The store's bookkeeping as read: what a check compares and keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub header: Header,
    /// The used and pending bitmaps as words (bits past the units 0).
    pub used: Vec<u64>,
    pub pending: Vec<u64>,
    pub lengths: Vec<u16>,
}

/// Reads `units` bits at `phys` as words.
fn read_bits(mem: &dyn GuestMemory, phys: u64, units: u64) -> Option<Vec<u64>> {
    let mut bytes = vec![0u8; units.div_ceil(64) as usize * 8];
    mem.read(phys, &mut bytes[..units.div_ceil(8) as usize])
        .ok()?;
    let mut words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let last = words.len().saturating_sub(1);
    if let Some(w) = words.last_mut() {
        *w &= frame_mask(last, units);
    }
    Some(words)
}

/// Reads the store (`Ok(None)`: the layout has none; `Err`: why it is
/// unusable, reported as a swap store violation).
pub fn read_store(mem: &dyn GuestMemory, hello: &Hello) -> Result<Option<Store>, String> {
    if hello.swap.start == hello.swap.end {
        return Ok(None);
    }
    let h = header(mem, hello).map_err(|why| format!("header: {why}"))?;
    let at = hello.swap.start;
    let mut len_bytes = vec![0u8; (h.units * 2) as usize];
    let parts = (
        read_bits(mem, at + h.used, h.units),
        read_bits(mem, at + h.pending, h.units),
        mem.read(at + h.lengths, &mut len_bytes).ok(),
    );
    let (Some(used), Some(pending), Some(())) = parts else {
        return Err("bitmaps or length table unreadable".into());
    };
    let lengths = len_bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    Ok(Some(Store {
        header: h,
        used,
        pending,
        lengths,
    }))
}

/// The first set bit of `words`.
fn first_bit(words: &[u64]) -> Option<u64> {
    let (w, &x) = words.iter().enumerate().find(|(_, &x)| x != 0)?;
    Some(w as u64 * 64 + u64::from(x.trailing_zeros()))
}

/// The model's on-swap pages: (slot, page address), by slot.
pub fn model_slots(expect: &Expected) -> Vec<(u64, u64)> {
    let mut slots = Vec::new();
    for (s, e, st) in expect.runs() {
        if let ModelState::OnSwap { slot } = st {
            slots.extend((0..e - s).map(|k| (slot + k, (s + k) << 12)));
        }
    }
    slots.sort_unstable();
    slots
}

/// Checks the store's bookkeeping against the model's on-swap pages
/// `slots` ([`model_slots`]); answers the slots whose data must be
/// checked: (slot, length, page address).
pub fn check_store(
    store: &Store,
    slots: &[(u64, u64)],
    out: &mut Vec<Violation>,
) -> Vec<(u64, u64, u64)> {
    let mut bad = |why: String| out.push(Violation::SwapStore { why });
    let units = store.header.units;
    if let Some(u) = first_bit(&store.pending) {
        bad(format!("pending bit of unit {u} set between requests"));
    }
    let bit = |b: &[u64], u: u64| b[(u / 64) as usize] >> (u % 64) & 1 == 1;
    let mut owned = vec![0u64; store.used.len()];
    // Slots whose units were taken, in order: (slot, end unit).
    let mut taken: Vec<(u64, u64)> = Vec::new();
    let mut data = Vec::new();
    let mut next = slots.iter().peekable();
    let mut s = 0;
    while s < units {
        // The next slot with a length, or that a page is on.
        let nonzero = store.lengths[s as usize..]
            .chunks(32)
            .enumerate()
            .find(|(_, c)| c.iter().any(|&l| l != 0))
            .and_then(|(k, c)| {
                c.iter()
                    .position(|&l| l != 0)
                    .map(|i| s + k as u64 * 32 + i as u64)
            });
        while next.peek().is_some_and(|&&(slot, _)| slot < s) {
            next.next();
        }
        let modeled = next
            .peek()
            .map(|&&(slot, _)| slot)
            .filter(|&slot| slot < units);
        let Some(at) = [nonzero, modeled].into_iter().flatten().min() else {
            break;
        };
        s = at + 1;
        let len = u64::from(store.lengths[at as usize]);
        let expected = next
            .peek()
            .filter(|&&&(slot, _)| slot == at)
            .map(|&&(_, v)| v);
        match (len, expected) {
            (0, None) => continue,
            (0, Some(virt)) => {
                bad(format!(
                    "slot {at} of the page at {virt:#x} holds no data (length 0)"
                ));
                continue;
            }
            (_, None) => bad(format!("slot {at} holds {len} bytes but no page is on it")),
            (_, Some(_)) if len > 4096 => {
                bad(format!("slot {at} has length {len}, above 4096"));
                continue;
            }
            _ => {}
        }
        for u in at..at + len.div_ceil(UNIT) {
            if u >= units {
                bad(format!("slot {at} runs past the store's {units} units"));
            } else if bit(&owned, u) {
                let o = taken
                    .iter()
                    .find(|&&(o, end)| o <= u && u < end)
                    .map_or(at, |&(o, _)| o);
                bad(format!("unit {u} belongs to slots {o} and {at}"));
            } else {
                set_range(&mut owned, u, u + 1);
            }
            if u < units && !bit(&store.used, u) {
                bad(format!("unit {u} of slot {at} is not marked used"));
            }
        }
        taken.push((at, at + len.div_ceil(UNIT)));
        if let Some(virt) = expected {
            data.push((at, len, virt));
        }
    }
    let stray: Vec<u64> = store.used.iter().zip(&owned).map(|(u, o)| u & !o).collect();
    if let Some(u) = first_bit(&stray) {
        bad(format!(
            "unit {u} is marked used but no slot owns it (a leak)"
        ));
    }
    if let Some((s, virt)) = slots.iter().find(|(s, _)| *s >= units) {
        bad(format!(
            "the page at {virt:#x} is on slot {s}, past the store's units"
        ));
    }
    data
}
