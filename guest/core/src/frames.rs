//! The physical frame allocator: one bit per frame in guest RAM, in the
//! format of `protocol::formats` (bit `n` = byte `n / 8`, bit `n % 8`, 1 =
//! used; bits past the last frame are 1). The one implementation of
//! [`FrameAllocator`].
//!
//! # Invariants
//! - `free` is the number of zero bits below `total`; every bit at or past
//!   `total` (to the end of the bitmap) is 1, so a search never answers a
//!   frame that is not managed.
//! - A frame's bit is 1 exactly while it is used: [`BitmapFrameAllocator::new`]
//!   sets every frame not wholly inside RAM, or touching a reservation (the
//!   kernel's image, its tables, the ring, the bitmap, its boot copy and
//!   its zero record), and nothing ever clears those bits again (`free`
//!   refuses a frame whose bit is 0).
//! - `boot_free <= total`; `next <= total` (the next-fit hint of
//!   [`FrameAllocator::alloc`], 0 after a return to the boot point).
//! - `boot` holds the bitmap as it was at the boot point; the two differ
//!   only inside the bytes `dirty` (every bit a `take` or `free` changed
//!   since lies there), so a return to the boot point copies those back and
//!   costs what changed, not the RAM size.
//! - The bitmap is the one the kernel names in `Hello::frame_bitmap`: the
//!   host reads it as it lies in memory, so its format is the protocol's.
//! - `zero` (`crate::zeroes`) knows a frame to hold only zeros only
//!   under that module's rules: `alloc`, `alloc_high`, `alloc_contiguous`
//!   and `claim` forget the frames they take, the `*_zeroed` allocations
//!   zero them unless known and know them; `free` keeps what is known (the
//!   VMM forgets a written page's frame before it lets go of it), and
//!   [`FrameAllocator::back_to_boot_point`] keeps it for the frames it
//!   makes free (forgets it for those it makes used).

use protocol::PhysRange;
use x86_64::structures::paging::PhysFrame;
use x86_64::PhysAddr;

use crate::conv::usize_of;
use crate::extent::Extent;
use crate::frame_alloc::{ClaimError, FrameAllocator, FreeError};
use crate::pte::ADDR_MASK;
use crate::zeroes::Zeroes;

/// Single and contiguous frame allocation over a bitmap.
#[derive(Debug)]
pub struct BitmapFrameAllocator {
    bitmap: &'static mut [u8],
    /// The bitmap at the boot point, as long as `bitmap`.
    boot: &'static mut [u8],
    /// The bytes of `bitmap` that may differ from `boot`.
    dirty: Extent,
    total: u64,
    free: u64,
    boot_free: u64,
    /// Next-fit hint for single frames.
    next: u64,
    /// The frames known to hold only zeros (none without a record).
    zero: Zeroes,
    /// Test support: allocations left before every allocation fails.
    #[cfg(test)]
    pub(crate) fail_after: Option<u64>,
}

/// The frame whose number is `n`.
pub(crate) fn frame_at(n: u64) -> PhysFrame {
    PhysFrame::containing_address(PhysAddr::new(n.wrapping_mul(4096) & ADDR_MASK))
}

/// The number of `frame`.
pub(crate) fn frame_number(frame: PhysFrame) -> u64 {
    frame.start_address().as_u64() / 4096
}

/// Bit `n` of a bitmap (out of range reads as 1).
pub(crate) fn bit(map: &[u8], n: u64) -> bool {
    usize::try_from(n / 8)
        .ok()
        .and_then(|i| map.get(i))
        .is_none_or(|b| b & (1 << (n % 8)) != 0)
}

/// Sets bit `n` of a bitmap to `v` (out of range: no effect).
pub(crate) fn set_bit(map: &mut [u8], n: u64, v: bool) {
    if let Some(b) = usize::try_from(n / 8).ok().and_then(|i| map.get_mut(i)) {
        if v {
            *b |= 1 << (n % 8);
        } else {
            *b &= !(1 << (n % 8));
        }
    }
}

