//! Level-1 entries: each one's decoded state against the model's
//! (invariants 4 and 5), the heap region's rules, and the expected pages
//! no table covers.

use std::iter::Peekable;

use protocol::Hello;

use super::entry::{decode_leaf, Leaf, PresentKind, W};
use super::violation::{Path, Step, Violation};
use super::walk::{Table, Translation};
use crate::model::keys::is_user;
use crate::model::{Expected, ModelState};

/// Whether a decoded entry is the expected state.
fn agrees(want: Option<ModelState>, got: Leaf) -> bool {
    match (want, got) {
        (None, Leaf::Unusable) | (Some(ModelState::AllocOnWrite), Leaf::AllocOnWrite) => true,
        (
            Some(ModelState::PresentRam {
                writable,
                executable,
            }),
            Leaf::Present {
                kind: PresentKind::Ram,
                writable: w,
                executable: x,
                ..
            },
        ) => (writable, executable) == (w, x),
        (
            Some(ModelState::PinnedRam { writable }),
            Leaf::Present {
                kind: PresentKind::PinnedRam,
                writable: w,
                ..
            },
        ) => writable == w,
        (Some(ModelState::PinnedAllocOnWrite), Leaf::PinnedAllocOnWrite) => true,
        (
            Some(ModelState::Shared { writable, .. }),
            Leaf::Present {
                kind: PresentKind::Shared,
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
pub(crate) fn in_heap(hello: &Hello, virt: u64) -> bool {
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
            executable: false,
            ..
        } => None,
        Leaf::Present { .. } => Some("a present heap page not writable data (NX) kernel RAM"),
        _ => Some("a heap page neither allocate-on-write nor present RAM"),
    }
}

/// Whether `virt` is a page of the heap region below `heap_max_bytes`
/// (whose entry, when the heap has not allocated it, is allocate-on-write).
fn heap_page(hello: &Hello, virt: u64) -> bool {
    in_heap(hello, virt) && virt - hello.heap.start < hello.heap_max_bytes
}

/// Whether entry `raw` of page `virt`, where the model has state `want`,
/// is one [`check_entry`] finds nothing wrong with and nothing to record
/// for, told from its raw bits alone (both checks pass over it):
/// - where the model leaves the page unusable, a zero entry outside the
///   heap region's pages and an allocate-on-write one on them
///   ([`heap_page`]);
/// - where the model has an allocate-on-write page outside the heap
///   region, the allocate-on-write entry (W alone): it decodes to
///   `AllocOnWrite`, which agrees, and a not-present entry has no
///   translation, frame or swap slot to record. Converts and maps of large
///   ranges make thousands of them.
pub(crate) fn nothing_to_check(
    hello: &Hello,
    virt: u64,
    raw: u64,
    want: Option<ModelState>,
) -> bool {
    match want {
        Some(ModelState::AllocOnWrite) => raw == W && !in_heap(hello, virt),
        None if raw == 0 || raw == W => (raw == 0) != heap_page(hello, virt),
        _ => false,
    }
}

/// The entry that [`check_table`] passes over on every page of the level-1
/// table `t` when the model expects none of them: allocate-on-write when
/// all its pages are heap pages ([`heap_page`]), zero when none is;
/// `None` when its pages are of both kinds.
fn blank_entry(hello: &Hello, t: &Table) -> Option<u64> {
    let (first, last) = (entry_virt(t, 0), entry_virt(t, 511));
    let (a, b) = (heap_page(hello, first), heap_page(hello, last));
    // The heap pages are one range starting at the heap's start: a table
    // that holds neither end of it and does not hold that start has none.
    if a && b {
        Some(super::entry::W)
    } else if !a && !b && !(first..=last).contains(&hello.heap.start) {
        Some(0)
    } else {
        None
    }
}

pub(crate) fn describe(s: Option<ModelState>) -> String {
    s.map_or("Unusable".into(), |s| format!("{s:?}"))
}

/// The first address of entry `i` of the level-1 table `t`.
pub(crate) fn entry_virt(t: &Table, i: usize) -> u64 {
    t.virt | (i as u64) << 12
}

/// The present page at entry `i` of the level-1 table `t`, if it is one.
pub(crate) fn translation(t: &Table, i: usize) -> Option<Translation> {
    let raw = t.entries[i];
    let virt = entry_virt(t, i);
    let Leaf::Present {
        kind,
        writable,
        executable,
        frame,
    } = decode_leaf(raw, is_user(virt))
    else {
        return None;
    };
    let step = Step {
        table: t.frame,
        index: i as u16,
        raw,
    };
    Some(Translation {
        virt,
        frame,
        writable,
        executable,
        kind,
        steps: [t.chain[0], t.chain[1], t.chain[2], step],
    })
}

/// What the model has for pages asked for in increasing order: each
/// one's state and the frame `Query` reported for it, read from the
/// model's runs and reported frames as they come ([`wants`]), not looked
/// up page by page.
///
/// Each look at the two lists also says how far its answer holds: up to
/// the end of the run it found (or the start of the next one, outside
/// every run) and the next reported frame. The pages from the one looked
/// up to that bound are answered from the run found, without looking
/// again: a table's entries in one run with no reported frame cost one
/// look, and each reported frame a look for its page and one for the page
/// after (the looks were a fifth of the full check's samples in a
/// campaign's profile).
pub(crate) struct Wants<R, K>
where
    R: Iterator<Item = (u64, u64, ModelState)>,
    K: Iterator<Item = (u64, u64)>,
{
    runs: Peekable<R>,
    known: Peekable<K>,
    held: Held,
}

/// Pages `from..until` have no reported frame and lie in the run `run`
/// (its first page and that page's state), or in none.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    from: u64,
    until: u64,
    run: Option<(u64, ModelState)>,
}

/// [`Wants`] over pages `start..end` (page numbers).
pub(crate) fn wants<'a>(
    expect: &Expected<'a>,
    start: u64,
    end: u64,
) -> Wants<impl Iterator<Item = (u64, u64, ModelState)> + 'a, impl Iterator<Item = (u64, u64)> + 'a>
{
    Wants::new(expect.runs_in(start, end), expect.known_in(start, end))
}

