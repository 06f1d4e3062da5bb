//! Frames the host holds (`AllocFrames`/`FreeFrames`), recorded in the
//! host-frame bitmap of the VMM's metadata so that `FreeFrames` can refuse a
//! frame the host does not hold.
//!
//! # Invariants
//! - Bit `n` of the host-frame bitmap is set exactly while the host holds
//!   frame `n`; every such frame is used in the frame allocator, and
//!   [`HostFrames::count`] is the number of set bits.
//! - [`HostFrames`] is the only writer of its bitmap and its count, and
//!   changes them only together with the allocator (taking a frame from it
//!   when the host gets one, giving it back when the host frees it, or
//!   forgetting them all when `Reset` returns the allocator to its boot
//!   point). Its
//!   operations get the memory and the allocator passed in; the VMM only
//!   reserves the frames first (the pressure path) and answers the stats.

use protocol::{FrameRun, MAX_ALLOC_FRAMES};
use x86_64::structures::paging::PhysFrame;

use crate::backend::PhysMemory;
use crate::bits::Bits;
use crate::errors::{AllocFramesError, FreeFramesError, Invalid};
use crate::extent::Extent;
use crate::frame_alloc::FrameAllocator;
use crate::frames::{frame_at, frame_number};

/// The host's frames: the bitmap (bit `n`: the host holds frame `n`), one
/// bit per managed frame, and how many bits are set.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostFrames {
    bits: Bits,
    count: u64,
    /// The bits set since the last [`HostFrames::forget_all`].
    held: Extent,
}

/// Checks an `AllocFrames` of `count` frames before anything changes;
/// `has_map` says whether the VMM has its metadata (without it the host
/// can get no frame).
pub(crate) fn check_alloc(count: u64, has_map: bool) -> Result<(), AllocFramesError> {
    if count == 0 {
        return Err(Invalid::ZeroCount.into());
    }
    if count > MAX_ALLOC_FRAMES {
        return Err(Invalid::TooLarge.into());
    }
    if !has_map {
        return Err(AllocFramesError::OutOfMemory);
    }
    Ok(())
}

/// `FreeFrames` of `count` frames from physical address `frame`, over
/// `host` (`None`: the VMM has no metadata, so the host holds nothing):
/// the host must hold every one. The kernel-only check is the caller's.
pub(crate) fn free_frames<M: PhysMemory, A: FrameAllocator>(
    host: Option<&mut HostFrames>,
    mem: &mut M,
    frames: &mut A,
    frame: u64,
    count: u64,
) -> Result<(), FreeFramesError> {
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
    if end > frames.total_frames().saturating_mul(4096) {
        return Err(FreeFramesError::OutOfRange);
    }
    let host = host.ok_or(FreeFramesError::NotOwned { frame })?;
    host.take_back(mem, frames, frame / 4096, count)
}

impl HostFrames {
    /// The bitmap at frame number `base`, for `frames` managed frames, with
    /// no frame held (the caller zeroed it).
    pub fn at(base: u64, frames: u64) -> Self {
        HostFrames {
            bits: Bits { base, len: frames },
            count: 0,
            held: Extent::default(),
        }
    }

    /// Frames the host holds.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Whether the host holds frame number `n`.
    pub fn holds<M: PhysMemory>(&self, mem: &mut M, n: u64) -> bool {
        n < self.bits.len && self.bits.get(mem, n)
    }

    /// Records that the host holds `frame`.
    fn give<M: PhysMemory>(&mut self, mem: &mut M, frame: PhysFrame) {
        let n = frame_number(frame);
        self.bits.set(mem, n, true);
        self.held.add(n, n + 1);
        self.count += 1;
    }

    /// Takes `count` frames from `frames` for the host (one run with
    /// `contiguous`), answered through `out` as runs in allocation order.
    /// The caller checked the request ([`check_alloc`]) and made `count`
    /// frames free.
    pub fn alloc<M: PhysMemory, A: FrameAllocator>(
        &mut self,
        mem: &mut M,
        frames: &mut A,
        count: u64,
        contiguous: bool,
        mut out: impl FnMut(FrameRun),
    ) -> Result<(), AllocFramesError> {
        if contiguous {
            let start = frames
                .alloc_contiguous(count)
                .ok_or(AllocFramesError::OutOfMemory)?;
            for n in 0..count {
                self.give(mem, frame_at(frame_number(start) + n));
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
            let Some(f) = frames.alloc() else { break };
            self.give(mem, f);
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

    /// Takes back frames `first..first + count` (inside the map) and frees
    /// them in `frames`: the host must hold every one, the lowest it does
    /// not is the error (and nothing changes).
    fn take_back<M: PhysMemory, A: FrameAllocator>(
        &mut self,
        mem: &mut M,
        frames: &mut A,
        first: u64,
        count: u64,
    ) -> Result<(), FreeFramesError> {
        if let Some(n) = self.bits.find(mem, first, first + count, false) {
            return Err(FreeFramesError::NotOwned { frame: n * 4096 });
        }
        self.bits.set_range(mem, first, first + count, false);
        for n in first..first + count {
            let freed = frames.free(frame_at(n));
            debug_assert!(freed.is_ok(), "host frame {n} was not in use");
            self.count -= 1;
        }
        Ok(())
    }

    /// Forgets every frame the host holds (`Reset`, whose frame allocator
    /// takes them back on its return to the boot point): clears the bits
    /// set since the last time (nothing when the host holds none).
    pub fn forget_all<M: PhysMemory>(&mut self, mem: &mut M) {
        let held = self.held.take();
        if self.count > 0 {
            self.bits.set_range(mem, held.start, held.end, false);
        }
        self.count = 0;
    }
}