impl BitmapFrameAllocator {
    /// An allocator over `bitmap` for `total_frames` frames: every frame is
    /// marked used except those wholly inside a `ram` range and touching no
    /// `reserved` range; the bits past `total_frames` in the last byte are 1.
    /// `total_frames` is cut to what `bitmap` can hold. `boot` keeps the
    /// bitmap of the boot point ([`FrameAllocator::set_boot_point`]): it is
    /// cut to the bitmap's length, or the bitmap to its.
    pub fn new(
        bitmap: &'static mut [u8],
        boot: &'static mut [u8],
        total_frames: u64,
        ram: &[PhysRange],
        reserved: &[PhysRange],
    ) -> Self {
        let len = bitmap.len().min(boot.len());
        let (bitmap, _) = bitmap.split_at_mut(len);
        let (boot, _) = boot.split_at_mut(len);
        let cap = u64::try_from(bitmap.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(8);
        let total = total_frames.min(cap);
        for b in bitmap.iter_mut() {
            *b = 0xff;
        }
        for r in ram {
            let first = r.start.div_ceil(4096);
            let end = (r.end / 4096).min(total);
            for n in first..end {
                set_bit(bitmap, n, false);
            }
        }
        for r in reserved {
            let first = r.start / 4096;
            let end = r.end.div_ceil(4096).min(total);
            for n in first..end {
                set_bit(bitmap, n, true);
            }
        }
        let free = (0..total).filter(|&n| !bit(bitmap, n)).count() as u64;
        boot.copy_from_slice(bitmap);
        BitmapFrameAllocator {
            bitmap,
            boot,
            dirty: Extent::default(),
            total,
            free,
            boot_free: free,
            next: 0,
            zero: Zeroes::default(),
            #[cfg(test)]
            fail_after: None,
        }
    }

    /// The allocator, keeping in `bits` (one bit per frame, as long as the
    /// bitmap) which frames are known to hold only zeros
    /// (`crate::zeroes`): none at first. Without it, no frame is ever
    /// known to be zero.
    ///
    /// # Panics
    /// If `bits` is shorter than the bitmap (a kernel's layout bug).
    pub fn with_zero_record(mut self, bits: &'static mut [u8]) -> Self {
        let len = self.bitmap.len();
        assert!(
            bits.len() >= len,
            "zero record of {} bytes for a {len}-byte bitmap",
            bits.len()
        );
        let (bits, _) = bits.split_at_mut(len);
        self.zero = Zeroes::new(bits);
        self
    }

    /// The bitmap as it lies in memory.
    pub fn bitmap(&self) -> &[u8] {
        self.bitmap
    }

    /// Test support: whether the next allocation is made to fail.
    fn injected_failure(&mut self) -> bool {
        #[cfg(test)]
        if let Some(left) = &mut self.fail_after {
            if *left == 0 {
                return true;
            }
            *left -= 1;
        }
        false
    }

    /// Takes the free frame `n`: whatever it held is its taker's to
    /// write, so it is no longer known to be zero.
    fn take(&mut self, n: u64) {
        self.zero.set(n, false);
        self.set(n, true);
        self.free -= 1;
    }

    /// Takes the free frame `n` with only zero bytes: `zero` writes them
    /// unless it is known to hold only zeros, which it is from then on.
    fn take_zeroed(&mut self, n: u64, zero: impl FnOnce(PhysFrame)) {
        if !self.zero.get(n) {
            zero(frame_at(n));
            self.zero.set(n, true);
        }
        self.set(n, true);
        self.free -= 1;
    }

    /// The free frame the next single allocation takes (next fit from
    /// `next`), or `None` when none is left or a test makes it fail.
    fn next_free(&mut self) -> Option<u64> {
        if self.free == 0 || self.injected_failure() {
            return None;
        }
        let bytes = self.total.div_ceil(8);
        let start = (self.next / 8).min(bytes);
        for byte in (start..bytes).chain(0..start) {
            let i = usize::try_from(byte).ok()?;
            let b = *self.bitmap.get(i)?;
            if b == 0xff {
                continue;
            }
            let n = byte * 8 + u64::from((!b).trailing_zeros());
            if n < self.total {
                return Some(n);
            }
        }
        None
    }

    /// Sets frame `n`'s bit (below `total`) to `used`, widening `dirty`.
    fn set(&mut self, n: u64, used: bool) {
        set_bit(self.bitmap, n, used);
        self.dirty.add(n / 8, n / 8 + 1);
    }
}

impl FrameAllocator for BitmapFrameAllocator {
    /// Every frame back to its state at the boot point, and the next single
    /// frame searched from frame 0 again: the bytes that changed since are
    /// copied back from the boot copy.
    fn back_to_boot_point(&mut self) {
        let dirty = self.dirty.take();
        let bytes = usize_of(dirty.start)..usize_of(dirty.end);
        // Frames used at the boot point are their boot-time owners' again:
        // never known to be zero, as every frame a taker holds.
        self.zero.forget_used(self.boot, bytes.clone());
        if let (Some(to), Some(from)) = (self.bitmap.get_mut(bytes.clone()), self.boot.get(bytes)) {
            to.copy_from_slice(from);
        }
        self.free = self.boot_free;
        self.next = 0;
    }

    /// Takes the free frame `frame`.
    fn claim(&mut self, frame: PhysFrame) -> Result<(), ClaimError> {
        let n = frame_number(frame);
        if n >= self.total {
            return Err(ClaimError::OutOfRange);
        }
        if bit(self.bitmap, n) {
            return Err(ClaimError::Used);
        }
        self.take(n);
        Ok(())
    }

