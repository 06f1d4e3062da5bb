//! [`Zeroes`]: which frames are known to hold only zero bytes, so that a
//! frame the VMM hands out zeroed (a page `Map` makes present, an
//! allocate-on-write page's first touch, a new page table) is not written
//! with zeros again.
//!
//! Under TCG, zeroing a frame is 512 emulated stores; most frames that
//! `Map` zeroes are let go of again (`Unmap`, a convert, an eviction, a
//! destroyed space, `Reset`) without a byte of them written, and the next
//! `Map` gets them back.
//!
//! # What a set bit means
//! Bit `n` set: frame `n`'s 4096 bytes are all zero, except for what was
//! written through a present level-1 entry that maps the frame and has
//! its dirty bit (D) set. The CPU sets D in an entry before the first
//! write through it, so a frame whose entries never had D set was never
//! written. The bit is kept true by these rules:
//! - Set only when the frame holds zeros: a frame the allocator's
//!   `*_zeroed` methods hand out (zeroed unless the bit was set), a page
//!   table found empty as it is freed.
//! - Cleared whenever the frame is taken by any other `alloc*` or by
//!   `claim`, and for a page table as soon as it is taken: the taker may
//!   write it through the direct map, which sets no D.
//! - Cleared when an entry mapping the frame, with D set, is rewritten or
//!   dropped, and before what it maps is let go of
//!   ([`crate::paging::PageTables::set_leaf`] and the walkers read the
//!   entry first): a rewrite may lose D (the VMM encodes entries without
//!   it), and a dropped entry can no longer tell.
//! - At `Reset`, which drops the tables and gives every frame taken since
//!   the boot point back at once, cleared first for the frames of every
//!   present entry with D set, in every space (`paging::written` reads the
//!   tables that hold a present page), and for every frame the boot point
//!   marks used (their boot-time owners').
//!
//! # Who reads it
//! - The allocator's `*_zeroed` methods: a frame known to hold only zeros
//!   is not zeroed again.
//! - `Holders::send_out`: a page sent to swap whose frame is known to hold
//!   only zeros and whose entry has no D goes out as a page of zeros
//!   without a look at its bytes. That rests on the entry being the
//!   frame's only mapping, which holds for every page that goes to swap
//!   (a shared frame never does; the kernel's half has one set of page
//!   tables in every space). Debug builds look anyway and assert it.
//!
//! A wrong set bit would show as a `Map`ped page that does not read zero,
//! or a page that comes back from swap as zeros, which the host's model
//! and memory checker report.

use core::ops::Range;

use crate::frames::{bit, set_bit};

/// One bit per frame, set while the frame is known to hold only zeros (as
/// the module says); no bits at all when the allocator keeps none (every
/// frame then reads as not known to be zero).
#[derive(Debug, Default)]
pub(crate) struct Zeroes {
    bits: &'static mut [u8],
}

impl Zeroes {
    /// A record in `bits`, every frame not known to be zero.
    pub fn new(bits: &'static mut [u8]) -> Self {
        bits.fill(0);
        Zeroes { bits }
    }

    /// Whether frame `n` is known to hold only zeros.
    #[inline]
    pub fn get(&self, n: u64) -> bool {
        // Past the record `bit` answers 1 (used): never known to be zero.
        n / 8 < self.bits.len() as u64 && bit(self.bits, n)
    }

    /// Records whether frame `n` is known to hold only zeros (past the
    /// record: nothing, the frame stays unknown).
    #[inline]
    pub fn set(&mut self, n: u64, zero: bool) {
        set_bit(self.bits, n, zero);
    }

    /// Forgets every frame that `bitmap` (in the allocator's format: 1 =
    /// used) marks used within its bytes `bytes`: what a return to the
    /// boot point does with the boot copy, whose used frames are their
    /// boot-time owners' again.
    pub fn forget_used(&mut self, bitmap: &[u8], bytes: Range<usize>) {
        let (Some(z), Some(used)) = (self.bits.get_mut(bytes.clone()), bitmap.get(bytes)) else {
            return;
        };
        for (z, used) in z.iter_mut().zip(used) {
            *z &= !used;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Zeroes;
    use alloc::boxed::Box;
    use alloc::vec;

    fn zeroes(bytes: usize) -> Zeroes {
        Zeroes::new(Box::leak(vec![0xffu8; bytes].into_boxed_slice()))
    }

    #[test]
    fn starts_unknown_and_records_each_frame() {
        let mut z = zeroes(2);
        assert!((0..16).all(|n| !z.get(n)), "nothing known at first");
        z.set(3, true);
        z.set(9, true);
        assert!(z.get(3) && z.get(9) && !z.get(4));
        z.set(3, false);
        assert!(!z.get(3) && z.get(9));
        z.set(16, true);
        assert!(!z.get(16), "past the record: never known");
    }

    #[test]
    fn forget_used_forgets_the_used_frames_of_the_bytes_given() {
        let mut z = zeroes(3);
        for n in 0..24 {
            z.set(n, true);
        }
        // Frames 1 and 9 used, and 17 outside the bytes given.
        z.forget_used(&[0b10, 0b10, 0b10], 0..2);
        assert!(!z.get(1) && !z.get(9), "used frames forgotten");
        assert!(z.get(0) && z.get(8) && z.get(17), "the rest kept");
    }

    #[test]
    fn without_bits_nothing_is_known() {
        let mut z = Zeroes::default();
        z.set(0, true);
        assert!(!z.get(0));
    }
}
