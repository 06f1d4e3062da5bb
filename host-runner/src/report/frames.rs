//! The picture of physical memory: the frame bitmap as a grid (a row per
//! MiB), each frame coloured by who owns it as the checker's walk found
//! it, the frames the failure names outlined.

use std::collections::BTreeSet;

use maud::{html, Markup};
use oracle::Walk;
use protocol::{Hello, PhysRange};

/// Frames in a row (1 MiB).
const COLS: u64 = 256;
const W: u64 = 3;
const H: u64 = 7;
const LABEL: u64 = 56;

/// A frame's owner and allocator bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    Free,
    Data,
    PageTable,
    Heap,
    SwapStore,
    Host,
    Kernel,
    /// Used in the bitmap, but nothing owns it (a leak).
    UsedUnowned,
    /// Owned, but free in the bitmap.
    FreeButOwned,
}

impl FrameKind {
    pub const ALL: [FrameKind; 9] = [
        FrameKind::Free,
        FrameKind::Data,
        FrameKind::PageTable,
        FrameKind::Heap,
        FrameKind::SwapStore,
        FrameKind::Host,
        FrameKind::Kernel,
        FrameKind::UsedUnowned,
        FrameKind::FreeButOwned,
    ];

    pub fn class(self) -> &'static str {
        match self {
            FrameKind::Free => "fr-free",
            FrameKind::Data => "fr-data",
            FrameKind::PageTable => "fr-table",
            FrameKind::Heap => "fr-heap",
            FrameKind::SwapStore => "fr-swap",
            FrameKind::Host => "fr-host",
            FrameKind::Kernel => "fr-kernel",
            FrameKind::UsedUnowned => "fr-leak",
            FrameKind::FreeButOwned => "fr-conflict",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameKind::Free => "free",
            FrameKind::Data => "data page",
            FrameKind::PageTable => "page table",
            FrameKind::Heap => "heap",
            FrameKind::SwapStore => "swap store",
            FrameKind::Host => "host frame",
            FrameKind::Kernel => "kernel / boot reserved",
            FrameKind::UsedUnowned => "used, no owner",
            FrameKind::FreeButOwned => "owned, but free in the bitmap",
        }
    }
}

/// Every frame's kind, and the frames (numbers) the failure names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameMap {
    pub kinds: Vec<FrameKind>,
    pub named: BTreeSet<u64>,
}

fn frames_of(r: PhysRange) -> std::ops::Range<u64> {
    (r.start >> 12)..r.end.div_ceil(4096)
}

/// The kinds of `hello.total_frames` frames from the bitmap's bytes, the
/// checker's walk (tables and translations), the host's frames (physical
/// addresses) and the boot layout in `hello`. `named`: physical addresses.
pub fn build(
    hello: &Hello,
    bitmap: &[u8],
    walk: &Walk,
    host: &BTreeSet<u64>,
    named: &[u64],
) -> FrameMap {
    let total = hello.total_frames;
    let mut owner: Vec<Option<FrameKind>> = vec![None; total as usize];
    let mut set = |n: u64, k: FrameKind| {
        if let Some(o) = owner.get_mut(n as usize) {
            o.get_or_insert(k);
        }
    };
    set(hello.page_table_root >> 12, FrameKind::PageTable);
    for t in &walk.tables {
        set(t.frame >> 12, FrameKind::PageTable);
    }
    let heap = hello.heap;
    for t in &walk.translations {
        let in_heap = t.virt >= heap.start && t.virt < heap.end;
        set(
            t.frame >> 12,
            if in_heap {
                FrameKind::Heap
            } else {
                FrameKind::Data
            },
        );
    }
    for &f in host {
        set(f >> 12, FrameKind::Host);
    }
    for n in frames_of(hello.swap) {
        set(n, FrameKind::SwapStore);
    }
    let kernel = [
        hello.kernel_image,
        hello.frame_bitmap,
        hello.frame_info,
        hello.ring,
    ];
    for r in hello.boot_reserved.iter().chain(&kernel) {
        for n in frames_of(*r) {
            set(n, FrameKind::Kernel);
        }
    }
    let used = |n: u64| {
        bitmap
            .get((n / 8) as usize)
            .is_none_or(|b| b >> (n % 8) & 1 == 1)
    };
    let kinds = (0..total)
        .map(|n| match (owner[n as usize], used(n)) {
            (Some(k), true) => k,
            (Some(_), false) => FrameKind::FreeButOwned,
            (None, true) => FrameKind::UsedUnowned,
            (None, false) => FrameKind::Free,
        })
        .collect();
    FrameMap {
        kinds,
        named: named
            .iter()
            .map(|a| a >> 12)
            .filter(|&n| n < total)
            .collect(),
    }
}

/// The runs of one kind in frames `first..end`: (first, count, kind).
fn runs(kinds: &[FrameKind], first: u64, end: u64) -> Vec<(u64, u64, FrameKind)> {
    let mut out: Vec<(u64, u64, FrameKind)> = Vec::new();
    for n in first..end {
        let k = kinds[n as usize];
        match out.last_mut() {
            Some((_, count, last)) if *last == k => *count += 1,
            _ => out.push((n, 1, k)),
        }
    }
    out
}

/// The grid: a row per MiB, runs of a kind drawn as one bar, the named
/// frames outlined (each with its id, `f-<frame number in hex>`).
pub fn markup(map: &FrameMap) -> Markup {
    let total = map.kinds.len() as u64;
    let rows = total.div_ceil(COLS);
    html! {
        div class="legend" {
            @for k in FrameKind::ALL {
                span { span class=(format!("swatch {}", k.class())) {} (k.name()) }
            }
            span { span class="swatch named-key" {} "named by the failure" }
        }
        svg class="frames" width=(LABEL + COLS * W + 4) height=(rows * H + 4)
            role="img" aria-label="physical memory, a row per MiB" {
            @for row in 0..rows {
                @let y = 2 + row * H;
                @if row % 8 == 0 {
                    text x="0" y=(y + H) class="label" { (row) " MiB" }
                }
                @for (first, count, kind) in runs(&map.kinds, row * COLS, total.min((row + 1) * COLS)) {
                    rect class=(kind.class()) data-first=(first) data-count=(count)
                        x=(LABEL + (first % COLS) * W) y=(y) width=(count * W) height=(H - 1) {
                        title { (format!("frames {:#x}–{:#x}: {}", first << 12, (first + count) << 12, kind.name())) }
                    }
                }
            }
            @for &n in &map.named {
                rect id=(format!("f-{n:x}")) class="named" data-kind=(map.kinds[n as usize].name())
                    x=(LABEL + (n % COLS) * W - 2) y=(2 + (n / COLS) * H - 2) width=(W + 4) height=(H + 3) {
                    title { (format!("frame {:#x}: {} (named by the failure)", n << 12, map.kinds[n as usize].name())) }
                }
            }
        }
    }
}
