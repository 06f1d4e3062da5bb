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
}

/// A dump of guest RAM from physical 0 (what QEMU's `pmemsave` writes).
impl GuestMemory for [u8] {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        read_from(self, 0, phys, buf)
    }
}

/// Fills `buf` from `bytes`, which hold physical `base..`.
fn read_from(bytes: &[u8], base: u64, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
    let oob = MemoryError::OutOfBounds {
        phys,
        len: buf.len() as u64,
    };
    let start = phys.checked_sub(base).ok_or(oob.clone())?;
    let start = usize::try_from(start).map_err(|_| oob.clone())?;
    let src = start
        .checked_add(buf.len())
        .and_then(|end| bytes.get(start..end))
        .ok_or(oob)?;
    buf.copy_from_slice(src);
    Ok(())
}
