//! Reading guest physical memory.

/// A failed read of guest physical memory.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The range is not in the memory the backend holds.
    #[error("physical range {phys:#x}+{len:#x} is outside guest memory")]
    OutOfBounds { phys: u64, len: u64 },
    /// The backend failed (I/O, QMP, ...).
    #[error("guest memory backend failed: {0}")]
    Backend(String),
}

/// Guest physical memory, read by the checker.
pub trait GuestMemory {
    /// Fills `buf` with the bytes at physical address `phys..`.
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError>;

    /// Fills `words` with the little-endian words at `phys..`. Backends
    /// that can copy straight into the words override it (a page table is
    /// read this way, at every check).
    fn read_words(&self, phys: u64, words: &mut [u64]) -> Result<(), MemoryError> {
        let mut bytes = vec![0u8; words.len() * 8];
        self.read(phys, &mut bytes)?;
        for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().expect("chunks of 8"));
        }
        Ok(())
    }

    /// Whether the bytes at `phys..phys + want.len()` are `want`. Backends
    /// that can compare in place override it (the data check compares
    /// every changed page).
    fn holds(&self, phys: u64, want: &[u8]) -> Result<bool, MemoryError> {
        let mut buf = vec![0u8; want.len()];
        self.read(phys, &mut buf)?;
        Ok(buf == want)
    }

    /// Calls `found(i, word)` for each non-zero little-endian word `i` of
    /// `phys..phys + len` in order (a last partial word zero-padded).
    /// Backends that can look in place override it with [`nonzero_words`]
    /// over their bytes: the checker scans the frame-info table and the
    /// swap store's bookkeeping, megabytes of mostly zeros, at every full
    /// check.
    fn nonzero_words(
        &self,
        phys: u64,
        len: u64,
        found: &mut dyn FnMut(usize, u64),
    ) -> Result<(), MemoryError> {
        const CHUNK: u64 = 1 << 16;
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        let mut at = 0;
        while at < len {
            let n = (len - at).min(CHUNK);
            let chunk = &mut buf[..n as usize];
            self.read(phys + at, chunk)?;
            let first = (at / 8) as usize;
            nonzero_words(chunk, &mut |i, w| found(first + i, w));
            at += n;
        }
        Ok(())
    }

    /// This memory as one that threads may read at once, when it is one:
    /// a check then compares the present pages' bytes (and at a full
    /// check half the file images') on a thread of their own
    /// ([`crate::Checker::set_data_thread`]).
    fn as_sync(&self) -> Option<&(dyn GuestMemory + Sync)> {
        None
    }
}

/// Calls `found(i, word)` for each non-zero little-endian word `i` of
/// `bytes` in order (a last partial word zero-padded), looking at 256
/// bytes at a time and passing over all-zero blocks in one test.
pub fn nonzero_words(bytes: &[u8], found: &mut dyn FnMut(usize, u64)) {
    const BLOCK: usize = 256;
    let blocks = bytes.chunks_exact(BLOCK);
    let tail = blocks.remainder();
    for (b, block) in blocks.enumerate() {
        let block: &[u8; BLOCK] = block.try_into().expect("a whole block");
        let words = block
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        if words.clone().fold(0, |a, w| a | w) == 0 {
            continue;
        }
        for (k, w) in words.enumerate() {
            if w != 0 {
                found(b * (BLOCK / 8) + k, w);
            }
        }
    }
    let first = (bytes.len() - tail.len()) / 8;
    for (k, c) in tail.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        if w != 0 {
            found(first + k, w);
        }
    }
}

/// Guest memory held in a byte vector: physical `base..base + bytes.len()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageMemory {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl GuestMemory for ImageMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        read_from(&self.bytes, self.base, phys, buf)
    }

    fn read_words(&self, phys: u64, words: &mut [u64]) -> Result<(), MemoryError> {
        words_from(&self.bytes, self.base, phys, words)
    }

    fn holds(&self, phys: u64, want: &[u8]) -> Result<bool, MemoryError> {
        Ok(slice_of(&self.bytes, self.base, phys, want.len())? == want)
    }

    fn as_sync(&self) -> Option<&(dyn GuestMemory + Sync)> {
        Some(self)
    }

    fn nonzero_words(
        &self,
        phys: u64,
        len: u64,
        found: &mut dyn FnMut(usize, u64),
    ) -> Result<(), MemoryError> {
        nonzero_words(
            slice_of(&self.bytes, self.base, phys, to_len(phys, len)?)?,
            found,
        );
        Ok(())
    }
}

impl ImageMemory {
    /// Writes every page with the byte it holds, so that each is backed
    /// by a page of its own, as a live guest's RAM is: a vector allocated
    /// zeroed reads its untouched pages as the one shared zero page, which
    /// stays in the cache and makes reading large zero tables look free.
    pub fn back_every_page(&mut self) {
        for b in self.bytes.iter_mut().step_by(4096) {
            *b = std::hint::black_box(*b);
        }
    }
}

