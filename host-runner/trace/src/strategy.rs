//! Where generated requests point and how big they are: the addresses and
//! counts that break VMMs (page-table boundaries, reused and overlapping
//! ranges, the user/kernel boundary, the canonical hole, zero and huge
//! counts, misalignment, memory pressure).

use protocol::{Hello, MAX_ALLOC_FRAMES, MAX_QUERY_PAGES, MAX_TOUCH_LEN, PAGE_SIZE};
use rand::seq::IndexedRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The end of the lower canonical half (user space).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The start of the upper canonical half.
pub const HIGH_HALF: u64 = 0xffff_8000_0000_0000;
/// The kernel's request space (see `protocol::semantics`).
pub const KERNEL_START: u64 = 0xffff_c080_0000_0000;
pub const KERNEL_END: u64 = 0xffff_ff80_0000_0000;
/// What a 2 MiB, 1 GiB and 512 GiB table covers.
pub const BOUNDARIES: [u64; 3] = [1 << 21, 1 << 30, 1 << 39];

/// Address-space facts the generator aims at: the defaults, refined by the
/// guest's `Hello` when the runner feeds it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Targets {
    pub ram_pages: u64,
    /// The kernel heap's maximum size in bytes (a quarter of RAM until the
    /// guest's `Hello` says).
    pub heap_bytes: u64,
    /// Edges worth hitting besides the fixed ones (heap, valloc region).
    pub edges: Vec<u64>,
}

impl Targets {
    pub fn new(ram_mib: u32) -> Self {
        Targets {
            ram_pages: u64::from(ram_mib) * 256,
            heap_bytes: u64::from(ram_mib) * (1 << 20) / 4,
            edges: Vec::new(),
        }
    }

    pub fn learn(&mut self, hello: &Hello) {
        // Clamped: the counts drawn from it are multiplied by 2 and by the
        // page size, and a buggy guest may report anything.
        self.ram_pages = hello.total_frames.clamp(1, 1 << 36);
        self.heap_bytes = hello.heap_max_bytes.clamp(PAGE_SIZE, 1 << 48);
        self.edges = [hello.heap, hello.valloc, hello.kernel_space]
            .iter()
            .flat_map(|r| [r.start, r.end])
            .filter(|&a| a != 0)
            .collect();
    }
}

/// A count of pages (or frames): mostly small, sometimes around table
/// sizes, large enough to press on memory, zero, or absurd.
pub(crate) fn pages(rng: &mut ChaCha8Rng, t: &Targets) -> u64 {
    match rng.random_range(0..100) {
        0..55 => rng.random_range(1..=16),
        55..68 => rng.random_range(17..=600),
        68..76 => *[511, 512, 513, 262_143, 262_144, 262_145]
            .choose(rng)
            .unwrap_or(&512),
        76..88 => rng.random_range(t.ram_pages / 4..=t.ram_pages * 2),
        88..92 => 0,
        92..96 => *[u64::MAX, u64::MAX / PAGE_SIZE, 1 << 36, 1 << 52]
            .choose(rng)
            .unwrap_or(&u64::MAX),
        _ => *[
            MAX_QUERY_PAGES,
            MAX_QUERY_PAGES + 1,
            MAX_ALLOC_FRAMES,
            MAX_ALLOC_FRAMES + 1,
        ]
        .choose(rng)
        .unwrap_or(&MAX_QUERY_PAGES),
    }
}

/// A byte length for `Write`/`Read`: within a page, across one, a few
/// pages, enough to press on memory, zero, or over the limit.
pub(crate) fn len(rng: &mut ChaCha8Rng, t: &Targets, range_bytes: u64) -> u64 {
    match rng.random_range(0..100) {
        0..30 => rng.random_range(1..=64),
        30..45 => PAGE_SIZE + rng.random_range(0..=2) - 1,
        45..75 if range_bytes > 0 => rng.random_range(1..=range_bytes.min(MAX_TOUCH_LEN)),
        45..85 => rng.random_range(1..=16 * PAGE_SIZE),
        85..93 => (t.ram_pages * PAGE_SIZE / 2).clamp(1, MAX_TOUCH_LEN),
        93..97 => 0,
        _ => *[MAX_TOUCH_LEN, MAX_TOUCH_LEN + 1, u64::MAX]
            .choose(rng)
            .unwrap_or(&u64::MAX),
    }
}

fn page_back(addr: u64, pages: u64) -> u64 {
    addr.wrapping_sub(pages.wrapping_mul(PAGE_SIZE))
}

