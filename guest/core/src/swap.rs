//! The swap store: compressed RAM, in a region of guest RAM reserved at
//! boot, in the format of `protocol::formats` ("The swap store").
//!
//! A page goes out as an LZ4 block (`lz4_flex`, see the crate's
//! `Cargo.toml` for why; a page of zeros as the block the compressor makes
//! of it, `ZERO_PAGE`, without running it) or raw when it does not shrink,
//! packed into 128-byte units; the slot number is the first unit's index.
//! Free runs of units are found first fit from a rotating hint over the
//! used-unit bitmap. A slot freed by a swap-in is only marked *pending*
//! until the request's answer is built ([`SwapStore::end_request`], called
//! by `Vmm::end_request`), so a slot number is never reused within one
//! answer (rule 2 of the reclaim events).
//!
//! # Invariants
//! - The store is its own state: the VMM passes it the memory it lives in
//!   and never reads or writes the store's frames otherwise.
//! - A unit's *used* bit is set exactly when a slot's length covers it;
//!   `slots`/`bytes` count the slots with a non-zero length and their
//!   lengths; `pending` counts the set *pending* bits, all zero between
//!   requests ([`SwapStore::check`]).

use protocol::PhysRange;
use x86_64::structures::paging::PhysFrame;

use crate::backend::{FrameAccess, PhysMemory};
use crate::conv::usize_of;
use crate::extent::Extent;
use crate::frames::{frame_at, frame_number};

use crate::bits::Bits;
use bytes::StoreBytes;

/// Bytes of a unit.
pub const UNIT: u64 = 128;
/// Output buffer of the compressor: lz4's worst case for a page
/// (`lz4_flex::block::get_maximum_output_size(4096)`), rounded up.
const COMPRESS_BUF: usize = 4608;
const HEADER_MAGIC: &[u8; 8] = b"VMMSWAP1";

/// What `lz4_flex::block::compress_into` makes of a page of zeros (a test
/// holds it to that): one literal zero, a match of 4089 bytes at offset 1,
/// the last six bytes as literals (lz4_flex ends a block's last match six
/// bytes before its end).
const ZERO_PAGE: &[u8] = &[
    31, 0, 1, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 245,
    96, 0, 0, 0, 0, 0, 0,
];

/// Whether `page` holds only zeros: eight words a turn (one translation
/// block and coverage counter each under TCG), to the first turn with a
/// non-zero word.
pub(crate) fn all_zero(page: &[u8; 4096]) -> bool {
    page.chunks_exact(64).all(|eight| {
        let any = eight.chunks_exact(8).fold(0, |acc, w| {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            acc | u64::from_le_bytes(b)
        });
        any == 0
    })
}

/// The store has no run of free units for the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StoreFull;

/// Why [`SwapStore::load`] loaded nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadError {
    /// The slot is beyond the store or holds no page.
    NoPage,
    /// The slot was loaded already in this request (it is pending).
    Pending,
    /// The slot's bytes do not decompress to a page.
    Corrupt,
}

/// Where the store's parts lie (byte offsets from its first frame).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SwapStore {
    base: PhysFrame,
    frames: u64,
    units: u64,
    used_off: u64,
    pending_off: u64,
    len_off: u64,
    data_off: u64,
    hint: u64,
    pub slots: u64,
    pub bytes: u64,
    /// Units the slots cover (their used bits).
    used_units: u64,
    /// The fewest units a search found no free run of since a unit was
    /// last freed: no larger run can have appeared since.
    no_run_of: Option<u64>,
    pending: u64,
    /// The units holding every slot stored since the last
    /// [`SwapStore::free_all`].
    stored: Extent,
}

fn page_up(b: u64) -> u64 {
    b.div_ceil(4096) * 4096
}

impl SwapStore {
    /// The layout of a store of `frames` frames at `base` (`None` if too
    /// small to hold one page).
    pub fn layout(base: PhysFrame, frames: u64) -> Option<SwapStore> {
        let bytes = frames.checked_mul(4096)?;
        // Per unit: 128 data bytes, 2 bits, one u16 length.
        // The header holds the unit count as a u32.
        let mut units =
            (bytes.saturating_sub(4096) * 8 / (UNIT * 8 + 2 + 16)).min(u64::from(u32::MAX));
        loop {
            let used_off = 4096;
            let pending_off = used_off + page_up(units.div_ceil(8));
            let len_off = pending_off + page_up(units.div_ceil(8));
            let data_off = len_off + page_up(units * 2);
            if data_off + units * UNIT <= bytes {
                return (units >= 4096 / UNIT).then_some(SwapStore {
                    base,
                    frames,
                    units,
                    used_off,
                    pending_off,
                    len_off,
                    data_off,
                    hint: 0,
                    slots: 0,
                    bytes: 0,
                    used_units: 0,
                    no_run_of: None,
                    pending: 0,
                    stored: Extent::default(),
                });
            }
            units = units.checked_sub(1)?;
        }
    }