/// `len` as a length in memory (else out of bounds at `phys`).
fn to_len(phys: u64, len: u64) -> Result<usize, MemoryError> {
    usize::try_from(len).map_err(|_| MemoryError::OutOfBounds { phys, len })
}

/// Physical `phys..phys + len` of `bytes`, which hold physical `base..`.
fn slice_of(bytes: &[u8], base: u64, phys: u64, len: usize) -> Result<&[u8], MemoryError> {
    let oob = MemoryError::OutOfBounds {
        phys,
        len: len as u64,
    };
    let start = phys.checked_sub(base).ok_or(oob.clone())?;
    let start = usize::try_from(start).map_err(|_| oob.clone())?;
    start
        .checked_add(len)
        .and_then(|end| bytes.get(start..end))
        .ok_or(oob)
}

/// Fills `buf` from `bytes`, which hold physical `base..`.
fn read_from(bytes: &[u8], base: u64, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
    buf.copy_from_slice(slice_of(bytes, base, phys, buf.len())?);
    Ok(())
}

/// Fills `words` from `bytes`, which hold physical `base..`.
fn words_from(bytes: &[u8], base: u64, phys: u64, words: &mut [u64]) -> Result<(), MemoryError> {
    let src = slice_of(bytes, base, phys, words.len() * 8)?;
    for (w, b) in words.iter_mut().zip(src.chunks_exact(8)) {
        *w = u64::from_le_bytes(b.try_into().expect("chunks of 8"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend with `read` only: the provided methods.
    struct Plain(Vec<u8>);

    impl GuestMemory for Plain {
        fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
            read_from(&self.0, 0, phys, buf)
        }
    }

    /// `mem` holds `bytes` at physical `base..`.
    fn agrees<M: GuestMemory + ?Sized>(mem: &M, base: u64, bytes: &[u8]) {
        let mut words = [0u64; 3];
        mem.read_words(base + 8, &mut words).unwrap();
        assert_eq!(words, [0, 0x1122_3344_5566_7788, 0]);
        assert!(mem.read_words(base + 48, &mut words).is_err());
        assert!(mem.holds(base + 16, &bytes[16..24]).unwrap());
        assert!(!mem.holds(base + 16, &[0; 8]).unwrap());
        assert!(mem.holds(base + 60, &[0; 8]).is_err());
    }

    /// The non-zero words `mem` finds at `phys..phys + len`.
    fn scan<M: GuestMemory + ?Sized>(mem: &M, phys: u64, len: u64) -> Vec<(usize, u64)> {
        let mut found = Vec::new();
        mem.nonzero_words(phys, len, &mut |i, w| found.push((i, w)))
            .unwrap();
        found
    }

    #[test]
    fn every_backend_finds_each_nonzero_word_in_long_zero_runs() {
        // 200 KiB and 5 bytes: more than three chunks of the provided
        // method, blocks of 64 bytes, and a partial last word.
        let len = 200 * 1024 + 5;
        let words = [0, 1, 7, 8, 63, 64, 1000, 8191, 8192, 8193, 16384, 25599];
        let mut bytes = vec![0u8; len + 64];
        for (k, &i) in words.iter().enumerate() {
            bytes[i * 8 + k % 8] = k as u8 + 1;
        }
        // The partial last word (its first 5 bytes): only its fifth set,
        // and a byte past the scanned range that must not be seen.
        bytes[len - 1] = 0x55;
        bytes[len] = 0x66;
        let mut want: Vec<(usize, u64)> = words
            .iter()
            .enumerate()
            .map(|(k, &i)| (i, u64::from(k as u8 + 1) << (8 * (k % 8))))
            .collect();
        want.push((len / 8, 0x55 << 32));
        let image = ImageMemory {
            base: 0x1000,
            bytes: bytes.clone(),
        };
        assert_eq!(scan(&Plain(bytes.clone()), 0, len as u64), want);
        assert_eq!(scan(&image, 0x1000, len as u64), want);
        assert!(image
            .nonzero_words(0x1000, len as u64 + 65, &mut |_, _| {})
            .is_err());
        assert!(image.nonzero_words(u64::MAX, 8, &mut |_, _| {}).is_err());
        assert!(
            scan(&image, 0x1000 + 8 * 2, 8 * 5).is_empty(),
            "words 2..7 are zero"
        );
    }

    #[test]
    fn words_and_comparisons_agree_with_reads_on_every_backend() {
        let mut bytes = vec![0u8; 64];
        bytes[16..24].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        let image = ImageMemory {
            base: 0x1000,
            bytes: bytes.clone(),
        };
        agrees(&Plain(bytes.clone()), 0, &bytes);
        agrees(&image, 0x1000, &bytes);
    }
}
