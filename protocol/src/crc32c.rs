//! CRC-32C (Castagnoli, the `crc` crate's `CRC_32_ISCSI`: reflected,
//! polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF),
//! slicing by 16 over 8-byte loads.
//!
//! The same function as `crc::Crc::<u32, crc::Table<16>>` (the tests
//! compare them, and the host's model computes it with the `crc` crate on
//! its own), with the same 64 KiB of tables, written for the guest, where
//! QEMU's TCG emulates every instruction and every memory access costs a
//! software TLB lookup: the `crc` crate loads the 16 bytes of a block one
//! by one and checks four bounds per block (each check ends a translation
//! block); here a block is two 8-byte loads and sixteen table loads, with
//! no bounds check. Measured on the guest's reads (commit message): 18
//! instead of 32 loads per 16 bytes.

/// The reflected CRC-32C polynomial.
const POLY: u32 = 0x82F6_3B78;

/// `TABLES[0]` is the byte-at-a-time table; `TABLES[k][b]` is the CRC
/// state contribution of byte `b` followed by `k` zero bytes.
static TABLES: [[u32; 256]; 16] = tables();

const fn tables() -> [[u32; 256]; 16] {
    let mut t = [[0u32; 256]; 16];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// The table entry of byte `n` (0 = lowest) of `word`, for slice `k`.
#[inline(always)]
fn at(k: usize, word: u64, n: u32) -> u32 {
    TABLES[k][((word >> (8 * n)) & 0xff) as usize]
}

/// A CRC-32C computed piece by piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc32c {
    /// The register before the final xor.
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// An empty CRC.
    pub const fn new() -> Self {
        Crc32c { state: !0 }
    }

    /// Adds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.state;
        let mut blocks = bytes.chunks_exact(16);
        for block in &mut blocks {
            let (lo, hi) = block.split_at(8);
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(lo);
            b.copy_from_slice(hi);
            let a = u64::from_le_bytes(a) ^ u64::from(crc);
            let b = u64::from_le_bytes(b);
            crc = at(15, a, 0)
                ^ at(14, a, 1)
                ^ at(13, a, 2)
                ^ at(12, a, 3)
                ^ at(11, a, 4)
                ^ at(10, a, 5)
                ^ at(9, a, 6)
                ^ at(8, a, 7)
                ^ at(7, b, 0)
                ^ at(6, b, 1)
                ^ at(5, b, 2)
                ^ at(4, b, 3)
                ^ at(3, b, 4)
                ^ at(2, b, 5)
                ^ at(1, b, 6)
                ^ at(0, b, 7);
        }
        for &byte in blocks.remainder() {
            crc = (crc >> 8) ^ TABLES[0][((crc ^ u32::from(byte)) & 0xff) as usize];
        }
        self.state = crc;
    }

    /// The CRC of everything added.
    pub const fn finish(self) -> u32 {
        !self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(bytes: &[u8]) -> u32 {
        crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI).checksum(bytes)
    }

    fn ours(bytes: &[u8]) -> u32 {
        let mut c = Crc32c::new();
        c.update(bytes);
        c.finish()
    }

    #[test]
    fn check_value_and_every_short_length() {
        assert_eq!(ours(b"123456789"), 0xe306_9283);
        assert_eq!(ours(&[]), 0);
        let bytes: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..bytes.len() {
            assert_eq!(ours(&bytes[..len]), reference(&bytes[..len]), "len {len}");
        }
    }

    proptest! {
        #[test]
        fn equals_the_crc_crate_however_split(
            bytes in proptest::collection::vec(any::<u8>(), 0..5000),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut c = Crc32c::new();
            let mut at = 0;
            let mut cuts: Vec<usize> = cuts.iter().map(|x| x % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            for cut in cuts {
                c.update(&bytes[at..cut]);
                at = cut;
            }
            c.update(&bytes[at..]);
            prop_assert_eq!(c.finish(), reference(&bytes));
        }
    }
}
