//! Parts of guest memory the checker keeps as read (the frame-info table,
//! the swap store's bookkeeping): megabytes of mostly zero words, kept as
//! a [`Mirror`] that an in-place scan of guest memory brings up to date,
//! naming the words that changed, without copying the zeros.

use super::memory::{GuestMemory, MemoryError};

/// The little-endian word `i` of `b` (zero-padded at the end).
pub fn word(b: &[u8], i: usize) -> u64 {
    let at = i * 8;
    match b.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().expect("8 bytes")),
        None => {
            let mut w = [0u8; 8];
            let tail = b.get(at..).unwrap_or(&[]);
            w[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(w)
        }
    }
}

/// Sets the little-endian word `i` of `b` (its bytes inside `b`).
fn set_word(b: &mut [u8], i: usize, w: u64) {
    let at = (i * 8).min(b.len());
    let end = (at + 8).min(b.len());
    b[at..end].copy_from_slice(&w.to_le_bytes()[..end - at]);
}

/// A copy of `len` bytes of guest memory: the bytes, and the indexes of
/// their non-zero little-endian words in order (every other word is zero).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    pub bytes: Vec<u8>,
    nonzero: Vec<usize>,
    /// The last scan's findings (a reused buffer).
    found: Vec<(usize, u64)>,
}

impl Mirror {
    /// Makes it the copy of `len` bytes at `phys`, calling `changed(word
    /// index, old, new)` for each word that differs from the copy it held
    /// (a copy of another length counts as all zeros). Guest memory is
    /// scanned in place ([`GuestMemory::nonzero_words`]); only the words
    /// that are or were non-zero are written. On an error it is left as
    /// it was.
    pub fn sync(
        &mut self,
        mem: &dyn GuestMemory,
        phys: u64,
        len: u64,
        mut changed: impl FnMut(usize, u64, u64),
    ) -> Result<(), MemoryError> {
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        let scan = mem.nonzero_words(phys, len, &mut |i, w| found.push((i, w)));
        if let Err(e) = scan {
            self.found = found;
            return Err(e);
        }
        if self.bytes.len() as u64 != len {
            self.bytes.clear();
            self.bytes.resize(len as usize, 0);
            self.nonzero.clear();
        }
        // The words non-zero before and not now become zero; the others
        // take their new value. Both lists are in order: one merge.
        let mut new = found.iter().peekable();
        for &i in &self.nonzero {
            while let Some(&&(j, w)) = new.peek().filter(|&&&(j, _)| j < i) {
                changed(j, 0, w);
                set_word(&mut self.bytes, j, w);
                new.next();
            }
            let old = word(&self.bytes, i);
            let now = match new.peek() {
                Some(&&(j, w)) if j == i => {
                    new.next();
                    w
                }
                _ => 0,
            };
            if old != now {
                changed(i, old, now);
                set_word(&mut self.bytes, i, now);
            }
        }
        for &(j, w) in new {
            changed(j, 0, w);
            set_word(&mut self.bytes, j, w);
        }
        self.nonzero.clear();
        self.nonzero.extend(found.iter().map(|&(i, _)| i));
        self.found = found;
        Ok(())
    }

    /// The indexes of the non-zero words, in order.
    pub fn nonzero(&self) -> &[usize] {
        &self.nonzero
    }

    /// The little-endian word `i` (zero-padded at the end).
    pub fn word(&self, i: usize) -> u64 {
        word(&self.bytes, i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::memory::ImageMemory;
    use super::*;

    /// Syncs `m` with `bytes`; answers the changes it named.
    fn sync(m: &mut Mirror, bytes: &[u8]) -> Vec<(usize, u64, u64)> {
        let mut seen = Vec::new();
        let mem = ImageMemory {
            base: 0,
            bytes: bytes.to_vec(),
        };
        m.sync(&mem, 0, bytes.len() as u64, |i, a, b| seen.push((i, a, b)))
            .unwrap();
        assert_eq!(m.bytes, bytes, "the mirror is a copy");
        seen
    }

    #[test]
    fn a_mirror_names_every_changed_word_and_stays_a_copy() {
        let mut mem = vec![0u8; 4096 + 3];
        let mut m = Mirror::default();
        assert!(sync(&mut m, &mem).is_empty());
        mem[8 * 9] = 1;
        mem[8 * 300 + 7] = 2;
        mem[4096 + 2] = 3;
        assert_eq!(
            sync(&mut m, &mem),
            [(9, 0, 1), (300, 0, 2 << 56), (512, 0, 3 << 16)]
        );
        assert_eq!(m.nonzero(), [9, 300, 512]);
        // One word changes value, one becomes zero, one appears between.
        mem[8 * 9] = 4;
        mem[8 * 300 + 7] = 0;
        mem[8 * 100] = 5;
        assert_eq!(
            sync(&mut m, &mem),
            [(9, 1, 4), (100, 0, 5), (300, 2 << 56, 0)]
        );
        assert!(sync(&mut m, &mem).is_empty(), "nothing changed since");
        assert_eq!(m.word(100), 5);
        // A failed read leaves it as it was.
        let image = ImageMemory {
            base: 0,
            bytes: mem.clone(),
        };
        assert!(m.sync(&image, 8, mem.len() as u64, |_, _, _| {}).is_err());
        assert_eq!(m.bytes, mem);
        assert_eq!(m.nonzero(), [9, 100, 512]);
        // Another length: a copy of zeros before.
        let seen = sync(&mut m, &mem[..16]);
        assert!(seen.is_empty() && m.nonzero().is_empty(), "{seen:?}");
    }
}