impl<R, K> Wants<R, K>
where
    R: Iterator<Item = (u64, u64, ModelState)>,
    K: Iterator<Item = (u64, u64)>,
{
    /// Over the model's runs `(first page, end page, state of the first)`,
    /// disjoint, and the reported frames `(page, frame)`, one per page,
    /// each in increasing order (as `Expected::runs_in` and
    /// `Expected::known_in` give them: the bounds of [`Held`] rest on it).
    fn new(runs: R, known: K) -> Self {
        Wants {
            runs: runs.peekable(),
            known: known.peekable(),
            held: Held::default(),
        }
    }

    /// The model's state of page `vpn` and the frame `Query` reported for
    /// it (`vpn` not below the last page asked for).
    pub(crate) fn at(&mut self, vpn: u64) -> (Option<ModelState>, Option<u64>) {
        let Held { from, until, run } = self.held;
        if from <= vpn && vpn < until {
            return (run.map(|(s, st)| st.nth(vpn - s)), None);
        }
        while self.runs.peek().is_some_and(|&(_, e, _)| e <= vpn) {
            self.runs.next();
        }
        let (run, run_until) = match self.runs.peek() {
            Some(&(s, e, st)) if s <= vpn => (Some((s, st)), e),
            Some(&(s, _, _)) => (None, s),
            None => (None, u64::MAX),
        };
        while self.known.peek().is_some_and(|&(p, _)| p < vpn) {
            self.known.next();
        }
        let next_known = self.known.peek().copied();
        let known = next_known.filter(|&(p, _)| p == vpn).map(|(_, f)| f);
        let until = match (known, next_known) {
            // The frame reported for `vpn`: the pages after it look again.
            (Some(_), _) => vpn,
            (None, Some((p, _))) => run_until.min(p),
            (None, None) => run_until,
        };
        self.held = Held {
            from: vpn,
            until,
            run,
        };
        (run.map(|(s, st)| st.nth(vpn - s)), known)
    }
}

/// Checks entry `i` of the level-1 table `t` against `want` (the model's
/// state of its page) and `known` (the frame `Query` reported for it, if
/// any); when it is present, pushes its translation onto `translations`
/// and answers a reference to it there (not the 120-byte value, to be
/// moved again by the caller: the moves were half of this function's time
/// in a campaign's profile).
pub(crate) fn check_entry<'t>(
    hello: &Hello,
    t: &Table,
    i: usize,
    (want, known): (Option<ModelState>, Option<u64>),
    translations: &'t mut Vec<Translation>,
    out: &mut Vec<Violation>,
) -> Option<&'t Translation> {
    let raw = t.entries[i];
    let virt = entry_virt(t, i);
    let got = decode_leaf(raw, is_user(virt));
    let path = || {
        let mut steps = t.steps().to_vec();
        steps.push(Step {
            table: t.frame,
            index: i as u16,
            raw,
        });
        Path { virt, steps }
    };
    if let Leaf::Corrupt(why) = got {
        out.push(Violation::BadEntry { path: path(), why });
        return None;
    }
    let tr = translation(t, i);
    if in_heap(hello, virt) {
        if let Some(why) = heap_entry(hello, virt, got) {
            out.push(Violation::HeapEntry { path: path(), why });
        }
    } else if !agrees(want, got) {
        out.push(Violation::StateMismatch {
            path: path(),
            expected: describe(want),
            got: format!("{got:?}"),
        });
    } else if let (Some(t), Some(f)) = (&tr, known) {
        if f != t.frame {
            out.push(Violation::StateMismatch {
                path: path(),
                expected: format!("frame {f:#x} (as Query reported)"),
                got: format!("frame {:#x}", t.frame),
            });
        }
    }
    if let Some(t) = tr.as_ref().filter(|t| t.kind.is_file()) {
        let clean = t.kind == PresentKind::MmapClean;
        if t.writable == clean {
            out.push(Violation::StateMismatch {
                path: t.path(),
                expected: format!(
                    "W={} for a {} file page",
                    u8::from(!clean),
                    if clean { "clean" } else { "private" }
                ),
                got: format!("W={}", u8::from(t.writable)),
            });
        }
    }
    let tr = tr?;
    translations.push(tr);
    translations.last()
}

