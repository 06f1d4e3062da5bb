//! Reading a booted guest's coverage counters from its RAM
//! (`protocol::formats`, "Coverage counters").

use oracle::GuestMemory;
use protocol::CoverageInfo;

use super::edges::{EdgeHits, KernelId};
use super::CoverageError;

/// The counters of one booted guest: what they held at the last read, and
/// the hits counted since the last [`CounterReader::take`].
///
/// The guest never clears its counters, not even at `Reset`: the reader
/// counts the change since its own last read (modulo 256), so a `Reset`
/// needs nothing, and a new boot needs a new reader (its counters start at
/// zero again).
#[derive(Clone, Debug)]
pub struct CounterReader {
    info: CoverageInfo,
    kernel: KernelId,
    last: Vec<u8>,
    now: Vec<u8>,
    pending: Vec<u64>,
}

impl CounterReader {
    /// The reader of a guest just booted (its counters were zero when QEMU
    /// loaded the image: boot's own edges count in the first read), whose
    /// RAM is `ram` and layout `info`. Reads the PC table once, for the
    /// kernel's id.
    pub fn new(info: CoverageInfo, ram: &dyn GuestMemory) -> Result<CounterReader, CoverageError> {
        let edges = info.edges();
        let pcs_len = info.pcs.end.saturating_sub(info.pcs.start);
        if edges == 0 || pcs_len != edges * 16 {
            return Err(CoverageError::Elf {
                path: "(the guest's Hello)".into(),
                why: format!("{edges} counters but a PC table of {pcs_len} bytes"),
            });
        }
        let mut pcs = vec![0u8; pcs_len as usize];
        ram.read(info.pcs.start, &mut pcs)?;
        let n = edges as usize;
        Ok(CounterReader {
            info,
            kernel: KernelId::of_pc_table(&pcs),
            last: vec![0; n],
            now: vec![0; n],
            pending: vec![0; n],
        })
    }

    /// The kernel build the counters belong to.
    pub fn kernel(&self) -> KernelId {
        self.kernel
    }

    /// Reads the counters and adds what changed since the last read to the
    /// pending hits. Cheap (one copy of a few KiB); call it often enough
    /// that no edge of interest runs 256 times between two calls.
    pub fn poll(&mut self, ram: &dyn GuestMemory) -> Result<(), CoverageError> {
        ram.read(self.info.counters.start, &mut self.now)?;
        for ((p, &now), last) in self.pending.iter_mut().zip(&self.now).zip(&mut self.last) {
            *p += u64::from(now.wrapping_sub(*last));
            *last = now;
        }
        Ok(())
    }

    /// Reads the counters and takes every hit since the last `take`.
    pub fn take(&mut self, ram: &dyn GuestMemory) -> Result<EdgeHits, CoverageError> {
        self.poll(ram)?;
        let hits = std::mem::replace(&mut self.pending, vec![0; self.last.len()]);
        Ok(EdgeHits::from_hits(self.kernel, hits))
    }
}
