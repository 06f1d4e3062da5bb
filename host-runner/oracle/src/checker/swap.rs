//! The swap store (formats.rs, "The swap store"): its slots are exactly the
//! model's on-swap pages, their units are disjoint and exactly the used
//! bits, nothing is pending between requests (invariant 3 / 5), and each
//! slot's data decodes to the page's bytes (invariant 6, [`super::slots`]).

use protocol::Hello;

use super::bitmap::set_range;
use super::copies::Mirror;
use super::memory::GuestMemory;
use super::violation::Violation;
use crate::model::keys::SpaceAddr;
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

/// The header as laid out in guest memory (formats.rs, "The swap store").
#[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::KnownLayout, zerocopy::Immutable)]
#[repr(C)]
pub struct RawHeader {
    pub magic: [u8; 8],
    pub unit: zerocopy::little_endian::U32,
    pub units: zerocopy::little_endian::U32,
    pub used: zerocopy::little_endian::U64,
    pub pending: zerocopy::little_endian::U64,
    pub lengths: zerocopy::little_endian::U64,
    pub data: zerocopy::little_endian::U64,
}

/// The header's magic.
pub const MAGIC: [u8; 8] = *b"VMMSWAP1";

fn header(mem: &dyn GuestMemory, hello: &Hello) -> Result<Header, String> {
    use zerocopy::{FromZeros, IntoBytes};
    let r = hello.swap;
    let mut raw = RawHeader::new_zeroed();
    mem.read(r.start, raw.as_mut_bytes())
        .map_err(|e| e.to_string())?;
    if raw.magic != MAGIC {
        return Err(format!("bad magic {:02x?}", raw.magic));
    }
    let unit = raw.unit.get();
    if u64::from(unit) != UNIT {
        return Err(format!("unit size {unit}, not 128"));
    }
    let units = u64::from(raw.units.get());
    let h = Header {
        units,
        used: raw.used.get(),
        pending: raw.pending.get(),
        lengths: raw.lengths.get(),
        data: raw.data.get(),
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

/// The store's bookkeeping as read (raw bytes): what a check compares and
/// keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    pub header: Option<Header>,
    pub used: Mirror,
    pub pending: Mirror,
    pub lengths: Mirror,
}

impl Store {
    pub fn units(&self) -> u64 {
        self.header.map_or(0, |h| h.units)
    }

    /// Slot `s`'s length.
    pub fn len(&self, s: u64) -> u64 {
        let at = 2 * s as usize;
        let b = &self.lengths.bytes;
        u64::from(u16::from_le_bytes([b[at], b[at + 1]]))
    }

    fn used(&self, u: u64) -> bool {
        self.used.bytes[(u / 8) as usize] >> (u % 8) & 1 == 1
    }

    /// The parts: (offset in the store, bytes).
    pub fn parts_mut(&mut self) -> [(u64, &mut Mirror); 3] {
        let h = self.header.expect("a store read");
        [
            (h.used, &mut self.used),
            (h.pending, &mut self.pending),
            (h.lengths, &mut self.lengths),
        ]
    }
}

/// Reads the store into `store`'s buffers (`Ok(None)`: the layout has
/// none; `Err`: why it is unusable, reported as a swap store violation).
pub fn read_store(
    mem: &dyn GuestMemory,
    hello: &Hello,
    mut store: Store,
) -> Result<Option<Store>, String> {
    if hello.swap.start == hello.swap.end {
        return Ok(None);
    }
    let h = header(mem, hello).map_err(|why| format!("header: {why}"))?;
    let at = hello.swap.start;
    store.header = Some(h);
    let bits = h.units.div_ceil(8);
    let none = |_, _, _| {};
    let read = (store.used.sync(mem, at + h.used, bits, none))
        .and_then(|()| store.pending.sync(mem, at + h.pending, bits, none))
        .and_then(|()| store.lengths.sync(mem, at + h.lengths, h.units * 2, none));
    read.map_err(|_| "bitmaps or length table unreadable".to_string())?;
    Ok(Some(store))
}

/// Reads `store` again (its header must be the same, else it is read
/// anew and every slot counts as changed: `Ok(None)`); answers the slots
/// whose length changed, or `Ok(Some(empty))` when nothing changed at all
/// (`changed` says whether anything did).
pub fn refresh_store(
    mem: &dyn GuestMemory,
    hello: &Hello,
    store: &mut Store,
    changed: &mut bool,
) -> Result<Option<Vec<u64>>, String> {
    let h = header(mem, hello).map_err(|why| format!("header: {why}"))?;
    if store.header != Some(h) {
        *changed = true;
        *store = read_store(mem, hello, std::mem::take(store))?.unwrap_or_default();
        return Ok(None);
    }
    let mut slots = Vec::new();
    let at = hello.swap.start;
    for (k, (off, buf)) in store.parts_mut().into_iter().enumerate() {
        let lengths = k == 2;
        let len = buf.bytes.len() as u64;
        buf.sync(mem, at + off, len, |i, a, b| {
            *changed = true;
            if lengths {
                let moved = (0..4).filter(|j| (a ^ b) >> (16 * j) & 0xffff != 0);
                slots.extend(moved.map(|j| i as u64 * 4 + j));
            }
        })
        .map_err(|_| "bitmaps or length table unreadable".to_string())?;
    }
    Ok(Some(slots))
}

/// The first unit of `units` whose bit is set in `bits` (bytes) and not
/// in `but` (words; empty: none).
fn first_bit(bits: &Mirror, but: &[u64], units: u64) -> Option<u64> {
    for &w in bits.nonzero() {
        let x = bits.word(w) & !but.get(w).copied().unwrap_or(0);
        if x != 0 {
            let u = w as u64 * 64 + u64::from(x.trailing_zeros());
            return (u < units).then_some(u);
        }
    }
    None
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
/// checked: (slot, length, page address). `owned` is a reused buffer.
pub fn check_store(
    store: &Store,
    slots: &[(u64, u64)],
    owned: &mut Vec<u64>,
    out: &mut Vec<Violation>,
) -> Vec<(u64, u64, u64)> {
    let mut bad = |why: String| out.push(Violation::SwapStore { why });
    let units = store.units();
    if let Some(u) = first_bit(&store.pending, &[], units) {
        bad(format!("pending bit of unit {u} set between requests"));
    }
    let bit = |b: &[u64], u: u64| b[(u / 64) as usize] >> (u % 64) & 1 == 1;
    // All zeros between calls: the bits set here are cleared at the end.
    if owned.len() as u64 != units.div_ceil(64) {
        owned.clear();
        owned.resize(units.div_ceil(64) as usize, 0);
    }
    // Slots whose units were taken, in order: (slot, end unit).
    let mut taken: Vec<(u64, u64)> = Vec::new();
    let mut data = Vec::new();
    let mut next = slots.iter().peekable();
    let mut s = 0;
    let mut word_at = 0;
    // The non-zero words of the lengths, passed in order: `word_at` only
    // grows, so one cursor finds each next one (not a search per slot).
    let lengths = store.lengths.nonzero();
    let mut cursor = 0;
    while s < units {
        word_at = word_at.max((s / 4) as usize);
        // The next slot with a length (four to a word), or that a page is on.
        let mut nonzero = None;
        while nonzero.is_none() {
            while lengths.get(cursor).is_some_and(|&w| w < word_at) {
                cursor += 1;
            }
            let Some(&w) = lengths.get(cursor) else {
                break;
            };
            nonzero = (w as u64 * 4..w as u64 * 4 + 4)
                .find(|&k| k >= s && k < units && store.len(k) != 0);
            if nonzero.is_none() {
                word_at = w + 1;
            }
        }
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
        let len = store.len(at);
        let expected = next
            .peek()
            .filter(|&&&(slot, _)| slot == at)
            .map(|&&(_, v)| v);
        match (len, expected) {
            (0, None) => continue,
            (0, Some(virt)) => {
                bad(format!(
                    "slot {at} of the page at {} holds no data (length 0)",
                    SpaceAddr(virt)
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
            } else if bit(owned, u) {
                let o = taken
                    .iter()
                    .find(|&&(o, end)| o <= u && u < end)
                    .map_or(at, |&(o, _)| o);
                bad(format!("unit {u} belongs to slots {o} and {at}"));
            } else {
                set_range(owned, u, u + 1);
            }
            if u < units && !store.used(u) {
                bad(format!("unit {u} of slot {at} is not marked used"));
            }
        }
        taken.push((at, at + len.div_ceil(UNIT)));
        if let Some(virt) = expected {
            data.push((at, len, virt));
        }
    }
    if let Some(u) = first_bit(&store.used, owned, units) {
        bad(format!(
            "unit {u} is marked used but no slot owns it (a leak)"
        ));
    }
    if let Some((s, virt)) = slots.iter().find(|(s, _)| *s >= units) {
        bad(format!(
            "the page at {} is on slot {s}, past the store's units",
            SpaceAddr(*virt)
        ));
    }
    // Every bit set is a unit of a taken slot.
    for &(a, e) in &taken {
        for w in a / 64..e.min(units).div_ceil(64) {
            owned[w as usize] = 0;
        }
    }
    data
}
