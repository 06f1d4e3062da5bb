//! The store's bytes in guest memory: reads and writes at store offsets
//! (across frames), and the slots' lengths. Its bitmaps are
//! [`crate::bits::Bits`] (`SwapStore::used`, `SwapStore::pending`).
//!
//! [`StoreBytes`] knows only where the store starts and where its length
//! table is, not the store itself, so this module does not depend on its
//! parent.

use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::frames::{frame_at, frame_number};

/// The store's bytes: from the start of frame `base` on, with the slots'
/// `u16` lengths from byte offset `len_off`.
#[derive(Clone, Copy, Debug)]
pub(super) struct StoreBytes {
    pub base: PhysFrame,
    pub len_off: u64,
}

impl StoreBytes {
    /// Calls `f` with each frame's part of store bytes `off..off + len`,
    /// in order, and how many bytes came before it.
    fn spans<M: PhysMemory>(
        self,
        mem: &mut M,
        mut off: u64,
        len: usize,
        mut f: impl FnMut(&mut [u8], usize),
    ) {
        let mut done = 0;
        while done < len {
            let frame = frame_at(frame_number(self.base) + off / 4096);
            let at = usize_of(off % 4096);
            let n = (4096 - at).min(len - done);
            f(&mut mem.frame_bytes(frame)[at..at + n], done);
            done += n;
            off += n as u64;
        }
    }

    /// Bytes at store offset `off..off + buf.len()` (across frames).
    pub fn read<M: PhysMemory>(self, mem: &mut M, off: u64, buf: &mut [u8]) {
        self.spans(mem, off, buf.len(), |part, done| {
            buf[done..done + part.len()].copy_from_slice(part);
        });
    }

    /// Writes `buf` at store offset `off` (across frames).
    pub fn write<M: PhysMemory>(self, mem: &mut M, off: u64, buf: &[u8]) {
        self.spans(mem, off, buf.len(), |part, done| {
            part.copy_from_slice(&buf[done..done + part.len()]);
        });
    }

    /// Zeroes `len` bytes at store offset `off` (across frames).
    pub fn zero<M: PhysMemory>(self, mem: &mut M, off: u64, len: u64) {
        self.spans(mem, off, usize_of(len), |part, _| part.fill(0));
    }

    /// The length of slot `slot` (0: no page).
    pub fn slot_len<M: PhysMemory>(self, mem: &mut M, slot: u64) -> u64 {
        let mut b = [0u8; 2];
        self.read(mem, self.len_off + slot * 2, &mut b);
        u64::from(u16::from_le_bytes(b))
    }

    /// Sets the length of slot `slot`.
    pub fn set_slot_len<M: PhysMemory>(self, mem: &mut M, slot: u64, len: u16) {
        self.write(mem, self.len_off + slot * 2, &len.to_le_bytes());
    }
}
