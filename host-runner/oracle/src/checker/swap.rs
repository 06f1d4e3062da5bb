//! The swap store (formats.rs, "The swap store"): its slots are exactly the
//! model's on-swap pages, their units are disjoint and exactly the used
//! bits, nothing is pending between requests (invariant 3 / 5), and each
//! slot's data decodes to the page's bytes (invariant 6).

use std::collections::BTreeMap;

use protocol::Hello;

use super::memory::GuestMemory;
use super::violation::{Path, Step, Violation};
use crate::model::{Expectations, ModelState};

/// The unit of the data area.
const UNIT: u64 = 128;

/// The store's header.
struct Header {
    units: u64,
    used: u64,
    pending: u64,
    lengths: u64,
    data: u64,
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

/// Checks the store against the model's on-swap pages.
pub fn check_swap(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expectations,
    out: &mut Vec<Violation>,
) {
    if hello.swap.start == hello.swap.end {
        return;
    }
    let mut found = Vec::new();
    let mut bad = |why: String| out.push(Violation::SwapStore { why });
    let h = match header(mem, hello) {
        Ok(h) => h,
        Err(why) => return bad(format!("header: {why}")),
    };
    let read = |off: u64, len: u64| {
        let mut v = vec![0u8; len as usize];
        mem.read(hello.swap.start + off, &mut v).map(|()| v)
    };
    let (Ok(used), Ok(pending), Ok(lengths)) = (
        read(h.used, h.units.div_ceil(8)),
        read(h.pending, h.units.div_ceil(8)),
        read(h.lengths, h.units * 2),
    ) else {
        return bad("bitmaps or length table unreadable".into());
    };
    let bit = |b: &[u8], u: u64| b[(u / 8) as usize] >> (u % 8) & 1 == 1;
    let len_of = |s: u64| {
        u64::from(u16::from_le_bytes([
            lengths[2 * s as usize],
            lengths[2 * s as usize + 1],
        ]))
    };
    if let Some(u) = (0..h.units).find(|&u| bit(&pending, u)) {
        bad(format!("pending bit of unit {u} set between requests"));
    }
    // The model's slots: slot → page.
    let mut slots = BTreeMap::new();
    for (start, pages, st) in expect.runs() {
        if let ModelState::OnSwap { slot } = st {
            for k in 0..pages {
                slots.insert(slot + k, start + k * 4096);
            }
        }
    }
    let mut owner: Vec<Option<u64>> = vec![None; h.units as usize];
    for s in 0..h.units {
        let len = len_of(s);
        let expected = slots.get(&s).copied();
        match (len, expected) {
            (0, None) => continue,
            (0, Some(virt)) => {
                bad(format!(
                    "slot {s} of the page at {virt:#x} holds no data (length 0)"
                ));
                continue;
            }
            (_, None) => bad(format!("slot {s} holds {len} bytes but no page is on it")),
            (_, Some(_)) if len > 4096 => {
                bad(format!("slot {s} has length {len}, above 4096"));
                continue;
            }
            _ => {}
        }
        for u in s..s + len.div_ceil(UNIT) {
            match owner.get_mut(u as usize) {
                Some(Some(o)) => bad(format!("unit {u} belongs to slots {o} and {s}")),
                Some(o) => *o = Some(s),
                None => bad(format!("slot {s} runs past the store's {} units", h.units)),
            }
            if u < h.units && !bit(&used, u) {
                bad(format!("unit {u} of slot {s} is not marked used"));
            }
        }
        if let Some(virt) = expected {
            found.extend(slot_data(mem, hello, &h, expect, (s, len, virt)));
        }
    }
    if let Some(u) = (0..h.units).find(|&u| bit(&used, u) && owner[u as usize].is_none()) {
        bad(format!(
            "unit {u} is marked used but no slot owns it (a leak)"
        ));
    }
    if let Some((s, virt)) = slots.iter().find(|(s, _)| **s >= h.units) {
        bad(format!(
            "the page at {virt:#x} is on slot {s}, past the store's units"
        ));
    }
    out.extend(found);
}

/// The entries leading to `virt`'s level-1 entry, read from the root.
fn path_of(mem: &dyn GuestMemory, hello: &Hello, virt: u64) -> Path {
    let mut steps = Vec::new();
    let mut table = hello.page_table_root;
    for level in (0..4).rev() {
        let index = (virt >> (12 + 9 * level)) & 511;
        let mut b = [0u8; 8];
        if mem.read(table + index * 8, &mut b).is_err() {
            break;
        }
        let raw = u64::from_le_bytes(b);
        steps.push(Step {
            table,
            index: index as u16,
            raw,
        });
        if raw & 1 == 0 {
            break;
        }
        table = raw & 0x000f_ffff_ffff_f000;
    }
    Path { virt, steps }
}

/// Invariant 6 for one slot: its data decodes to the page's bytes.
fn slot_data(
    mem: &dyn GuestMemory,
    hello: &Hello,
    h: &Header,
    expect: &Expectations,
    (slot, len, virt): (u64, u64, u64),
) -> Option<Violation> {
    let mut stored = vec![0u8; len as usize];
    let at = hello.swap.start + h.data + slot * UNIT;
    if let Err(error) = mem.read(at, &mut stored) {
        let what = format!("swap slot {slot} at {at:#x}");
        return Some(Violation::Unreadable { what, error });
    }
    let page = if len == 4096 {
        stored
    } else {
        let mut p = vec![0u8; 4096];
        match lz4_flex::block::decompress_into(&stored, &mut p) {
            Ok(4096) => p,
            Ok(n) => {
                let why = format!("slot {slot} of {virt:#x} decompresses to {n} bytes, not 4096");
                return Some(Violation::SwapStore { why });
            }
            Err(e) => {
                let why = format!("slot {slot} of {virt:#x} is no LZ4 block: {e}");
                return Some(Violation::SwapStore { why });
            }
        }
    };
    let want = expect.expected_bytes(virt)?;
    let offset = page.iter().zip(&want).position(|(a, b)| a != b)?;
    Some(Violation::SwapData {
        path: path_of(mem, hello, virt),
        slot,
        offset: offset as u64,
        expected: want[offset],
        got: page[offset],
    })
}
