//! The store's bytes in guest memory: reads and writes at store offsets
//! (across frames), the bits of its bitmaps, a word of them at a time,
//! and the slots' lengths.

use super::SwapStore;
use crate::backend::{FrameAccess, PhysMemory};
use crate::frames::{frame_at, frame_number};

/// Bytes at store offset `off..off + buf.len()` (across frames).
pub(super) fn read<M: PhysMemory>(mem: &mut M, s: &SwapStore, mut off: u64, buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        let f = frame_at(frame_number(s.base) + off / 4096);
        let at = (off % 4096) as usize;
        let n = (4096 - at).min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&mem.frame_bytes(f)[at..at + n]);
        done += n;
        off += n as u64;
    }
}

pub(super) fn write<M: PhysMemory>(mem: &mut M, s: &SwapStore, mut off: u64, buf: &[u8]) {
    let mut done = 0;
    while done < buf.len() {
        let f = frame_at(frame_number(s.base) + off / 4096);
        let at = (off % 4096) as usize;
        let n = (4096 - at).min(buf.len() - done);
        mem.frame_bytes(f)[at..at + n].copy_from_slice(&buf[done..done + n]);
        done += n;
        off += n as u64;
    }
}

pub(super) fn get_bit<M: PhysMemory>(mem: &mut M, s: &SwapStore, map: u64, n: u64) -> bool {
    let mut b = [0u8];
    read(mem, s, map + n / 8, &mut b);
    b[0] & (1 << (n % 8)) != 0
}

pub(super) fn set_bit<M: PhysMemory>(mem: &mut M, s: &SwapStore, map: u64, n: u64, v: bool) {
    let mut b = [0u8];
    read(mem, s, map + n / 8, &mut b);
    if v {
        b[0] |= 1 << (n % 8);
    } else {
        b[0] &= !(1 << (n % 8));
    }
    write(mem, s, map + n / 8, &b);
}

/// Word `w` (units `64w..64w + 64`) of the bitmap at `map`. A bitmap is
/// a whole number of pages (`layout` rounds it up), so each of its first
/// `units.div_ceil(64)` words lies inside it.
pub(super) fn word<M: PhysMemory>(mem: &mut M, s: &SwapStore, map: u64, w: u64) -> u64 {
    let mut b = [0u8; 8];
    read(mem, s, map + w * 8, &mut b);
    u64::from_le_bytes(b)
}

/// The bits of word `w` at or past the last unit.
pub(super) fn past_end(s: &SwapStore, w: u64) -> u64 {
    match s.units.saturating_sub(w * 64) {
        n @ 0..=63 => !0 << n,
        _ => 0,
    }
}

pub(super) fn slot_len<M: PhysMemory>(mem: &mut M, s: &SwapStore, slot: u64) -> u64 {
    let mut b = [0u8; 2];
    read(mem, s, s.len_off + slot * 2, &mut b);
    u64::from(u16::from_le_bytes(b))
}

pub(super) fn set_slot_len<M: PhysMemory>(mem: &mut M, s: &SwapStore, slot: u64, len: u16) {
    write(mem, s, s.len_off + slot * 2, &len.to_le_bytes());
}
