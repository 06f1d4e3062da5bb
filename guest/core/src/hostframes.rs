//! Frames the host holds (`AllocFrames`/`FreeFrames`), recorded in the
//! host-frame bitmap of the VMM's metadata so that `FreeFrames` can refuse a
//! frame the host does not hold.

use protocol::{Error, FrameRun, MAX_ALLOC_FRAMES};
use x86_64::structures::paging::PhysFrame;

use crate::backend::PhysMemory;
use crate::frames::{frame_at, frame_number};
use crate::vmm::{Meta, Vmm};

impl<M: PhysMemory> Vmm<M> {
    /// Bit `n` of the bitmap starting at frame number `base` of the
    /// metadata.
    pub(crate) fn meta_bit(&mut self, base: u64, n: u64) -> bool {
        let f = frame_at(base + n / (4096 * 8));
        let byte = ((n / 8) % 4096) as usize;
        self.mem.frame_bytes(f)[byte] & (1 << (n % 8)) != 0
    }

    /// Byte `k` of the bitmap starting at frame number `base`.
    pub(crate) fn meta_byte(&mut self, base: u64, k: u64) -> u8 {
        let f = frame_at(base + k / 4096);
        self.mem.frame_bytes(f)[(k % 4096) as usize]
    }

    /// Sets bit `n` of the bitmap starting at frame number `base`.
    pub(crate) fn set_meta_bit(&mut self, base: u64, n: u64, v: bool) {
        let f = frame_at(base + n / (4096 * 8));
        let byte = ((n / 8) % 4096) as usize;
        let b = &mut self.mem.frame_bytes(f)[byte];
        if v {
            *b |= 1 << (n % 8);
        } else {
            *b &= !(1 << (n % 8));
        }
    }

    fn host_base(&self) -> Option<u64> {
        self.meta.map(|m: Meta| frame_number(m.base))
    }

    /// Whether the host holds frame number `n`.
    pub fn host_holds(&mut self, n: u64) -> bool {
        match self.host_base() {
            Some(b) if n < self.frames.total_frames() => self.meta_bit(b, n),
            _ => false,
        }
    }

    fn give_host(&mut self, frame: PhysFrame) {
        if let Some(b) = self.host_base() {
            self.set_meta_bit(b, frame_number(frame), true);
            self.counters.host_frames += 1;
        }
    }

    /// Allocates `count` frames for the host (one run with `contiguous`),
    /// answered through `out` as runs in allocation order. The kernel-only
    /// check is the caller's.
    pub fn alloc_frames(
        &mut self,
        count: u64,
        contiguous: bool,
        mut out: impl FnMut(FrameRun),
    ) -> Result<(), Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        if count > MAX_ALLOC_FRAMES {
            return Err(Error::TooLarge);
        }
        if self.meta.is_none() || !self.reserve(count) {
            return Err(Error::OutOfMemory);
        }
        if contiguous {
            let start = self
                .frames
                .alloc_contiguous(count)
                .ok_or(Error::OutOfMemory)?;
            for n in 0..count {
                self.give_host(frame_at(frame_number(start) + n));
            }
            out(FrameRun {
                start: start.start_address().as_u64(),
                count,
            });
            return Ok(());
        }
        let mut run: Option<FrameRun> = None;
        for _ in 0..count {
            // Cannot fail: `count` frames were free.
            let Some(f) = self.frames.alloc() else { break };
            self.give_host(f);
            let addr = f.start_address().as_u64();
            match &mut run {
                Some(r) if r.start + r.count * 4096 == addr => r.count += 1,
                _ => {
                    if let Some(r) = run.take() {
                        out(r);
                    }
                    run = Some(FrameRun {
                        start: addr,
                        count: 1,
                    });
                }
            }
        }
        if let Some(r) = run {
            out(r);
        }
        Ok(())
    }

    /// Frees `count` frames from physical address `frame`; the host must
    /// hold every one. The kernel-only check is the caller's.
    pub fn free_frames(&mut self, frame: u64, count: u64) -> Result<(), Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        if count > MAX_ALLOC_FRAMES {
            return Err(Error::TooLarge);
        }
        if frame % 4096 != 0 {
            return Err(Error::Misaligned);
        }
        let end = count
            .checked_mul(4096)
            .and_then(|len| frame.checked_add(len))
            .ok_or(Error::Overflow)?;
        if end > self.frames.total_frames().saturating_mul(4096) {
            return Err(Error::OutOfRange);
        }
        let first = frame / 4096;
        for n in first..first + count {
            if !self.host_holds(n) {
                return Err(Error::NotOwned { frame: n * 4096 });
            }
        }
        let base = self.host_base().ok_or(Error::NotOwned { frame })?;
        for n in first..first + count {
            self.set_meta_bit(base, n, false);
            let freed = self.frames.free(frame_at(n));
            debug_assert!(freed.is_ok(), "host frame {n} was not in use");
            self.counters.host_frames -= 1;
        }
        Ok(())
    }

    /// Frees every frame the host holds.
    pub(crate) fn free_all_host_frames(&mut self) {
        let Some(m) = self.meta else { return };
        let base = frame_number(m.base);
        let total = self.frames.total_frames();
        for i in 0..m.host_frames {
            let f = frame_at(base + i);
            let bytes = *self.mem.frame_bytes(f);
            for (j, b) in bytes.iter().enumerate() {
                if *b == 0 {
                    continue;
                }
                for k in 0..8 {
                    let n = i * 4096 * 8 + j as u64 * 8 + k;
                    if b & (1 << k) != 0 && n < total {
                        let freed = self.frames.free(frame_at(n));
                        debug_assert!(freed.is_ok(), "host frame {n} was not in use");
                    }
                }
            }
            self.mem.frame_bytes(f).fill(0);
        }
        self.counters.host_frames = 0;
    }
}
