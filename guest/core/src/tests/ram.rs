//! The simulated machine's RAM as the oracle reads guest memory
//! ([`oracle::GuestMemory`]), so that the oracle's walker and memory
//! checker judge the core's tables and frames as they judge the real
//! guest's.

use std::cell::RefCell;

use oracle::{GuestMemory, MemoryError};
use protocol::{Hello, PhysRange};

use crate::conv::usize_of;
use crate::frame_alloc::FrameAllocator as _;
use crate::machine::Machine as _;
use crate::sim::{SimMachine, SimMemory};

use super::frame;

/// The simulated RAM, read-only: frames `0..frames` at their physical
/// addresses, then the frame bitmap (which the simulation keeps outside
/// its RAM) at `frames * 4096`, where [`checked_hello`] names it.
pub(crate) struct SimRam<'a> {
    /// Reading a frame may switch its view (table or bytes), never its bits.
    mem: RefCell<&'a mut SimMemory>,
    frames: u64,
    bitmap: Vec<u8>,
}

impl<'a> SimRam<'a> {
    pub(crate) fn of(m: &'a mut SimMachine) -> SimRam<'a> {
        let frames = m.vmm.frames().total_frames();
        let bitmap = m.vmm.frames().bitmap().to_vec();
        SimRam {
            mem: RefCell::new(m.vmm.mem()),
            frames,
            bitmap,
        }
    }
}

impl GuestMemory for SimRam<'_> {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        let len = buf.len() as u64;
        let oob = MemoryError::OutOfBounds { phys, len };
        let ram = self.frames * 4096;
        let end = phys.checked_add(len).ok_or(oob.clone())?;
        if phys >= ram {
            let from = usize::try_from(phys - ram).map_err(|_| oob.clone())?;
            let src = self.bitmap.get(from..from + buf.len()).ok_or(oob)?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        if end > ram {
            return Err(oob);
        }
        let mut mem = self.mem.borrow_mut();
        let mut done = 0;
        while done < buf.len() {
            let at = phys + done as u64;
            let off = usize_of(at % 4096);
            let n = (4096 - off).min(buf.len() - done);
            let bytes = mem.cpu_bytes(frame(at / 4096));
            buf[done..done + n].copy_from_slice(&bytes[off..off + n]);
            done += n;
        }
        Ok(())
    }
}

/// The machine's `Hello`, with the frame bitmap where [`SimRam`] shows it.
pub(crate) fn checked_hello(m: &mut SimMachine) -> Hello {
    let start = m.vmm.frames().total_frames() * 4096;
    let len = m.vmm.frames().bitmap().len() as u64;
    Hello {
        frame_bitmap: PhysRange {
            start,
            end: start + len,
        },
        ..m.hello()
    }
}
