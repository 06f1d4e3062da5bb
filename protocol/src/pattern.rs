//! The data both sides agree on: the byte pattern a `Write` puts in memory
//! and the checksum a `Read` answers ([`checksum`](mod@checksum)).
//!
//! Each byte depends only on the seed and its own virtual address, so the
//! host can predict any byte of memory from the history of writes, whatever
//! their overlap, alignment and length.

mod checksum;

pub use checksum::{Checksum, K};

/// The 8 pattern bytes of `seed` for the 8-byte-aligned word at `word_addr`
/// (little endian: byte `i` of the word is the byte at `word_addr + i`).
#[inline]
pub fn pattern_word(seed: u64, word_addr: u64) -> u64 {
    // splitmix64 finalizer over the seed mixed with the word's address.
    mix64(seed ^ (word_addr >> 3).wrapping_mul(K))
}

/// splitmix64's finalizer: a bijection of 64-bit words whose every output
/// bit depends on every input bit (the pattern's words, and the checksum's
/// last step).
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pattern byte of `seed` at virtual address `addr`.
#[inline]
pub fn pattern_byte(seed: u64, addr: u64) -> u8 {
    pattern_word(seed, addr & !7).to_le_bytes()[(addr & 7) as usize]
}

/// Fills `buf` with the pattern of `seed` as it stands at `addr..`.
pub fn fill(seed: u64, addr: u64, buf: &mut [u8]) {
    let mut i = 0usize;
    // Unaligned head, byte by byte.
    while i < buf.len() && (addr.wrapping_add(i as u64)) & 7 != 0 {
        buf[i] = pattern_byte(seed, addr.wrapping_add(i as u64));
        i += 1;
    }
    // Aligned words, eight a turn (as `Checksum`'s words: under TCG a turn
    // of the loop costs a translation block and, in the guest, a coverage
    // counter), then one by one.
    let mut eights = buf[i..].chunks_exact_mut(64);
    for c in &mut eights {
        for w in c.chunks_exact_mut(8) {
            w.copy_from_slice(&pattern_word(seed, addr.wrapping_add(i as u64)).to_le_bytes());
            i += 8;
        }
    }
    while i + 8 <= buf.len() {
        let word = pattern_word(seed, addr.wrapping_add(i as u64));
        buf[i..i + 8].copy_from_slice(&word.to_le_bytes());
        i += 8;
    }
    // Tail.
    while i < buf.len() {
        buf[i] = pattern_byte(seed, addr.wrapping_add(i as u64));
        i += 1;
    }
}

/// The checksum a `Read` answers ([`Checksum`]: a polynomial hash of
/// the bytes in address order, protocol version 7).
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut c = Checksum::new();
    c.update(bytes);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_matches_pattern_byte_at_every_alignment() {
        for addr in 0x1000u64..0x1010 {
            // Past 2 × 64 bytes: the head, turns of eight words, the
            // words after them and the tail.
            for len in (0..40).chain(120..200) {
                let mut buf = vec![0u8; len];
                fill(42, addr, &mut buf);
                for (i, b) in buf.iter().enumerate() {
                    assert_eq!(
                        *b,
                        pattern_byte(42, addr + i as u64),
                        "addr {addr:#x} i {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn seeds_and_addresses_give_different_bytes() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill(1, 0x4000, &mut a);
        fill(2, 0x4000, &mut b);
        assert_ne!(a, b);
        fill(1, 0x5000, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn chunked_checksum_equals_whole() {
        let mut buf = vec![0u8; 10_000];
        fill(7, 0x1234_5000, &mut buf);
        let mut c = Checksum::new();
        for chunk in buf.chunks(333) {
            c.update(chunk);
        }
        assert_eq!(c.finish(), checksum(&buf));
    }
}
