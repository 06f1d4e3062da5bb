//! The store's bytes in guest memory: reads and writes at store offsets
//! (across frames), and the slots' lengths. Its bitmaps are
//! [`crate::bits::Bits`] (`SwapStore::used`, `SwapStore::pending`).

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

pub(super) fn slot_len<M: PhysMemory>(mem: &mut M, s: &SwapStore, slot: u64) -> u64 {
    let mut b = [0u8; 2];
    read(mem, s, s.len_off + slot * 2, &mut b);
    u64::from(u16::from_le_bytes(b))
}

pub(super) fn set_slot_len<M: PhysMemory>(mem: &mut M, s: &SwapStore, slot: u64, len: u16) {
    write(mem, s, s.len_off + slot * 2, &len.to_le_bytes());
}
