//! Parts of guest memory the checker keeps as read (the frame-info table,
//! the swap store's bookkeeping): plain bulk reads into reused buffers,
//! and a refresh that reads them again chunk by chunk and names the words
//! that changed.

use super::memory::{GuestMemory, MemoryError};

/// Bytes compared at a time by [`refresh`].
const CHUNK: usize = 1 << 16;

/// Reads `len` bytes at `phys` into `buf` (its allocation reused).
pub fn read_into(
    mem: &dyn GuestMemory,
    phys: u64,
    len: u64,
    buf: &mut Vec<u8>,
) -> Result<(), MemoryError> {
    buf.resize(len as usize, 0);
    mem.read(phys, buf)
}

/// The little-endian word `i` of `b` (zero-padded at the end).
pub fn word(b: &[u8], i: usize) -> u64 {
    let at = i * 8;
    match b.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
        None => {
            let mut w = [0u8; 8];
            let tail = b.get(at..).unwrap_or(&[]);
            w[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(w)
        }
    }
}

/// The index of the first non-zero word of `b`, from word `from` on,
/// skipping zero stretches a block at a time.
pub fn next_nonzero(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    let n = b.len().div_ceil(8);
    while i < n {
        if i % 64 == 0 && i * 8 + 512 <= b.len() {
            let block = &b[i * 8..i * 8 + 512];
            let any = block.chunks_exact(8).fold(0, |a, c| {
                a | u64::from_le_bytes(c.try_into().expect("8 bytes"))
            });
            if any == 0 {
                i += 64;
                continue;
            }
        }
        if word(b, i) != 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Reads `rec.len()` bytes at `phys` again into `rec`, calling
/// `changed(word index, old, new)` for each word that differs.
pub fn refresh(
    mem: &dyn GuestMemory,
    phys: u64,
    rec: &mut [u8],
    scratch: &mut Vec<u8>,
    mut changed: impl FnMut(usize, u64, u64),
) -> Result<(), MemoryError> {
    scratch.resize(CHUNK, 0);
    let mut at = 0;
    while at < rec.len() {
        let n = (rec.len() - at).min(CHUNK);
        let now = &mut scratch[..n];
        mem.read(phys + at as u64, now)?;
        let old = &mut rec[at..at + n];
        if now != old {
            for i in 0..n.div_ceil(8) {
                let (a, b) = (word(old, i), word(now, i));
                if a != b {
                    changed(at / 8 + i, a, b);
                }
            }
            old.copy_from_slice(now);
        }
        at += n;
    }
    Ok(())
}
