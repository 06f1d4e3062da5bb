//! [`Extent`]: the smallest range holding everything added to it since it
//! was last taken, the record that lets `Reset` clear what a sequence
//! used (bitmap words, table records, swap units) instead of a whole map.

use core::ops::Range;

/// The smallest range of `u64`s holding every range added since the last
/// [`Extent::take`] (empty when nothing was).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extent {
    lo: u64,
    hi: u64,
}

impl Extent {
    /// Widens the extent to hold `lo..hi` (nothing when that is empty).
    pub fn add(&mut self, lo: u64, hi: u64) {
        if lo >= hi {
            return;
        }
        if self.lo >= self.hi {
            (self.lo, self.hi) = (lo, hi);
        } else {
            (self.lo, self.hi) = (self.lo.min(lo), self.hi.max(hi));
        }
    }

    /// The extent, left empty.
    pub fn take(&mut self) -> Range<u64> {
        let r = self.lo..self.hi;
        *self = Extent::default();
        r
    }
}

#[cfg(test)]
mod tests {
    use super::Extent;

    #[test]
    fn holds_every_range_added_until_taken() {
        let mut e = Extent::default();
        assert!(e.take().is_empty());
        e.add(10, 12);
        e.add(5, 5);
        e.add(3, 4);
        e.add(11, 20);
        assert_eq!(e.take(), 3..20);
        assert!(e.take().is_empty(), "taken: empty again");
        e.add(7, 8);
        assert_eq!(e.take(), 7..8);
    }
}