    /// The store's physical range.
    pub fn range(&self) -> PhysRange {
        let start = self.base.start_address().as_u64();
        PhysRange {
            start,
            end: start + self.frames * 4096,
        }
    }

    /// Bytes of the data area.
    pub fn capacity(&self) -> u64 {
        self.units * UNIT
    }
}

impl SwapStore {
    /// Writes an empty store (header, zero bitmaps and lengths).
    pub fn format<M: PhysMemory>(&self, mem: &mut M) {
        for n in 0..self.data_off / 4096 {
            mem.frame_bytes(frame_at(frame_number(self.base) + n))
                .fill(0);
        }
        let mut h = [0u8; 48];
        h[..8].copy_from_slice(HEADER_MAGIC);
        // Both fit: UNIT is 128, and `layout` keeps `units` within u32.
        let word = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes();
        h[8..12].copy_from_slice(&word(UNIT));
        h[12..16].copy_from_slice(&word(self.units));
        for (i, v) in [self.used_off, self.pending_off, self.len_off, self.data_off]
            .into_iter()
            .enumerate()
        {
            h[16 + 8 * i..24 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        self.raw().write(mem, 0, &h);
    }

    /// The store's bytes ([`bytes`]).
    fn raw(&self) -> StoreBytes {
        StoreBytes {
            base: self.base,
            len_off: self.len_off,
        }
    }

    /// The used bitmap (one bit a unit), as the VMM's other metadata
    /// bitmaps are kept: it starts on a page of the store's frames.
    fn used(&self) -> Bits {
        self.bitmap(self.used_off)
    }

    /// The pending bitmap (one bit a slot, by its first unit).
    fn pending(&self) -> Bits {
        self.bitmap(self.pending_off)
    }

    /// The bitmap of `units` bits at store offset `off` (page aligned:
    /// `layout` rounds every part of the store up to pages).
    fn bitmap(&self, off: u64) -> Bits {
        Bits {
            base: frame_number(self.base) + off / 4096,
            len: self.units,
        }
    }

    /// A free run of `n` units (1 to 32), first fit from the hint, then
    /// from 0, searched a word of the used bitmap at a time
    /// ([`Bits::find_clear_run`]). A store with fewer free units than `n`
    /// costs no search, and neither does one that found no run of `n` or
    /// fewer units since a unit was freed.
    fn find_units<M: PhysMemory>(&mut self, mem: &mut M, n: u64) -> Option<u64> {
        let free = self.units.saturating_sub(self.used_units);
        if free < n || self.no_run_of.is_some_and(|m| m <= n) {
            return None;
        }
        let used = self.used();
        let from = self.hint.min(self.units);
        let found = used
            .find_clear_run(mem, n, 1, from)
            .or_else(|| used.find_clear_run(mem, n, 1, 0));
        if found.is_none() {
            self.no_run_of = Some(n);
        }
        found
    }

    /// Stores the contents of `frame` in a new slot and answers its number.
    ///
    /// A page of zeros, the most common page sent out (mapped and never
    /// written), is stored as [`ZERO_PAGE`] without running the
    /// compressor: the same bytes it makes of such a page, for a look at
    /// the page that stops at its first non-zero word. Under TCG the
    /// compression cost several times that look: the compressor clears its
    /// 8 KiB hash table, and `store` its 4.5 KiB output buffer, before the
    /// compressor reads the page.
    pub fn store<M: PhysMemory>(
        &mut self,
        mem: &mut M,
        frame: PhysFrame,
    ) -> Result<u64, StoreFull> {
        if all_zero(mem.frame_bytes(frame)) {
            return self.put(mem, ZERO_PAGE);
        }
        // lz4_flex wants room for the worst case (a little over 4096).
        let mut out = [0u8; COMPRESS_BUF];
        let len = {
            let page = mem.frame_bytes(frame);
            let packed = lz4_flex::block::compress_into(page, &mut out)
                .ok()
                .filter(|&n| n < 4096);
            match packed {
                Some(n) => n,
                None => {
                    out[..4096].copy_from_slice(page);
                    4096
                }
            }
        };
        self.put(mem, &out[..len])
    }

    /// Stores a page of zeros in a new slot and answers its number: what
    /// [`SwapStore::store`] stores for a frame that holds only zeros,
    /// without looking at one (for a frame known to hold only zeros).
    pub fn store_zeros<M: PhysMemory>(&mut self, mem: &mut M) -> Result<u64, StoreFull> {
        self.put(mem, ZERO_PAGE)
    }

    /// Stores `data` (an LZ4 block of a page, or the page raw: at most
    /// 4096 bytes) in a new slot and answers its number. More than a page,
    /// which `store` never passes and `load` would refuse as corrupt, is
    /// not stored.
    fn put<M: PhysMemory>(&mut self, mem: &mut M, data: &[u8]) -> Result<u64, StoreFull> {
        let len = u16::try_from(data.len())
            .ok()
            .filter(|&n| n <= 4096)
            .ok_or(StoreFull)?;
        let units = u64::from(len).div_ceil(UNIT);
        let slot = self.find_units(mem, units).ok_or(StoreFull)?;
        self.used().set_range(mem, slot, slot + units, true);
        self.raw().set_slot_len(mem, slot, len);
        let at = self.data_off + slot * UNIT;
        self.raw().write(mem, at, data);
        self.hint = slot + units;
        self.stored.add(slot, slot + units);
        self.used_units += units;
        self.slots += 1;
        self.bytes += u64::from(len);
        Ok(slot)
    }

    /// Loads slot `slot` into `frame` and marks the slot pending (freed when
    /// the answer is built).
    pub fn load<M: PhysMemory>(
        &mut self,
        mem: &mut M,
        slot: u64,
        frame: PhysFrame,
    ) -> Result<(), LoadError> {
        if slot >= self.units {
            return Err(LoadError::NoPage);
        }
        let len = self.raw().slot_len(mem, slot);
        if len == 0 {
            return Err(LoadError::NoPage);
        }
        // A length past a page is a corrupt store (the VMM writes at most
        // 4096): refused, not read past the buffer.
        if len > 4096 {
            return Err(LoadError::Corrupt);
        }
        let len = usize_of(len);
        if self.pending().get(mem, slot) {
            return Err(LoadError::Pending);
        }
        let mut buf = [0u8; 4096];
        self.raw()
            .read(mem, self.data_off + slot * UNIT, &mut buf[..len]);
        let page = mem.frame_bytes(frame);
        if len == 4096 {
            page.copy_from_slice(&buf);
        } else {
            match lz4_flex::block::decompress_into(&buf[..len], page) {
                Ok(4096) => {}
                _ => return Err(LoadError::Corrupt),
            }
        }
        self.pending().set(mem, slot, true);
        self.pending += 1;
        Ok(())
    }

    /// Frees slot `slot` now (its page became unusable).
    pub fn free<M: PhysMemory>(&mut self, mem: &mut M, slot: u64) {
        if slot >= self.units {
            return;
        }
        let len = self.raw().slot_len(mem, slot);
        if len == 0 {
            return;
        }
        let units = len.div_ceil(UNIT);
        self.used().set_range(mem, slot, slot + units, false);
        // Saturating here and below: a length table that a buggy VMM
        // wrote over must not panic the kernel (the store's counters go
        // wrong instead, which `Stats` and the checker report).
        self.used_units = self.used_units.saturating_sub(units);
        self.no_run_of = None;
        self.raw().set_slot_len(mem, slot, 0);
        if self.pending().get(mem, slot) {
            self.pending().set(mem, slot, false);
            self.pending -= 1;
        }
        self.slots = self.slots.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
    }

    /// Frees every slot at once (`Reset`), the search hint rewound: the used and pending bits and
    /// the lengths of the units stored to since the last time are cleared
    /// (every slot lies there), and the counts go to zero. The cost is
    /// that span of units, cleared a word or a frame at a time, which
    /// measured cheaper than freeing slot by slot even when few slots
    /// lie far apart.
    pub fn free_all<M: PhysMemory>(&mut self, mem: &mut M) {
        let core::ops::Range { start: lo, end: hi } = self.stored.take();
        // The search back where boot left it (a placement choice: slot
        // numbers after a reset are those after a boot).
        self.hint = 0;
        if self.slots == 0 && self.pending == 0 {
            // Every bit and length is zero already (the invariants).
            return;
        }
        if lo < hi {
            self.used().set_range(mem, lo, hi, false);
            self.pending().set_range(mem, lo, hi, false);
            self.raw().zero(mem, self.len_off + lo * 2, (hi - lo) * 2);
        }
        self.slots = 0;
        self.bytes = 0;
        self.used_units = 0;
        self.pending = 0;
        self.no_run_of = None;
    }

    /// Frees every pending slot (called once a request's answer is built,
    /// by `Vmm::end_request`).
    pub fn end_request<M: PhysMemory>(&mut self, mem: &mut M) {
        if self.pending == 0 {
            return;
        }
        // In order, a word of the bitmap at a time, until none is left.
        let (pending, mut at) = (self.pending(), 0);
        while self.pending > 0 {
            let Some(slot) = pending.find(mem, at, self.units, true) else {
                return;
            };
            self.free(mem, slot);
            at = slot + 1;
        }
    }
}

mod bytes;
#[cfg(test)]
mod check;
#[cfg(test)]
mod tests;