    /// Frames managed (bits in the bitmap).
    fn total_frames(&self) -> u64 {
        self.total
    }

    /// Frames free now.
    fn free_frames(&self) -> u64 {
        self.free
    }

    /// Frames free at boot (what every `Reset` returns to).
    fn boot_free_frames(&self) -> u64 {
        self.boot_free
    }

    /// Records the current free count as the boot count (after the VMM took
    /// its own metadata frames).
    fn set_boot_point(&mut self) {
        self.boot_free = self.free;
        self.boot.copy_from_slice(self.bitmap);
        self.dirty = Extent::default();
    }

    /// Whether frame number `n` is in use (frames past the end are).
    fn is_used(&self, n: u64) -> bool {
        n >= self.total || bit(self.bitmap, n)
    }

    /// One free frame, or `None` when none is left.
    fn alloc(&mut self) -> Option<PhysFrame> {
        let n = self.next_free()?;
        self.take(n);
        self.next = n + 1;
        Some(frame_at(n))
    }

    /// One free frame with only zero bytes: `zero` writes them unless the
    /// frame is known to hold only zeros.
    fn alloc_zeroed(&mut self, zero: impl FnOnce(PhysFrame)) -> Option<PhysFrame> {
        let n = self.next_free()?;
        self.take_zeroed(n, zero);
        self.next = n + 1;
        Some(frame_at(n))
    }

    /// Records whether the frame `frame` is known to hold only zeros.
    fn set_zero(&mut self, frame: PhysFrame, zero: bool) {
        self.zero.set(frame_number(frame), zero);
    }

    fn is_zero(&self, frame: PhysFrame) -> bool {
        self.zero.get(frame_number(frame))
    }

    /// The highest free frame, or `None` when none is left. The kernel
    /// heap takes its frames from the top, the rest from the bottom: which
    /// frames the heap holds (it keeps what it grew into across `Reset`)
    /// then does not change which frames the host's requests get, until
    /// memory is nearly full.
    fn alloc_high(&mut self) -> Option<PhysFrame> {
        if self.free == 0 || self.injected_failure() {
            return None;
        }
        for byte in (0..self.total.div_ceil(8)).rev() {
            let b = *self.bitmap.get(usize::try_from(byte).ok()?)?;
            if b == 0xff {
                continue;
            }
            // The highest zero bit below `total`.
            let n = (0..8u64)
                .rev()
                .map(|i| byte * 8 + i)
                .find(|&n| n < self.total && b & (1 << (n % 8)) == 0);
            if let Some(n) = n {
                self.take(n);
                return Some(frame_at(n));
            }
        }
        None
    }

    /// `count` physically contiguous free frames (first fit), or `None`.
    fn alloc_contiguous(&mut self, count: u64) -> Option<PhysFrame> {
        let first = self.free_run(count)?;
        for n in first..first + count {
            self.take(n);
        }
        Some(frame_at(first))
    }

    /// The run [`FrameAllocator::alloc_contiguous`] would answer, every
    /// frame of it with only zero bytes.
    fn alloc_contiguous_zeroed(
        &mut self,
        count: u64,
        mut zero: impl FnMut(PhysFrame),
    ) -> Option<PhysFrame> {
        let first = self.free_run(count)?;
        for n in first..first + count {
            self.take_zeroed(n, &mut zero);
        }
        Some(frame_at(first))
    }

    /// Frees `frame`.
    fn free(&mut self, frame: PhysFrame) -> Result<(), FreeError> {
        let n = frame_number(frame);
        if n >= self.total {
            return Err(FreeError::OutOfRange);
        }
        if !bit(self.bitmap, n) {
            return Err(FreeError::NotUsed);
        }
        self.set(n, false);
        self.free += 1;
        Ok(())
    }
}

impl BitmapFrameAllocator {
    /// The first frame of the first run of `count` free frames, or `None`
    /// (nothing taken).
    fn free_run(&mut self, count: u64) -> Option<u64> {
        if count == 0 || count > self.free || self.injected_failure() {
            return None;
        }
        let mut run_start = 0;
        let mut run = 0;
        let mut n = 0;
        while n < self.total {
            if n % 8 == 0 && run == 0 {
                // Skip fully used bytes quickly.
                if let Some(&0xff) = usize::try_from(n / 8).ok().and_then(|i| self.bitmap.get(i)) {
                    n += 8;
                    continue;
                }
            }
            if bit(self.bitmap, n) {
                run = 0;
            } else {
                if run == 0 {
                    run_start = n;
                }
                run += 1;
                if run == count {
                    return Some(run_start);
                }
            }
            n += 1;
        }
        None
    }
}
