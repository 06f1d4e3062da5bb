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

/// A dump of guest RAM from physical 0 (what QEMU's `pmemsave` writes).
impl GuestMemory for [u8] {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        read_from(self, 0, phys, buf)
    }

    fn read_words(&self, phys: u64, words: &mut [u64]) -> Result<(), MemoryError> {
        words_from(self, 0, phys, words)
    }

    fn holds(&self, phys: u64, want: &[u8]) -> Result<bool, MemoryError> {
        Ok(slice_of(self, 0, phys, want.len())? == want)
    }
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
        agrees(&bytes[..], 0, &bytes);
    }
}
