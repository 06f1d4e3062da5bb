//! Invariants 5 and 6: each page's decoded state and bytes against the
//! model's.

use protocol::{Hello, PAGE_SIZE};

use super::entry::{decode_leaf, Leaf, PresentKind};
use super::memory::GuestMemory;
use super::violation::{Path, Step, Violation};
use super::walk::Walk;
use crate::model::{Expectations, ModelState};

/// Compares level-1 tables with the expectations as the walk finds them,
/// and remembers which 512-page regions had a table.
pub struct StateCheck<'a> {
    hello: &'a Hello,
    expect: &'a Expectations,
    covered: Vec<u64>,
    out: Vec<Violation>,
}

/// Whether a decoded entry is the expected state.
fn agrees(want: Option<ModelState>, got: Leaf) -> bool {
    match (want, got) {
        (None, Leaf::Unusable) | (Some(ModelState::AllocOnWrite), Leaf::AllocOnWrite) => true,
        (
            Some(ModelState::PresentRam { writable }),
            Leaf::Present {
                kind: PresentKind::Ram,
                writable: w,
                ..
            },
        ) => writable == w,
        (Some(ModelState::OnSwap { slot }), Leaf::OnSwap { slot: s }) => slot == s,
        (Some(ModelState::PresentMmap { private, .. }), Leaf::Present { kind, .. }) => {
            kind == if private {
                PresentKind::MmapPrivate
            } else {
                PresentKind::MmapClean
            }
        }
        (
            Some(ModelState::NotPresentMmap { file, page }),
            Leaf::NotPresentMmap { file: f, page: p },
        ) => (file, page) == (f, p),
        _ => false,
    }
}

/// Whether `virt` is in the heap region (an empty region holds nothing).
fn in_heap(hello: &Hello, virt: u64) -> bool {
    hello.heap.start != hello.heap.end && hello.heap.contains(virt)
}

/// Why a heap-region entry is wrong (formats.rs, "The heap region").
fn heap_entry(hello: &Hello, virt: u64, got: Leaf) -> Option<&'static str> {
    let inside = virt - hello.heap.start < hello.heap_max_bytes;
    match got {
        Leaf::Unusable if inside => Some("a heap page with a zero entry"),
        Leaf::Unusable => None,
        _ if !inside => Some("an entry past heap_max_bytes"),
        Leaf::AllocOnWrite => None,
        Leaf::Present {
            kind: PresentKind::Ram,
            writable: true,
            ..
        } => None,
        Leaf::Present { .. } => Some("a present heap page not writable kernel RAM"),
        _ => Some("a heap page neither allocate-on-write nor present RAM"),
    }
}

fn describe(s: Option<ModelState>) -> String {
    s.map_or("Unusable".into(), |s| format!("{s:?}"))
}

impl<'a> StateCheck<'a> {
    pub fn new(hello: &'a Hello, expect: &'a Expectations) -> Self {
        StateCheck {
            hello,
            expect,
            covered: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Compares the level-1 table covering pages `base..base + 512`.
    pub fn table(&mut self, base: u64, steps: &[Step], table: u64, entries: &[u64; 512]) {
        self.covered.push(base >> 9);
        let mut want = [None; 512];
        for (s, e, st) in self.expect.runs_in(base, base + 512) {
            for p in s..e {
                want[(p - base) as usize] = Some(st.nth(p - s));
            }
        }
        let lower = base < (1 << 35);
        for (i, &raw) in entries.iter().enumerate() {
            let virt = (base + i as u64) << 12;
            let got = decode_leaf(raw, lower);
            let path = || {
                let mut s = steps.to_vec();
                s.push(Step {
                    table,
                    index: i as u16,
                    raw,
                });
                Path { virt, steps: s }
            };
            if matches!(got, Leaf::Corrupt(_)) {
                continue;
            }
            if in_heap(self.hello, virt) {
                if let Some(why) = heap_entry(self.hello, virt, got) {
                    self.out.push(Violation::HeapEntry { path: path(), why });
                }
                continue;
            }
            if !agrees(want[i], got) {
                self.out.push(Violation::StateMismatch {
                    path: path(),
                    expected: describe(want[i]),
                    got: format!("{got:?}"),
                });
            } else if let (Leaf::Present { frame, .. }, Some(&f)) =
                (got, self.expect.known_frames.get(&virt))
            {
                if f != frame {
                    self.out.push(Violation::StateMismatch {
                        path: path(),
                        expected: format!("frame {f:#x} (as Query reported)"),
                        got: format!("frame {frame:#x}"),
                    });
                }
            }
        }
    }

    /// The violations found, plus the expected pages no table covers.
    pub fn finish(mut self) -> Vec<Violation> {
        self.covered.sort_unstable();
        for (start, pages, st) in self.expect.runs() {
            let (s, e) = (start >> 12, (start >> 12) + pages);
            let (lo, hi) = (s >> 9, (e - 1) >> 9);
            let from = self.covered.partition_point(|&r| r < lo);
            let to = self.covered.partition_point(|&r| r <= hi);
            let mut missing = pages;
            let mut first = None;
            let mut at = s;
            for &r in &self.covered[from..to] {
                let (rs, re) = ((r << 9).max(s), ((r + 1) << 9).min(e));
                if first.is_none() && rs > at {
                    first = Some(at);
                }
                missing -= re - rs;
                at = re;
            }
            if first.is_none() && at < e {
                first = Some(at);
            }
            if let Some(p) = first {
                self.out.push(Violation::MissingTable {
                    virt: p << 12,
                    pages: missing,
                    expected: describe(Some(st.nth(p - s))),
                });
            }
        }
        self.out
    }
}

/// Invariant 6: every present RAM page holds the bytes the model expects
/// (zeros where the host never wrote).
pub fn check_data(
    mem: &dyn GuestMemory,
    hello: &Hello,
    expect: &Expectations,
    walk: &Walk,
    out: &mut Vec<Violation>,
) {
    let mut buf = [0u8; PAGE_SIZE as usize];
    for t in &walk.translations {
        let kind_agrees = match expect.state(t.virt) {
            Some(ModelState::PresentRam { .. }) => t.kind == PresentKind::Ram,
            Some(ModelState::PresentMmap { private, .. }) => {
                t.kind
                    == if private {
                        PresentKind::MmapPrivate
                    } else {
                        PresentKind::MmapClean
                    }
            }
            _ => false,
        };
        if !kind_agrees || in_heap(hello, t.virt) || t.frame >> 12 >= hello.total_frames {
            continue;
        }
        let Some(want) = super::mmap::expected_page(mem, hello, expect, t.virt) else {
            continue;
        };
        if let Err(error) = mem.read(t.frame, &mut buf) {
            let what = format!("the frame {:#x} of page {:#x}", t.frame, t.virt);
            out.push(Violation::Unreadable { what, error });
            continue;
        }
        if buf == *want {
            continue;
        }
        if let Some(offset) = buf.iter().zip(want.iter()).position(|(a, b)| a != b) {
            out.push(Violation::DataMismatch {
                path: t.path(),
                frame: t.frame,
                offset: offset as u64,
                expected: want[offset],
                got: buf[offset],
            });
        }
    }
}
