//! Bitmaps in the VMM's metadata frames (host frames, `Valloc` pages, the
//! heap's granules), read and written a 64-bit word at a time.
//!
//! A bitmap of `len` bits starts at frame number `base`; bit `n` is bit
//! `n % 8` of byte `n / 8` (least significant first), the bytes running on
//! through consecutive frames. Word `w` holds bits `64 w .. 64 w + 64`, as a
//! little-endian `u64`. Scans cost a word per 64 bits, not a call per bit:
//! a `Reset` or a search over a 2-million-bit heap map is tens of thousands
//! of word reads, not millions of bit reads.

use core::ops::ControlFlow;

use crate::backend::{FrameAccess, PhysMemory};
use crate::frames::frame_at;

/// Bits in a frame.
const FRAME_BITS: u64 = 4096 * 8;
/// Words in a frame.
const FRAME_WORDS: u64 = 512;

/// A bitmap in metadata frames (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bits {
    /// Frame number of the first frame.
    pub base: u64,
    /// Bits in the map.
    pub len: u64,
}

impl Bits {
    /// Word `w` (bits past `len` read as stored: callers mask them).
    pub fn word<M: PhysMemory + ?Sized>(&self, mem: &mut M, w: u64) -> u64 {
        let bytes = mem.frame_bytes(frame_at(self.base + w / FRAME_WORDS));
        let at = (w % FRAME_WORDS) as usize * 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    }

    /// Bit `n`.
    pub fn get<M: PhysMemory + ?Sized>(&self, mem: &mut M, n: u64) -> bool {
        let bytes = mem.frame_bytes(frame_at(self.base + n / FRAME_BITS));
        bytes[((n / 8) % 4096) as usize] & (1 << (n % 8)) != 0
    }

    /// Sets bit `n` to `v`.
    pub fn set<M: PhysMemory + ?Sized>(&self, mem: &mut M, n: u64, v: bool) {
        let bytes = mem.frame_bytes(frame_at(self.base + n / FRAME_BITS));
        let b = &mut bytes[((n / 8) % 4096) as usize];
        if v {
            *b |= 1 << (n % 8);
        } else {
            *b &= !(1 << (n % 8));
        }
    }

    /// The mask of bits `lo..hi` (`hi - lo <= 64`) inside word `w`.
    fn mask(w: u64, lo: u64, hi: u64) -> u64 {
        let (s, e) = (lo.max(w * 64) - w * 64, hi.min(w * 64 + 64) - w * 64);
        if e - s == 64 {
            u64::MAX
        } else {
            ((1u64 << (e - s)) - 1) << s
        }
    }

    /// Calls `f` with each word holding a bit of `lo..hi` (its index and
    /// its 8 bytes, in place), in order, until `f` breaks. Each frame of
    /// the map is looked up once (not a lookup per word): scans and a
    /// `Reset`'s clears run over thousands of words.
    fn words<M: PhysMemory + ?Sized, B>(
        &self,
        mem: &mut M,
        lo: u64,
        hi: u64,
        mut f: impl FnMut(u64, &mut [u8]) -> ControlFlow<B>,
    ) -> Option<B> {
        let hi = hi.min(self.len);
        if lo >= hi {
            return None;
        }
        let (first, last) = (lo / 64, (hi - 1) / 64);
        let mut w = first;
        while w <= last {
            let bytes = mem.frame_bytes(frame_at(self.base + w / FRAME_WORDS));
            let end = last.min((w / FRAME_WORDS + 1) * FRAME_WORDS - 1);
            let words = bytes
                .chunks_exact_mut(8)
                .take((end % FRAME_WORDS) as usize + 1)
                .skip((w % FRAME_WORDS) as usize);
            for (at, chunk) in (w..).zip(words) {
                if let ControlFlow::Break(b) = f(at, chunk) {
                    return Some(b);
                }
            }
            w = end + 1;
        }
        None
    }

    /// Sets bits `lo..hi` to `v`.
    pub fn set_range<M: PhysMemory + ?Sized>(&self, mem: &mut M, lo: u64, hi: u64, v: bool) {
        let hi = hi.min(self.len);
        let _: Option<()> = self.words(mem, lo, hi, |at, chunk| {
            let m = Self::mask(at, lo, hi);
            let old = u64::from_le_bytes((&*chunk).try_into().expect("8 bytes"));
            chunk.copy_from_slice(&(if v { old | m } else { old & !m }).to_le_bytes());
            ControlFlow::Continue(())
        });
    }

    /// The first bit of `lo..hi` equal to `v`, a word at a time.
    pub fn find<M: PhysMemory + ?Sized>(
        &self,
        mem: &mut M,
        lo: u64,
        hi: u64,
        v: bool,
    ) -> Option<u64> {
        let hi = hi.min(self.len);
        self.words(mem, lo, hi, |at, chunk| {
            let word = u64::from_le_bytes((&*chunk).try_into().expect("8 bytes"));
            let hits = if v { word } else { !word } & Self::mask(at, lo, hi);
            match hits {
                0 => ControlFlow::Continue(()),
                _ => ControlFlow::Break(at * 64 + u64::from(hits.trailing_zeros())),
            }
        })
    }