/// An address near a page-table boundary, so that a range of `pages`
/// starts, ends or crosses it.
fn boundary(rng: &mut ChaCha8Rng, pages: u64) -> u64 {
    let size = *BOUNDARIES.choose(rng).unwrap_or(&BOUNDARIES[0]);
    let base = if rng.random_bool(0.6) {
        0
    } else {
        KERNEL_START
    };
    let limit = if base == 0 {
        USER_END / size - 1
    } else {
        (KERNEL_END - KERNEL_START) / size - 1
    };
    let k = if rng.random_bool(0.7) {
        rng.random_range(1..=8.min(limit))
    } else {
        rng.random_range(1..=limit)
    };
    let edge = base + k * size;
    let span = pages.min(1 << 20);
    let back = *[0, 1, span / 2, span, span + 1].choose(rng).unwrap_or(&1);
    if rng.random_bool(0.15) {
        edge + PAGE_SIZE
    } else {
        page_back(edge, back)
    }
}

/// An address in the special places of the address space: the user/kernel
/// boundary, the canonical hole, the edges of the kernel request space and
/// of the regions the guest reported, the top of the address space.
fn special(rng: &mut ChaCha8Rng, pages: u64, t: &Targets) -> u64 {
    let span = pages.min(1 << 30);
    match rng.random_range(0..7) {
        0 => page_back(
            USER_END,
            *[1, span, span.saturating_sub(1)].choose(rng).unwrap_or(&1),
        ),
        1 => USER_END + rng.random_range(0..(HIGH_HALF - USER_END) / PAGE_SIZE) * PAGE_SIZE,
        2 => *[
            HIGH_HALF,
            page_back(HIGH_HALF, 1),
            page_back(HIGH_HALF, span),
        ]
        .choose(rng)
        .unwrap_or(&HIGH_HALF),
        3 => page_back(KERNEL_START, *[0, 1, span / 2].choose(rng).unwrap_or(&0)),
        4 => page_back(
            KERNEL_END,
            *[span, span + 1, span.saturating_sub(1), 0]
                .choose(rng)
                .unwrap_or(&span),
        ),
        5 if !t.edges.is_empty() => page_back(
            *t.edges.choose(rng).unwrap_or(&KERNEL_START),
            rng.random_range(0..=span.min(4)),
        ),
        _ => *[0, !(PAGE_SIZE - 1), 0x1234_5000, 0x1230_0000]
            .choose(rng)
            .unwrap_or(&0),
    }
}

/// An ordinary address: low user space, or the start of kernel space.
fn plain(rng: &mut ChaCha8Rng) -> u64 {
    let page = if rng.random_bool(0.7) {
        rng.random_range(0..1 << 14)
    } else {
        rng.random_range(0..1 << 24)
    };
    let base = if rng.random_bool(0.7) {
        0
    } else {
        KERNEL_START
    };
    base + page * PAGE_SIZE
}

/// A range that reuses `prev` (`addr`, `pages`): the same range, a partial
/// overlap on either side, a part of it, or its neighbour.
fn reuse(rng: &mut ChaCha8Rng, prev: (u64, u64), pages: u64) -> u64 {
    let (addr, old) = prev;
    let old = old.clamp(1, 1 << 30);
    match rng.random_range(0..5) {
        0 => addr,
        1 => page_back(addr, rng.random_range(1..=pages.clamp(1, 1 << 30))),
        2 => addr.wrapping_add(rng.random_range(0..old) * PAGE_SIZE),
        3 => addr.wrapping_add(old * PAGE_SIZE),
        _ => addr
            .wrapping_add(rng.random_range(1..=old) * PAGE_SIZE)
            .wrapping_sub(PAGE_SIZE),
    }
}

/// The start of a page range of `pages`, given the ranges used before.
pub(crate) fn range_addr(
    rng: &mut ChaCha8Rng,
    pages: u64,
    used: &[(u64, u64)],
    t: &Targets,
) -> u64 {
    let roll = rng.random_range(0..100);
    let addr = match used.choose(rng) {
        Some(&prev) if roll < 30 => reuse(rng, prev, pages),
        _ if roll < 52 => boundary(rng, pages),
        _ if roll < 68 => special(rng, pages, t),
        _ => plain(rng),
    };
    misalign(rng, addr, 0.04)
}

/// Sometimes moves `addr` off its page alignment.
pub(crate) fn misalign(rng: &mut ChaCha8Rng, addr: u64, p: f64) -> u64 {
    if rng.random_bool(p) {
        addr.wrapping_add(*[1, 8, 2048, PAGE_SIZE - 1].choose(rng).unwrap_or(&1))
    } else {
        addr
    }
}
