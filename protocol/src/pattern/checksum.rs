//! The checksum a `Read` answers (protocol version 7): a multiply-rotate
//! hash of the bytes read, taken as little-endian 64-bit words, finished by
//! a mixer and folded to 32 bits.
//!
//! The bytes, in address order from the first byte read, are cut into
//! 8-byte words read little endian (the last word padded with zero bytes).
//! The register starts at 0 and takes each word `w` as
//! `h = rotl(h × K, 29) + w`, then the byte count `n` the same way, all
//! modulo 2⁶⁴ (`K` = [`K`]). The answer is the splitmix64 finalizer of
//! `h`, its two halves xored: `(z ^ z >> 32) as u32`.
//!
//! - **Why not CRC-32C** (protocol versions up to 6): a guest under TCG
//!   pays for every load, and CRC-32C by tables costs one table load per
//!   byte (slicing-by-16 in the guest: 16 table loads per 16 bytes), where
//!   this costs a multiply, a rotate and an add per 8 bytes. The hardware
//!   `crc32` instruction is no way out: QEMU 7.2 emulates it bit by bit.
//! - **Why the rotate.** Without it (`h = h × K + w`, a polynomial modulo
//!   2⁶⁴) a bit of a word only reaches that bit and the ones above it, so
//!   the top bit flipped in two words cancels out (2⁶³ × (Kᵃ + Kᵇ) is 0
//!   modulo 2⁶⁴): a wrong NX bit in two copied entries would pass. The
//!   rotate feeds the high bits back to the low ones at every word.
//! - **What it catches.** Every step is a bijection of the register for a
//!   given word, and an injection of the word for a given register: two
//!   reads of the same length whose bytes differ inside one word always
//!   differ in the register, whatever the word. Other differences agree in
//!   the register only by coincidence, and the finalizer is a bijection, so
//!   different registers give answers that agree by a 2⁻³² chance. This is
//!   not CRC-32C's guarantee for every 2-bit error: it is a hash, not a
//!   code; what it guarantees is the one-word case above.
//! - **Its cost on the host.** A run of zeros has no shortcut (the rotate
//!   is what makes it a hash), so the model takes a never-written page word
//!   by word: about half a microsecond natively, and a 256 MiB read of
//!   never-written memory tens of milliseconds, beside the guest's seconds.

/// The multiplier: odd (so a multiply by it is a bijection modulo 2⁶⁴),
/// the golden-ratio constant of splitmix64.
pub const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// The register after taking word `w`, the rotation done by `rot` (see
/// [`Checksum::update_with`]).
#[inline(always)]
fn step(h: u64, w: u64, rot: impl Fn(u64) -> u64) -> u64 {
    rot(h.wrapping_mul(K)).wrapping_add(w)
}

/// `x.rotate_left(29)`: the rotation of [`Checksum::update`].
#[inline(always)]
fn rotl29(x: u64) -> u64 {
    x.rotate_left(29)
}

/// The register `h` after the words of `bytes` (a whole number of words):
/// what [`Checksum::update`] computes, word by word.
///
/// Eight words a turn, then the rest one by one: the same steps in the
/// same order. Under TCG a loop's turn is a translation block of its own
/// and, in the guest, a coverage counter too: a turn of one word spent
/// about as much on those as on the word (the guest checksums every byte
/// a `Read` covers).
#[inline]
fn words(mut h: u64, bytes: &[u8], rot: impl Fn(u64) -> u64 + Copy) -> u64 {
    let mut eights = bytes.chunks_exact(64);
    for c in &mut eights {
        for w in c.chunks_exact(8) {
            h = step(h, word(w), rot);
        }
    }
    for w in eights.remainder().chunks_exact(8) {
        h = step(h, word(w), rot);
    }
    h
}

/// The little-endian word of the 8 bytes `w`.
#[inline(always)]
fn word(w: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(w);
    u64::from_le_bytes(b)
}

/// [`checksum`](super::checksum) computed piece by piece, for reads done in
/// chunks of any length.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checksum {
    /// The register.
    h: u64,
    /// The bytes of an unfinished word, and how many there are (0..8).
    carry: [u8; 8],
    carried: usize,
    /// Bytes taken in all.
    len: u64,
}

impl Checksum {
    /// An empty checksum.
    pub const fn new() -> Self {
        Checksum {
            h: 0,
            carry: [0; 8],
            carried: 0,
            len: 0,
        }
    }