/// Checks every entry of the level-1 table `t`; pushes its translations.
pub(crate) fn check_table(
    hello: &Hello,
    expect: &Expected,
    t: &Table,
    translations: &mut Vec<Translation>,
    out: &mut Vec<Violation>,
) {
    let base = t.first_page();
    if expect.runs_in(base, base + 512).next().is_none() {
        // Nothing expected: when every entry is the blank one the loop
        // below would pass over, the table holds nothing to report (the
        // heap region's allocate-on-write tables, RAM / 4 entries).
        if let Some(blank) = blank_entry(hello, t) {
            if t.entries.iter().fold(0, |a, &e| a | (e ^ blank)) == 0 {
                return;
            }
        }
    }
    let mut want = wants(expect, base, base + 512);
    for i in 0..512 {
        let (w, k) = want.at(base + i as u64);
        if nothing_to_check(hello, entry_virt(t, i), t.entries[i], w) {
            continue;
        }
        check_entry(hello, t, i, (w, k), translations, out);
    }
}

/// The expected pages of `runs` (whole model runs, in order) that no
/// table covers, one violation per run; `covered` holds the sorted
/// `first page >> 9` of the non-empty level-1 tables.
pub(crate) fn missing_tables(
    runs: impl Iterator<Item = (u64, u64, ModelState)>,
    covered: &[u64],
    out: &mut Vec<Violation>,
) {
    for (s, e, st) in runs {
        let (lo, hi) = (s >> 9, (e - 1) >> 9);
        let from = covered.partition_point(|&r| r < lo);
        let to = covered.partition_point(|&r| r <= hi);
        let mut missing = e - s;
        let mut first = None;
        let mut at = s;
        for &r in &covered[from..to] {
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
            out.push(Violation::MissingTable {
                virt: p << 12,
                pages: missing,
                expected: describe(Some(st.nth(p - s))),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The answer [`Wants::at`] must give, looked up in the two lists.
    fn looked_up(
        runs: &[(u64, u64, ModelState)],
        known: &[(u64, u64)],
        vpn: u64,
    ) -> (Option<ModelState>, Option<u64>) {
        let state = runs
            .iter()
            .find(|&&(s, e, _)| s <= vpn && vpn < e)
            .map(|&(s, _, st)| st.nth(vpn - s));
        let frame = known.iter().find(|&&(p, _)| p == vpn).map(|&(_, f)| f);
        (state, frame)
    }

    proptest! {
        /// Runs with and without gaps between them, in states `nth` moves
        /// and in one it does not, frames reported inside, outside and at
        /// the edges of runs, pages asked for in increasing order: most one
        /// by one, some twice, some after a jump over several runs. Every
        /// answer is the one looked up.
        #[test]
        fn answers_what_the_lists_hold(
            layout in prop::collection::vec(
                (prop_oneof![Just(0u64), 0u64..10], 1u64..60, 0u8..3),
                0..10,
            ),
            reported in prop::collection::btree_set(0u64..700, 0..40),
            edges in prop::collection::vec((any::<prop::sample::Index>(), 0u64..3), 0..6),
            steps in prop::collection::vec(0u64..100, 1..300),
        ) {
            let mut runs = Vec::new();
            let mut at = 0;
            for (gap, len, kind) in layout {
                let (s, e) = (at + gap, at + gap + len);
                let st = match kind {
                    0 => ModelState::OnSwap { slot: s * 7 },
                    1 => ModelState::Shared { writable: true, group: s },
                    _ => ModelState::AllocOnWrite,
                };
                runs.push((s, e, st));
                at = e;
            }
            let mut reported = reported;
            for (run, edge) in edges.iter().filter(|_| !runs.is_empty()) {
                let (s, e, _) = runs[run.index(runs.len())];
                reported.insert([s, e - 1, e][*edge as usize]);
            }
            let known: Vec<(u64, u64)> = reported.into_iter().map(|p| (p, p << 12)).collect();
            let mut w = Wants::new(runs.clone().into_iter(), known.clone().into_iter());
            let mut vpn = 0;
            for step in steps {
                vpn += if step < 90 { step % 3 } else { step };
                prop_assert_eq!(w.at(vpn), looked_up(&runs, &known, vpn), "page {}", vpn);
            }
        }
    }
}
