//! The frame allocator's bitmap, read as words, and the boot reservations
//! as the same kind of bitmap.

use protocol::Hello;

use super::memory::GuestMemory;
use super::violation::Violation;

/// The frame bitmap as read from guest memory: bit `n` of word `n / 64`
/// is frame `n` (formats: LSB first, 1 = used); the bytes past its end
/// read as 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitmap {
    pub words: Vec<u64>,
    pub total: u64,
}

/// The mask of the bits of word `w` that are frames below `total`.
pub fn frame_mask(w: usize, total: u64) -> u64 {
    let first = w as u64 * 64;
    match total.saturating_sub(first) {
        n if n >= 64 => u64::MAX,
        n => (1u64 << n) - 1,
    }
}

impl Bitmap {
    /// Reads the bitmap at `hello.frame_bitmap` into `words` (reused).
    pub fn read(
        mem: &dyn GuestMemory,
        hello: &Hello,
        mut words: Vec<u64>,
        out: &mut Vec<Violation>,
    ) -> Option<Bitmap> {
        let total = hello.total_frames;
        let len = total.div_ceil(8);
        let range = hello.frame_bitmap;
        if range.end.saturating_sub(range.start) < len {
            let why = format!(
                "{:#x}..{:#x} cannot hold {total} bits",
                range.start, range.end
            );
            out.push(Violation::BadBitmap { why });
            return None;
        }
        // Whole words straight into `words`; the bytes of a last partial
        // word after 0xff.
        let whole = (len / 8) as usize;
        words.resize(whole, 0);
        let mut last = [0xffu8; 8];
        let tail = &mut last[..(len % 8) as usize];
        let read = mem.read_words(range.start, &mut words).and_then(|()| {
            if tail.is_empty() {
                return Ok(());
            }
            mem.read(range.start + len / 8 * 8, tail)
        });
        if let Err(error) = read {
            let what = format!("the frame bitmap at {:#x}", range.start);
            out.push(Violation::Unreadable { what, error });
            return None;
        }
        if len % 8 != 0 {
            words.push(u64::from_le_bytes(last));
        }
        let bitmap = Bitmap { words, total };
        bitmap.check_tail(out);
        Some(bitmap)
    }

    /// The bits past the last frame must be 1.
    pub fn check_tail(&self, out: &mut Vec<Violation>) {
        let w = (self.total / 64) as usize;
        for (k, &word) in self.words.iter().enumerate().skip(w) {
            let free = !word & !frame_mask(k, self.total);
            if free != 0 {
                let bit = k as u64 * 64 + u64::from(free.trailing_zeros());
                let why = format!("bit {bit} past the last frame is 0");
                out.push(Violation::BadBitmap { why });
                return;
            }
        }
    }

    /// Whether frame number `n` (below `total`) is marked used.
    pub fn used(&self, n: u64) -> bool {
        n < self.total && self.words[(n / 64) as usize] >> (n % 64) & 1 == 1
    }
}

/// Whether frame number `n` is reserved at boot, counting a frame that a
/// reservation covers in part (invariant 3's reading).
pub fn boot_covers(hello: &Hello, n: u64) -> bool {
    hello
        .boot_reserved
        .iter()
        .any(|r| r.start >> 12 <= n && n < r.end.div_ceil(4096))
}

/// Whether the frame at address `frame` is inside a boot reservation
/// (invariant 2's reading: a page or table may not use it).
pub fn boot_holds(hello: &Hello, frame: u64) -> bool {
    hello.boot_reserved.iter().any(|r| r.contains(frame))
}

/// Sets bits `a..b` of `words`.
pub fn set_range(words: &mut [u64], a: u64, b: u64) {
    let mut n = a;
    while n < b {
        let (w, bit) = ((n / 64) as usize, n % 64);
        let len = (64 - bit).min(b - n);
        let mask = if len == 64 {
            u64::MAX
        } else {
            ((1u64 << len) - 1) << bit
        };
        if let Some(x) = words.get_mut(w) {
            *x |= mask;
        }
        n += len;
    }
}

/// The frames reserved at boot (invariant 3's reading), as bitmap words
/// in `words` (reused).
pub fn boot_words(hello: &Hello, words: &mut Vec<u64>) {
    let total = hello.total_frames;
    words.clear();
    words.resize(total.div_ceil(64) as usize, 0);
    for r in &hello.boot_reserved {
        let (a, b) = ((r.start >> 12).min(total), r.end.div_ceil(4096).min(total));
        set_range(words, a, b);
    }
}