    /// The first run of `n` clear bits starting at a multiple of `step`, at
    /// or after `from`. A candidate that holds a set bit moves past the
    /// whole run of set bits there (a word at a time), since no run can
    /// start inside it: the cost is the words scanned, not a step per set
    /// bit (a 2^18-bit `Valloc` map mostly handed out took a step per page).
    pub fn find_clear_run<M: PhysMemory + ?Sized>(
        &self,
        mem: &mut M,
        n: u64,
        step: u64,
        from: u64,
    ) -> Option<u64> {
        let step = step.max(1);
        let mut at = from.min(self.len).div_ceil(step) * step;
        while at.checked_add(n)? <= self.len {
            match self.find(mem, at, at + n, true) {
                Some(used) => {
                    let clear = self.find(mem, used + 1, self.len, false)?;
                    at = clear.div_ceil(step) * step;
                }
                None => return Some(at),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::usize_of;
    use crate::sim::SimMemory;

    fn map() -> (SimMemory, Bits) {
        let mem = SimMemory::new(16);
        (
            mem,
            Bits {
                base: 4,
                len: 70_000,
            },
        )
    }

    #[test]
    fn ranges_finds_and_runs_agree_with_single_bits() {
        let (mut m, b) = map();
        b.set_range(&mut m, 3, 200, true);
        b.set_range(&mut m, 50, 60, false);
        b.set_range(&mut m, 32_760, 32_800, true);
        for n in 0..300 {
            assert_eq!(
                b.get(&mut m, n),
                (3..200).contains(&n) && !(50..60).contains(&n),
                "bit {n}"
            );
        }
        assert!((32_760..32_800).all(|n| b.get(&mut m, n)));
        assert!(!b.get(&mut m, 32_759) && !b.get(&mut m, 32_800));
        assert_eq!(b.find(&mut m, 0, 1000, true), Some(3));
        assert_eq!(b.find(&mut m, 4, 1000, false), Some(50));
        assert_eq!(b.find(&mut m, 200, 32_000, true), None);
        assert_eq!(b.find(&mut m, 200, 40_000, true), Some(32_760));
        assert_eq!(b.find_clear_run(&mut m, 10, 1, 0), Some(50));
        assert_eq!(b.find_clear_run(&mut m, 11, 1, 0), Some(200));
        assert_eq!(b.find_clear_run(&mut m, 10, 4, 0), Some(200));
        assert_eq!(b.find_clear_run(&mut m, 100, 1, 32_700), Some(32_800));
        assert_eq!(b.find_clear_run(&mut m, 70_001, 1, 0), None);
        b.set_range(&mut m, 0, b.len, false);
        assert_eq!(b.find(&mut m, 0, 70_000, true), None);
    }

    /// The first bit of `lo..hi` equal to `v`, a bit at a time.
    fn naive_find(bits: &[bool], lo: u64, hi: u64, v: bool) -> Option<u64> {
        (lo..hi.min(bits.len() as u64)).find(|&n| bits[usize_of(n)] == v)
    }

    /// The first run of `n` clear bits at a multiple of `step` from `from`,
    /// every candidate tried.
    fn naive_run(bits: &[bool], n: u64, step: u64, from: u64) -> Option<u64> {
        let len = bits.len() as u64;
        let mut at = from.min(len).div_ceil(step) * step;
        while at + n <= len {
            if (at..at + n).all(|b| !bits[usize_of(b)]) {
                return Some(at);
            }
            at += step;
        }
        None
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Searches across frames, with long set runs and short gaps (the
        /// maps that made the old search step a bit at a time), find what
        /// a bit-at-a-time search finds.
        #[test]
        fn searches_agree_with_a_bit_at_a_time_search(
            runs in proptest::collection::vec((1u64..3000, 0u64..40), 1..40),
            n in 1u64..200,
            step in proptest::sample::select(vec![1u64, 2, 4, 64, 256]),
            from in 0u64..70_000,
            lo in 0u64..70_000,
            span in 0u64..70_000,
        ) {
            let (mut m, b) = map();
            let mut bits = vec![false; usize_of(b.len)];
            let mut at = 0u64;
            for (used, gap) in runs {
                let end = (at + used).min(b.len);
                b.set_range(&mut m, at, end, true);
                bits[usize_of(at)..usize_of(end)].iter_mut().for_each(|x| *x = true);
                at = (end + gap).min(b.len);
            }
            let hi = lo.saturating_add(span);
            for v in [true, false] {
                proptest::prop_assert_eq!(b.find(&mut m, lo, hi, v), naive_find(&bits, lo, hi, v));
            }
            proptest::prop_assert_eq!(
                b.find_clear_run(&mut m, n, step, from),
                naive_run(&bits, n, step, from)
            );
        }
    }
}
