//! Guest RAM shared with the host.
//!
//! QEMU can back guest RAM with a file (`memory-backend-file`, `share=on`)
//! that the host maps too: the checker then reads guest physical memory
//! directly — a page walk in tens of microseconds instead of a `pmemsave`
//! of all RAM (about 100 ms for 128 MiB). The file lives in `/dev/shm` when
//! it has room (else in the session's private directory), is created mode
//! 0600, and loses its name as soon as the host has mapped it, so nothing
//! is left behind when QEMU ends. Read it with the guest stopped, or idle
//! after an answer (`protocol::ring`, rule 5), for a consistent picture.
//!
//! The host writes guest RAM in one place only: the shared-memory
//! transport's ring ([`crate::ring`]), which the guest reserves for it.
//!
//! The file is RAM as RAM: where the machine overlays something else on
//! guest physical memory — the firmware's ROM alias at `0xe0000..0x100000`
//! on microvm — the guest and `pmemsave` see the overlay and the file holds
//! the RAM underneath. Nothing the VMM manages lives there.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;

use oracle::{GuestMemory, MemoryError};

use crate::qemu::RamFile;

/// Why guest RAM could not be shared: what was being done, and the I/O
/// error.
#[derive(Debug, thiserror::Error)]
pub enum RamError {
    /// Creating guest RAM in `dir`: the I/O error.
    #[error("creating guest RAM in {}: {source}", .dir.display())]
    Create {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Sizing the guest RAM file: the I/O error.
    #[error("sizing the guest RAM file: {0}")]
    Size(#[source] std::io::Error),
    /// Mapping guest RAM: the I/O error.
    #[error("mapping guest RAM: {0}")]
    Map(#[source] std::io::Error),
}

/// Where shared RAM goes when it fits.
const SHM: &str = "/dev/shm";

/// The file QEMU backs guest RAM with, until the host maps it. It never
/// has a name (`O_TMPFILE`, or unlinked at once): QEMU opens it through
/// this process's `/proc/<pid>/fd/<n>`, so a runner killed by any signal
/// leaves nothing behind in `/dev/shm`.
#[derive(Debug)]
pub struct RamBacking {
    file: std::fs::File,
    path: std::path::PathBuf,
    size: u64,
}

impl RamBacking {
    /// An empty backing file of `size` bytes: in `/dev/shm` when it has
    /// room for all of it, else in `fallback_dir`.
    pub fn create(size: u64, fallback_dir: &Path) -> Result<RamBacking, RamError> {
        let dir = if free_bytes(Path::new(SHM)).is_some_and(|free| free >= size) {
            Path::new(SHM)
        } else {
            fallback_dir
        };
        let file = tempfile::tempfile_in(dir).map_err(|source| RamError::Create {
            dir: dir.to_path_buf(),
            source,
        })?;
        file.set_len(size).map_err(RamError::Size)?;
        let path = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd()).into();
        Ok(RamBacking { file, path, size })
    }

    /// Where QEMU opens the backing file: this process's descriptor of it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What QEMU's command line names to back guest RAM with this file.
    pub fn qemu_file(&self) -> RamFile {
        RamFile {
            path: self.path.clone(),
            size: self.size,
        }
    }

    /// Maps the file and closes it (QEMU, which opened it at start, keeps
    /// its own mapping). The mapping is writable for the ring's sake
    /// ([`crate::ring`]); everything else only reads it.
    pub fn map(self) -> Result<SharedRam, RamError> {
        let len = usize::try_from(self.size).expect("RAM size fits in usize");
        // A raw mapping (`MmapRaw`): shared, readable and writable, and
        // only reached through raw pointers, never through references.
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(&self.file)
            .map_err(RamError::Map)?;
        // The mapping keeps the memory; QEMU has its own.
        drop(self.file);
        Ok(SharedRam {
            map: Arc::new(Mapping { map }),
        })
    }
}

/// Free bytes of the file system at `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The mapping of QEMU's RAM file: unmapped when the last holder drops it.
#[derive(Debug)]
pub(crate) struct Mapping {
    map: memmap2::MmapRaw,
}

impl Mapping {
    /// The address of guest physical `phys..phys + len`, if it lies inside.
    pub(crate) fn at(&self, phys: u64, len: u64) -> Option<*mut u8> {
        let start = usize::try_from(phys).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        if end > self.map.len() {
            return None;
        }
        // SAFETY: start <= end <= len: inside the mapping.
        Some(unsafe { self.map.as_mut_ptr().add(start) })
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Guest physical memory `0..len`, mapped from QEMU's RAM file.
#[derive(Debug, Clone)]
pub struct SharedRam {
    map: Arc<Mapping>,
}

impl SharedRam {
    /// Bytes of guest RAM.
    pub fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// Whether the mapping is empty (never, for a booted guest).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The mapping, for the ring.
    pub(crate) fn mapping(&self) -> Arc<Mapping> {
        self.map.clone()
    }

    /// The address of guest physical `phys..phys + len`, if it lies
    /// inside the mapping.
    fn bounds(&self, phys: u64, len: usize) -> Result<*const u8, MemoryError> {
        let oob = MemoryError::OutOfBounds {
            phys,
            len: len as u64,
        };
        let start = usize::try_from(phys).map_err(|_| oob.clone())?;
        let end = start.checked_add(len).ok_or(oob.clone())?;
        if end > self.map.len() {
            return Err(oob);
        }
        // SAFETY: start <= end <= len: inside the mapping.
        Ok(unsafe { self.map.map.as_ptr().add(start) })
    }

    /// Copies guest physical `phys..phys + buf.len()` into `buf`.
    pub fn read_into(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let src = self.bounds(phys, buf.len())?;
        // A plain bulk copy: reads happen between requests, when the guest
        // writes nothing a check reads (`protocol::ring`, rule 5: only its
        // own stack and the ring's `waiting`), so nothing races with it. (Word-by-word volatile loads made the checker 2.5x
        // slower than reading a `pmemsave` copy.)
        // SAFETY: `src..src + buf.len()` lies inside the mapping
        // (`bounds`), and `buf` is a distinct allocation of the same length.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Reads the little-endian `u64` at `phys`.
    pub fn read_u64(&self, phys: u64) -> Result<u64, MemoryError> {
        let mut b = [0u8; 8];
        self.read_into(phys, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

impl GuestMemory for SharedRam {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.read_into(phys, buf)
    }

    /// One bulk copy straight into the words (x86 is little-endian: guest
    /// words are host words), without a bounce buffer.
    fn read_words(&self, phys: u64, words: &mut [u64]) -> Result<(), MemoryError> {
        let len = words.len() * 8;
        let src = self.bounds(phys, len)?;
        // SAFETY: `src..src + len` lies inside the mapping (`bounds`) and
        // `words` is a distinct allocation of `len` bytes; any bytes make
        // valid `u64`s. No race: see `read_into`.
        unsafe {
            std::ptr::copy_nonoverlapping(src, words.as_mut_ptr().cast::<u8>(), len);
        }
        for w in words.iter_mut() {
            *w = u64::from_le(*w);
        }
        Ok(())
    }

    /// Compares in place, without copying the bytes out first.
    fn holds(&self, phys: u64, want: &[u8]) -> Result<bool, MemoryError> {
        let src = self.bounds(phys, want.len())?;
        // SAFETY: `src..src + want.len()` lies inside the mapping
        // (`bounds`), which outlives this borrow (`self` holds it); nothing
        // writes it meanwhile: reads happen between requests, when the
        // guest writes nothing a check reads (see `read_into`), and the
        // host writes only the ring, never while a check reads.
        let now = unsafe { std::slice::from_raw_parts(src, want.len()) };
        Ok(now == want)
    }

    /// Two threads of one check may read at once (the check's data
    /// thread): a read races only with a write, and between requests the
    /// guest writes nothing a check reads (see `read_into`); the host's one
    /// writer, the ring, runs on
    /// the check's own thread, which waits for its threads to end before
    /// the check returns.
    fn as_sync(&self) -> Option<&(dyn GuestMemory + Sync)> {
        Some(self)
    }

    /// Scans in place, without copying the bytes out first (the
    /// frame-info table and the swap store's bookkeeping are megabytes of
    /// mostly zeros).
    fn nonzero_words(
        &self,
        phys: u64,
        len: u64,
        found: &mut dyn FnMut(usize, u64),
    ) -> Result<(), MemoryError> {
        let n = usize::try_from(len).map_err(|_| MemoryError::OutOfBounds { phys, len })?;
        let src = self.bounds(phys, n)?;
        // SAFETY: as in `holds`: `src..src + n` lies inside the mapping,
        // which outlives this borrow, and nothing writes it meanwhile.
        let now = unsafe { std::slice::from_raw_parts(src, n) };
        oracle::nonzero_words(now, found);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    #[test]
    fn maps_reads_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let backing = RamBacking::create(64 << 10, dir.path()).unwrap();
        let path = backing.path().to_owned();
        // Stand in for QEMU: write through another handle.
        let mut other = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert_eq!(backing.qemu_file().size, 65536);
        assert_eq!(backing.qemu_file().path, path);
        let ram = backing.map().unwrap();
        assert!(!path.exists(), "the name is gone once mapped");
        other.seek(SeekFrom::Start(0x1008)).unwrap();
        other
            .write_all(&0x1122_3344_5566_7788u64.to_le_bytes())
            .unwrap();
        assert_eq!(ram.read_u64(0x1008).unwrap(), 0x1122_3344_5566_7788);
        assert_eq!(ram.read_u64(0).unwrap(), 0);
        assert_eq!(ram.len(), 64 << 10);
        assert!(ram.read_u64((64 << 10) - 4).is_err());
        assert!(ram.read_u64(u64::MAX).is_err());
        let mut page = [0u8; 4096];
        GuestMemory::read(&ram, 0x1000, &mut page).unwrap();
        assert_eq!(page[8], 0x88);
        let mut words = [0u64; 2];
        ram.read_words(0x1000, &mut words).unwrap();
        assert_eq!(words, [0, 0x1122_3344_5566_7788]);
        assert!(ram.read_words((64 << 10) - 8, &mut words).is_err());
        assert!(ram.holds(0x1008, &page[8..16]).unwrap());
        assert!(!ram.holds(0x1008, &[0; 8]).unwrap());
        assert!(ram.holds(u64::MAX, &[0]).is_err());
        // Scanned in place: the one non-zero word, by index from `phys`.
        let mut found = Vec::new();
        ram.nonzero_words(0x800, 0x1000, &mut |i, w| found.push((i, w)))
            .unwrap();
        assert_eq!(found, [(0x101, 0x1122_3344_5566_7788)]);
        assert!(ram.nonzero_words(0x800, 64 << 10, &mut |_, _| {}).is_err());
        // Threads may read it at once: the data thread is on in campaigns.
        let sync = ram.as_sync().expect("shared RAM is Sync");
        assert!(sync.holds(0x1008, &page[8..16]).unwrap());
    }

    #[test]
    fn a_backing_that_cannot_be_created_says_where() {
        // Too big for /dev/shm, so it goes to the fallback, which is missing.
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let err = RamBacking::create(u64::MAX, &missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "creating guest RAM in {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }

    #[test]
    fn free_space_of_tmp() {
        assert!(free_bytes(Path::new("/tmp")).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(Path::new("/nonexistent")), None);
    }
}
