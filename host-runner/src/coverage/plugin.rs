//! Block counts from QEMU: under TCG, a kernel built without
//! SanitizerCoverage runs without counters of its own, and a QEMU plugin
//! (`host-runner/qemu-plugin`) counts how often each of its block leaders
//! ([`super::blocks`]) runs, in a file the host maps.
//!
//! Measured on the default campaign's operations: the guest's counters
//! cost 18–31 % of its time under TCG (a softmmu load and store per edge),
//! QEMU's count nothing measurable (one host add per leader, and per
//! iteration of a `rep` string instruction, a leader of its own).
//!
//! Per guest: the table (`blocks.table`, the kernel's block table) and the
//! counts (`blocks.counts`, one native `u64` per leader, zero at boot) are
//! files in its private directory, passed to the plugin as arguments.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapRaw;

use super::CoverageError;

/// How guests of a configuration get their coverage from QEMU: the plugin
/// and the kernel's block table.
#[derive(Clone, Debug)]
pub struct BlockCounter {
    /// The plugin's shared library.
    pub plugin: PathBuf,
    /// The kernel's block table ([`super::blocks::block_table`]).
    pub table: Arc<Vec<u8>>,
}

/// A guest's files for the plugin, before QEMU starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginFiles {
    /// The plugin's shared library (QEMU's `-plugin file=`).
    pub plugin: PathBuf,
    /// The kernel's block table, written for this guest.
    pub table: PathBuf,
    /// The counts, zeroed, one `u64` per leader: the plugin adds to them.
    pub counts: PathBuf,
}

impl BlockCounter {
    /// The counter for the kernel ELF `elf` (read from `kernel`, a kernel
    /// without SanitizerCoverage) with the plugin at `plugin`.
    pub fn new(plugin: &Path, kernel: &Path, elf: &[u8]) -> Result<BlockCounter, CoverageError> {
        let table = super::blocks::block_table(elf).map_err(|why| CoverageError::Elf {
            path: kernel.display().to_string(),
            why,
        })?;
        Ok(BlockCounter {
            plugin: plugin.to_owned(),
            table: Arc::new(table),
        })
    }

    /// Number of leaders (counters).
    pub fn leaders(&self) -> usize {
        self.table.len() / 16
    }

    /// Writes the table and zeroed counts into `dir` (a guest's private
    /// directory) and answers the plugin's arguments.
    pub fn prepare(&self, dir: &Path) -> Result<PluginFiles, CoverageError> {
        let io = |what: &str, path: &Path, source| CoverageError::Io {
            what: format!("{what} {}", path.display()),
            source,
        };
        let table = dir.join("blocks.table");
        std::fs::write(&table, &*self.table).map_err(|e| io("writing", &table, e))?;
        let counts = dir.join("blocks.counts");
        let file = File::create(&counts).map_err(|e| io("creating", &counts, e))?;
        file.set_len(self.leaders() as u64 * 8)
            .map_err(|e| io("sizing", &counts, e))?;
        Ok(PluginFiles {
            plugin: self.plugin.clone(),
            table,
            counts,
        })
    }
}

/// The counts of a booted guest, mapped from the file the plugin adds to.
#[derive(Debug)]
pub struct BlockCounts {
    map: MmapRaw,
    leaders: usize,
}

impl BlockCounts {
    /// Maps the counts file of `files` (after the guest booted: the plugin
    /// maps it when QEMU starts).
    pub fn map(files: &PluginFiles, leaders: usize) -> Result<BlockCounts, CoverageError> {
        let io = |source| CoverageError::Io {
            what: format!("mapping {}", files.counts.display()),
            source,
        };
        let file = File::options()
            .read(true)
            .write(true)
            .open(&files.counts)
            .map_err(io)?;
        let map = MmapRaw::map_raw(&file).map_err(io)?;
        if map.len() != leaders * 8 {
            return Err(CoverageError::Io {
                what: format!("mapping {}", files.counts.display()),
                source: std::io::Error::other(format!(
                    "{} bytes for {leaders} counters",
                    map.len()
                )),
            });
        }
        Ok(BlockCounts { map, leaders })
    }

    /// Number of counters.
    pub fn len(&self) -> usize {
        self.leaders
    }

    /// Whether there are no counters (never, for a kernel's table).
    pub fn is_empty(&self) -> bool {
        self.leaders == 0
    }

