//! The frame bitmap and frame ownership: invariants 1, 2 and 3.

use std::collections::HashMap;

use protocol::Hello;

use super::memory::GuestMemory;
use super::violation::{Path, Violation};
use crate::model::Expectations;

/// How many frames a leak report lists.
const SAMPLE: usize = 8;

/// The frame allocator's bitmap, as read from guest memory.
#[derive(Clone, Debug)]
pub struct Bitmap {
    bytes: Vec<u8>,
    total: u64,
}

impl Bitmap {
    /// Reads the bitmap at `hello.frame_bitmap` (formats: LSB first, 1 = used).
    pub fn read(mem: &dyn GuestMemory, hello: &Hello, out: &mut Vec<Violation>) -> Option<Bitmap> {
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
        let mut bytes = vec![0u8; len as usize];
        if let Err(error) = mem.read(range.start, &mut bytes) {
            let what = format!("the frame bitmap at {:#x}", range.start);
            out.push(Violation::Unreadable { what, error });
            return None;
        }
        let bitmap = Bitmap { bytes, total };
        if let Some(bit) = (total..len * 8).find(|&b| !bitmap.bit(b)) {
            let why = format!("bit {bit} past the last frame is 0");
            out.push(Violation::BadBitmap { why });
        }
        Some(bitmap)
    }

    fn bit(&self, n: u64) -> bool {
        self.bytes[(n / 8) as usize] >> (n % 8) & 1 == 1
    }

    /// Whether frame number `n` (below `total`) is marked used.
    pub fn used(&self, n: u64) -> bool {
        n < self.total && self.bit(n)
    }
}

/// Who owns a frame the walk found: a table (its level and first address)
/// or a data page (its address). Named in words only when a violation
/// needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Table { level: u8, virt: u64 },
    Page { virt: u64 },
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Table { level, virt } => write!(f, "the level-{level} table for {virt:#x}"),
            Owner::Page { virt } => write!(f, "mapped at {virt:#x}"),
        }
    }
}

/// Frames and who owns them, built while checking invariants 1 and 2.
pub struct Owners<'a> {
    hello: &'a Hello,
    expect: &'a Expectations,
    bitmap: &'a Bitmap,
    /// Tables and pages found by the walk: frame number → owner.
    walked: HashMap<u64, Owner>,
}

impl<'a> Owners<'a> {
    pub fn new(hello: &'a Hello, expect: &'a Expectations, bitmap: &'a Bitmap) -> Self {
        Owners {
            hello,
            expect,
            bitmap,
            walked: HashMap::new(),
        }
    }

    fn boot(&self, frame: u64) -> bool {
        self.hello.boot_reserved.iter().any(|r| r.contains(frame))
    }

    /// Claims `frame` (an address) for `owner`; reports invariants 1 and 2.
    /// `boot_ok`: the frame may be a boot reservation (the heap's tables and
    /// pages are set up at boot).
    pub fn claim(
        &mut self,
        frame: u64,
        what: &'static str,
        (owner, boot_ok): (Owner, bool),
        path: impl Fn() -> Path,
        out: &mut Vec<Violation>,
    ) {
        let n = frame >> 12;
        if n >= self.bitmap.total {
            out.push(Violation::FrameBeyondRam {
                path: path(),
                frame,
                what,
            });
            return;
        }
        if !self.bitmap.used(n) {
            out.push(Violation::FrameFree {
                path: path(),
                frame,
                what,
            });
        }
        let other = if self.boot(frame) && !boot_ok {
            Some("a boot reservation".to_string())
        } else if self.expect.host_frames.contains(&frame) {
            Some("held by the host".to_string())
        } else {
            self.walked.get(&n).map(ToString::to_string)
        };
        match other {
            Some(other) => out.push(Violation::FrameShared {
                path: path(),
                frame,
                what,
                other,
            }),
            None => {
                self.walked.insert(n, owner);
            }
        }
    }

    /// Invariant 3: the used frames are exactly the owned ones.
    pub fn leaks(&self, out: &mut Vec<Violation>) {
        let total = self.bitmap.total;
        let mut owned = vec![false; total as usize];
        let mut reserved = vec![false; total as usize];
        for r in &self.hello.boot_reserved {
            let (a, b) = ((r.start >> 12).min(total), r.end.div_ceil(4096).min(total));
            if a < b {
                reserved[a as usize..b as usize].fill(true);
            }
        }
        for &f in &self.expect.host_frames {
            if let Some(x) = reserved.get_mut((f >> 12) as usize) {
                *x = true;
            }
        }
        for &n in self.walked.keys() {
            owned[n as usize] = true;
        }
        let (mut leaked, mut lost) = (Vec::new(), Vec::new());
        for n in 0..total {
            let used = self.bitmap.used(n);
            if used && !owned[n as usize] && !reserved[n as usize] {
                leaked.push(n << 12);
            } else if !used && reserved[n as usize] {
                lost.push(n << 12);
            }
        }
        if !leaked.is_empty() || !lost.is_empty() {
            out.push(Violation::Leak {
                leaked: leaked.len() as u64,
                leaked_sample: leaked.into_iter().take(SAMPLE).collect(),
                lost: lost.len() as u64,
                lost_sample: lost.into_iter().take(SAMPLE).collect(),
            });
        }
    }
}
