//! Frames the host holds (`AllocFrames`/`FreeFrames`), recorded in the
//! host-frame bitmap of the VMM's metadata so that `FreeFrames` can refuse a
//! frame the host does not hold.
//!
//! # Invariants
//! - Bit `n` of the host-frame bitmap is set exactly while the host holds
//!   frame `n`; every such frame is used in the frame allocator, and the
//!   VMM's `host_frames` counter is the number of set bits.
//! - [`HostFrames`] holds only where the bitmap lies; its operations get
//!   the memory passed in. The [`Vmm`] methods take and free the frames in
//!   the allocator and keep the counter beside the bitmap.

use protocol::{FrameRun, MAX_ALLOC_FRAMES};
use x86_64::structures::paging::PhysFrame;

use crate::backend::PhysMemory;
use crate::bits::Bits;
use crate::errors::{AllocFramesError, FreeFramesError, Invalid};
use crate::frame_alloc::FrameAllocator;
use crate::frames::{frame_at, frame_number};
use crate::vmm::{Meta, Vmm};

/// The host-frame bitmap (bit `n`: the host holds frame `n`), one bit per
/// managed frame.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostFrames {
    bits: Bits,
}

impl HostFrames {
    /// Whether the host holds frame number `n`.
    fn holds<M: PhysMemory>(&self, mem: &mut M, n: u64) -> bool {
        n < self.bits.len && self.bits.get(mem, n)
    }

    /// Records that the host holds `frame`.
    fn give<M: PhysMemory>(&self, mem: &mut M, frame: PhysFrame) {
        self.bits.set(mem, frame_number(frame), true);
    }

    /// Takes back frames `first..first + count` (inside the map): the host
    /// must hold every one, the lowest it does not is the error.
    fn take_back<M: PhysMemory>(
        &self,
        mem: &mut M,
        first: u64,
        count: u64,
    ) -> Result<(), FreeFramesError> {
        if let Some(n) = self.bits.find(mem, first, first + count, false) {
            return Err(FreeFramesError::NotOwned { frame: n * 4096 });
        }
        self.bits.set_range(mem, first, first + count, false);
        Ok(())
    }

    /// Takes back every frame, calling `f` with each one's number.
    fn take_back_all<M: PhysMemory>(&self, mem: &mut M, mut f: impl FnMut(u64)) {
        self.bits.for_each_set(mem, 0, self.bits.len, |_, n| f(n));
        self.bits.clear_all(mem);
    }
}

impl<M: PhysMemory, A: FrameAllocator> Vmm<M, A> {
    /// The host-frame bitmap, if the VMM has its metadata.
    fn host_frames(&self) -> Option<HostFrames> {
        self.meta.map(|m: Meta| HostFrames {
            bits: Bits {
                base: frame_number(m.base),
                len: self.frames.total_frames(),
            },
        })
    }

    /// Whether the host holds frame number `n`.
    pub fn host_holds(&mut self, n: u64) -> bool {
        self.host_frames()
            .is_some_and(|h| h.holds(&mut self.mem, n))
    }

    fn give_host(&mut self, frame: PhysFrame) {
        if let Some(h) = self.host_frames() {
            h.give(&mut self.mem, frame);
            self.counters.host_frame(true);
        }
    }

    /// Allocates `count` frames for the host (one run with `contiguous`),
    /// answered through `out` as runs in allocation order. The kernel-only
    /// check is the caller's.
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn alloc_frames(
        &mut self,
        count: u64,
        contiguous: bool,
        mut out: impl FnMut(FrameRun),
    ) -> Result<(), AllocFramesError> {
        if count == 0 {
            return Err(Invalid::ZeroCount.into());
        }
        if count > MAX_ALLOC_FRAMES {
            return Err(Invalid::TooLarge.into());
        }
        if self.meta.is_none() {
            return Err(AllocFramesError::OutOfMemory);
        }
        self.reserve(count)?;
        if contiguous {
            let start = self
                .frames
                .alloc_contiguous(count)
                .ok_or(AllocFramesError::OutOfMemory)?;
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
    #[inline(never)] // a request's entry point: see `crate::dispatch`
    pub fn free_frames(&mut self, frame: u64, count: u64) -> Result<(), FreeFramesError> {
        if count == 0 {
            return Err(Invalid::ZeroCount.into());
        }
        if count > MAX_ALLOC_FRAMES {
            return Err(Invalid::TooLarge.into());
        }
        if frame % 4096 != 0 {
            return Err(Invalid::Misaligned.into());
        }
        let end = count
            .checked_mul(4096)
            .and_then(|len| frame.checked_add(len))
            .ok_or(Invalid::Overflow)?;
        if end > self.frames.total_frames().saturating_mul(4096) {
            return Err(FreeFramesError::OutOfRange);
        }
        let first = frame / 4096;
        let host = self
            .host_frames()
            .ok_or(FreeFramesError::NotOwned { frame })?;
        host.take_back(&mut self.mem, first, count)?;
        for n in first..first + count {
            let freed = self.frames.free(frame_at(n));
            debug_assert!(freed.is_ok(), "host frame {n} was not in use");
            self.counters.host_frame(false);
        }
        Ok(())
    }

    /// Frees every frame the host holds (a scan of the host-frame bitmap,
    /// a word at a time; nothing when the host holds none).
    pub(crate) fn free_all_host_frames(&mut self) {
        let Some(host) = self.host_frames() else {
            return;
        };
        if self.counters.host_frames() == 0 {
            return;
        }
        let frames = &mut self.frames;
        host.take_back_all(&mut self.mem, |n| {
            let freed = frames.free(frame_at(n));
            debug_assert!(freed.is_ok(), "host frame {n} was not in use");
        });
        self.counters.host_frames_cleared();
    }
}