    /// Copies every count into `out` (`len()` long).
    pub fn read(&self, out: &mut [u64]) {
        let base = self.map.as_ptr().cast::<u64>();
        for (i, o) in out.iter_mut().enumerate().take(self.leaders) {
            // SAFETY: the mapping is `leaders * 8` bytes (checked in `map`)
            // and page-aligned, so `base + i` for `i < leaders` is an
            // aligned `u64` inside it; it lives as long as `self`. QEMU's
            // plugin adds to it meanwhile: a volatile aligned load sees
            // either count, never a torn one (x86-64).
            *o = unsafe { base.add(i).read_volatile() };
        }
    }
}

/// The block counts of one booted guest: what they held at the last read
/// and the hits since the last [`BlockReader::take`] (the twin of
/// [`super::CounterReader`] for counts QEMU keeps: 64 bits, no wrap).
#[derive(Debug)]
pub struct BlockReader {
    counts: Arc<BlockCounts>,
    kernel: super::KernelId,
    last: Vec<u64>,
    now: Vec<u64>,
    pending: Vec<u64>,
}

impl BlockReader {
    /// The reader of a guest just booted whose counts are `counts`, for a
    /// kernel whose block table is `table`.
    pub fn new(counts: Arc<BlockCounts>, table: &[u8]) -> BlockReader {
        let n = counts.len();
        BlockReader {
            counts,
            kernel: super::KernelId::of_pc_table(table),
            last: vec![0; n],
            now: vec![0; n],
            pending: vec![0; n],
        }
    }

    /// Reads the counts and adds what changed since the last read to the
    /// pending hits.
    pub fn poll(&mut self) {
        self.counts.read(&mut self.now);
        for ((p, &now), last) in self.pending.iter_mut().zip(&self.now).zip(&mut self.last) {
            *p += now.wrapping_sub(*last);
            *last = now;
        }
    }

    /// Reads the counts and takes every hit since the last `take`.
    pub fn take(&mut self) -> super::EdgeHits {
        self.poll();
        let hits = std::mem::replace(&mut self.pending, vec![0; self.last.len()]);
        super::EdgeHits::from_hits(self.kernel, hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A counter of 3 leaders over a scratch directory, its files made.
    fn counter(dir: &Path) -> (BlockCounter, PluginFiles) {
        let mut table = Vec::new();
        for (pc, entry) in [(0x1000u64, 1u64), (0x1005, 0), (0x1009, 0)] {
            table.extend_from_slice(&pc.to_le_bytes());
            table.extend_from_slice(&entry.to_le_bytes());
        }
        let counter = BlockCounter {
            plugin: PathBuf::from("/nowhere/plugin.so"),
            table: Arc::new(table),
        };
        let files = counter.prepare(dir).unwrap();
        (counter, files)
    }

    #[test]
    fn prepare_writes_the_table_and_zeroed_counts() {
        let dir = tempfile::tempdir().unwrap();
        let (counter, files) = counter(dir.path());
        assert_eq!(std::fs::read(&files.table).unwrap(), *counter.table);
        assert_eq!(std::fs::read(&files.counts).unwrap(), vec![0; 24]);
        assert_eq!(files.plugin, Path::new("/nowhere/plugin.so"));
    }

    #[test]
    fn the_reader_counts_what_the_plugin_added_since_its_last_take() {
        let dir = tempfile::tempdir().unwrap();
        let (counter, files) = counter(dir.path());
        let counts = Arc::new(BlockCounts::map(&files, counter.leaders()).unwrap());
        let mut reader = BlockReader::new(counts.clone(), &counter.table);
        // The plugin's adds, through a second mapping as QEMU's would be.
        let write = |values: [u64; 3]| {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
            std::fs::write(&files.counts, bytes).unwrap();
        };
        write([2, 0, 7]);
        reader.poll();
        write([5, 1, 7]);
        let hits = reader.take();
        assert_eq!(hits.all_hits(), [5, 1, 7]);
        assert_eq!(
            hits.kernel,
            super::super::KernelId::of_pc_table(&counter.table)
        );
        write([6, 1, 7]);
        assert_eq!(reader.take().all_hits(), [1, 0, 0]);
    }

    #[test]
    fn a_counts_file_of_another_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (counter, files) = counter(dir.path());
        assert!(BlockCounts::map(&files, counter.leaders() + 1).is_err());
    }
}
