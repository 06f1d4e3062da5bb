//! Invariant 6 for on-swap pages: each slot's data (raw, or an LZ4 block)
//! decodes to the bytes the model expects of its page.

use protocol::Hello;

use super::address::address_path;
use super::memory::GuestMemory;
use super::swap::{Header, Store, UNIT};
use super::violation::{Path, Step, Violation};
use crate::model::keys::{untag, SpaceAddr};
use crate::model::Expected;

/// Checks the data of `slots` ((slot, length, page address)), with one
/// buffer for the stored bytes, one for the page and one for the
/// expected page for them all.
pub fn check_slots(
    mem: &dyn GuestMemory,
    hello: &Hello,
    store: &Store,
    expect: &Expected,
    slots: impl Iterator<Item = (u64, u64, u64)>,
    out: &mut Vec<Violation>,
) {
    let Some(h) = &store.header else {
        return;
    };
    let mut bufs = (Vec::new(), [0u8; 4096], [0u8; 4096]);
    for s in slots {
        out.extend(slot_data(mem, hello, h, expect, s, &mut bufs));
    }
}

/// The entries leading to the level-1 entry of `virt` (a key), read from
/// its space's root.
fn path_of(mem: &dyn GuestMemory, hello: &Hello, expect: &Expected, virt: u64) -> Path {
    let (space, addr) = untag(virt);
    let root = match space {
        0 => Some(hello.page_table_root),
        s => expect.space_roots().get(&s).copied(),
    };
    let steps = root
        .into_iter()
        .flat_map(|root| address_path(mem, root, addr))
        .map_while(|e| {
            Some(Step {
                table: e.table,
                index: e.index as u16,
                raw: e.raw.ok()?,
            })
        })
        .collect();
    Path { virt, steps }
}

/// Invariant 6 for one slot: its data decodes to the page's bytes.
fn slot_data(
    mem: &dyn GuestMemory,
    hello: &Hello,
    h: &Header,
    expect: &Expected,
    (slot, len, virt): (u64, u64, u64),
    (stored, decoded, scratch): &mut (Vec<u8>, [u8; 4096], [u8; 4096]),
) -> Option<Violation> {
    // Grown only: every byte used is read over.
    if stored.len() < len as usize {
        stored.resize(len as usize, 0);
    }
    let stored = &mut stored[..len as usize];
    let at = hello.swap.start + h.data + slot * UNIT;
    if let Err(error) = mem.read(at, stored) {
        let what = format!("swap slot {slot} at {at:#x}");
        return Some(Violation::Unreadable { what, error });
    }
    let page: &[u8] = if len == 4096 {
        &*stored
    } else {
        match lz4_flex::block::decompress_into(&*stored, decoded) {
            Ok(4096) => decoded,
            Ok(n) => {
                let why = format!(
                    "slot {slot} of {} decompresses to {n} bytes, not 4096",
                    SpaceAddr(virt)
                );
                return Some(Violation::SwapStore { why });
            }
            Err(e) => {
                let why = format!("slot {slot} of {} is no LZ4 block: {e}", SpaceAddr(virt));
                return Some(Violation::SwapStore { why });
            }
        }
    };
    let want = expect.source(virt, expect.state(virt)).bytes(scratch)?;
    if page == &want[..] {
        return None;
    }
    let offset = page.iter().zip(want.iter()).position(|(a, b)| a != b)?;
    Some(Violation::SwapData {
        path: path_of(mem, hello, expect, virt),
        slot,
        offset: offset as u64,
        expected: want[offset],
        got: page[offset],
    })
}