    /// Adds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.update_with(bytes, rotl29);
    }

    /// [`Checksum::update`] with the rotation of each step it takes done by
    /// `rot`, which must answer `x.rotate_left(29)` for every `x`: the same
    /// checksum, for a caller that must choose the instructions ([`finish`]
    /// takes its last steps with `rotate_left`). The guest
    /// under QEMU's TCG does: a `rol` there makes the translator compute
    /// every flag through a helper call, once per word (the kernel's
    /// `touch::read`).
    ///
    /// [`finish`]: Checksum::finish
    pub fn update_with(&mut self, mut bytes: &[u8], rot: impl Fn(u64) -> u64 + Copy) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        if self.carried > 0 {
            let take = (8 - self.carried).min(bytes.len());
            let (head, rest) = bytes.split_at(take);
            self.carry[self.carried..self.carried + take].copy_from_slice(head);
            self.carried += take;
            bytes = rest;
            if self.carried < 8 {
                return;
            }
            self.h = words(self.h, &self.carry, rot);
            self.carried = 0;
        }
        let whole = bytes.len() - bytes.len() % 8;
        let (body, tail) = bytes.split_at(whole);
        self.h = words(self.h, body, rot);
        self.carry[..tail.len()].copy_from_slice(tail);
        self.carried = tail.len();
    }

    /// The checksum of everything added.
    pub fn finish(self) -> u32 {
        let mut h = self.h;
        if self.carried > 0 {
            let mut last = [0u8; 8];
            last[..self.carried].copy_from_slice(&self.carry[..self.carried]);
            h = words(h, &last, rotl29);
        }
        let z = super::mix64(step(h, self.len, rotl29));
        (z ^ (z >> 32)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::checksum;
    use proptest::prelude::*;

    /// The definition, pinned: traces record these answers (format
    /// version 9), so a change here must come with a new version.
    #[test]
    fn known_answers() {
        assert_eq!(checksum(b""), PINNED[0]);
        assert_eq!(checksum(b"123456789"), PINNED[1]);
        assert_eq!(checksum(&[0u8; 4096]), PINNED[2]);
        // The register by hand: two words, the second padded, then the
        // length.
        let w0 = u64::from_le_bytes(*b"12345678");
        let w1 = u64::from(b'9');
        let h = step(step(0, w0, rotl29), w1, rotl29);
        let mut c = Checksum::new();
        c.update(b"123456789");
        assert_eq!(
            words(
                0,
                &[b"12345678".as_slice(), &[b'9', 0, 0, 0, 0, 0, 0, 0]].concat(),
                rotl29
            ),
            h
        );
        assert_eq!(c.finish(), checksum(b"123456789"));
    }

    /// Eight words a turn and the words after them take the same steps
    /// as one word at a time, in order.
    #[test]
    fn words_step_word_by_word() {
        let mut bytes = [0u8; 200];
        crate::pattern::fill(0x77, 0x1003, &mut bytes);
        for len in (0..=200).step_by(8) {
            let by_one = bytes[..len].chunks_exact(8).fold(0x1234, |h, w| {
                step(h, u64::from_le_bytes(w.try_into().unwrap()), rotl29)
            });
            assert_eq!(words(0x1234, &bytes[..len], rotl29), by_one, "{len} bytes");
        }
    }

    /// `update_with` uses the rotation it is given: a wrong one changes
    /// the answer (so the test above compares two real computations).
    #[test]
    fn update_with_uses_its_rotation() {
        let mut bytes = [0u8; 64];
        crate::pattern::fill(0x5eed, 0x4000, &mut bytes);
        let mut wrong = Checksum::new();
        wrong.update_with(&bytes, |x: u64| x.rotate_left(28));
        assert_ne!(wrong.finish(), checksum(&bytes));
    }

    const PINNED: [u32; 3] = [0x0000_0000, 0xfe4f_8878, 0xad66_f600];

    /// What a polynomial modulo 2⁶⁴ misses: the top bit flipped in two
    /// words (2⁶³ × (Kᵃ + Kᵇ) is 0 modulo 2⁶⁴), and +1 in one word with
    /// -1 × K in the next. The rotate catches both, at every distance.
    #[test]
    fn high_bits_changed_in_two_words_change_the_answer() {
        let mut bytes = vec![0u8; 4096];
        crate::pattern::fill(0x5eed, 0x4000, &mut bytes);
        let base = checksum(&bytes);
        for (a, b) in [(7, 4095), (7, 15), (1023, 2047), (4087, 4095)] {
            let mut flipped = bytes.clone();
            flipped[a] ^= 0x80;
            flipped[b] ^= 0x80;
            assert_ne!(checksum(&flipped), base, "bytes {a} and {b}");
        }
        let mut shifted = bytes.clone();
        let w0 = u64::from_le_bytes(shifted[..8].try_into().unwrap()).wrapping_add(1);
        let w1 = u64::from_le_bytes(shifted[8..16].try_into().unwrap()).wrapping_sub(K);
        shifted[..8].copy_from_slice(&w0.to_le_bytes());
        shifted[8..16].copy_from_slice(&w1.to_le_bytes());
        assert_ne!(checksum(&shifted), base);
    }

    proptest! {
        #[test]
        fn pieces_of_any_length_sum_as_the_whole(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            cuts in prop::collection::vec(0usize..600, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut c = Checksum::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                c.update(&bytes[at..cut]);
                at = cut;
            }
            prop_assert_eq!(c.finish(), checksum(&bytes));
        }

        /// A rotation done otherwise, as the guest does it (two shifts and
        /// an or), gives the same checksum in pieces of any length.
        #[test]
        #[allow(clippy::manual_rotate)] // the rotation by hand is the point
        fn update_with_a_rotation_done_otherwise_is_update(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            cut in 0usize..600,
        ) {
            let cut = cut.min(bytes.len());
            let shifts = |x: u64| (x << 29) | (x >> 35);
            let mut c = Checksum::new();
            c.update_with(&bytes[..cut], shifts);
            c.update_with(&bytes[cut..], shifts);
            prop_assert_eq!(c.finish(), checksum(&bytes));
        }

        /// Bytes that differ inside one word always differ in the register
        /// (before the fold to 32 bits).
        #[test]
        fn one_changed_word_always_changes_the_register(
            bytes in prop::collection::vec(any::<u8>(), 1..300),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let mut other = bytes.clone();
            let i = at.index(bytes.len());
            other[i] ^= flip;
            let (mut a, mut b) = (Checksum::new(), Checksum::new());
            a.update(&bytes);
            b.update(&other);
            a.update(&[0u8; 7][..(8 - bytes.len() % 8) % 8]);
            b.update(&[0u8; 7][..(8 - bytes.len() % 8) % 8]);
            prop_assert_ne!(a.h, b.h);
        }
    }
}
