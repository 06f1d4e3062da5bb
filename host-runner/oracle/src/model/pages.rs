//! The model's page map: every non-unusable page of the managed space, kept
//! as runs of pages whose states follow one another, so that a convert of
//! the whole user half costs one entry, not 2^35.

use std::collections::BTreeMap;

use protocol::PageState;

/// Page-table levels below the PML4, as the number of page-number bits one
/// table of that level covers: PT (512 pages), PD, PDPT.
const TABLE_SHIFTS: [u32; 3] = [9, 18, 27];

/// A page's state as the model expects it. Unusable is the absence of a state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelState {
    /// Present usable RAM; `executable` only from a `Map` that asked for
    /// it, never with `writable`.
    PresentRam { writable: bool, executable: bool },
    /// Usable RAM, allocate on write.
    AllocOnWrite,
    /// Usable RAM, in swap slot `slot`.
    OnSwap { slot: u64 },
    /// Present memory-mapped file page.
    PresentMmap { file: u8, page: u64, private: bool },
    /// Not-present memory-mapped file page.
    NotPresentMmap { file: u8, page: u64 },
    /// Present pinned (never-swap) RAM.
    PinnedRam { writable: bool },
    /// Pinned RAM, allocate on write.
    PinnedAllocOnWrite,
    /// Present shared RAM (semantics, **Shared memory**): every page whose
    /// state holds the same `group` maps one frame, with this writability.
    /// `group` is the model's own name for that frame (see `super::shared`:
    /// it counts up with the page inside a run, as swap slots do).
    Shared { writable: bool, group: u64 },
}

impl ModelState {
    /// What `Query` answers for a page in state `st` (`None`: unusable)
    /// whose present frame, if it has one, is `frame`, and whose frame's
    /// mapping count, if it is shared, is `mappings`.
    pub fn answer(st: Option<ModelState>, frame: u64, mappings: u64) -> PageState {
        match st {
            Some(ModelState::Shared { writable, .. }) => PageState::Shared {
                writable,
                mappings,
                frame,
            },
            None => PageState::Unusable,
            Some(ModelState::PresentRam {
                writable,
                executable,
            }) => PageState::PresentRam {
                writable,
                executable,
                frame,
            },
            Some(ModelState::AllocOnWrite) => PageState::AllocOnWrite,
            Some(ModelState::PinnedRam { writable }) => PageState::PinnedRam { writable, frame },
            Some(ModelState::PinnedAllocOnWrite) => PageState::PinnedAllocOnWrite,
            Some(ModelState::OnSwap { slot }) => PageState::OnSwap { slot },
            Some(ModelState::PresentMmap {
                file,
                page,
                private,
            }) => PageState::PresentMmap {
                file,
                page,
                private,
                frame,
            },
            Some(ModelState::NotPresentMmap { file, page }) => {
                PageState::NotPresentMmap { file, page }
            }
        }
    }

    /// Writable, not executable present RAM: what a touch, a swap-in or a
    /// convert makes.
    pub const DATA: ModelState = ModelState::PresentRam {
        writable: true,
        executable: false,
    };

    /// The state of the page `k` pages after a page in this state, inside
    /// one run: swap slots and file pages count up with the page.
    pub fn nth(self, k: u64) -> Self {
        match self {
            ModelState::OnSwap { slot } => ModelState::OnSwap { slot: slot + k },
            ModelState::PresentMmap {
                file,
                page,
                private,
            } => ModelState::PresentMmap {
                file,
                page: page + k,
                private,
            },
            ModelState::NotPresentMmap { file, page } => ModelState::NotPresentMmap {
                file,
                page: page + k,
            },
            ModelState::Shared { writable, group } => ModelState::Shared {
                writable,
                group: group + k,
            },
            other => other,
        }
    }

    /// Whether a page in this state maps a frame (a shared page's frame
    /// is other pages' too: see [`ModelState::owns_frame`]).
    pub fn holds_frame(self) -> bool {
        matches!(
            self,
            ModelState::PresentRam { .. }
                | ModelState::PresentMmap { .. }
                | ModelState::PinnedRam { .. }
                | ModelState::Shared { .. }
        )
    }

    /// Whether a page in this state maps a frame no other page maps (every
    /// present state but shared RAM).
    pub fn owns_frame(self) -> bool {
        self.holds_frame() && !matches!(self, ModelState::Shared { .. })
    }
}

/// Runs of pages by page number (`addr >> 12`): start → (end, state of the
/// first page).
#[derive(Clone, Debug, Default)]
pub struct PageMap {
    runs: BTreeMap<u64, (u64, ModelState)>,
    /// Page-table frames the pages need ([`PageMap::tables`]), kept up to
    /// date by each update: counting them over every run cost a walk of
    /// the whole map at each question about free frames.
    tables: u64,
}

impl PageMap {
    /// The state of page `vpn` (None: unusable).
    pub fn get(&self, vpn: u64) -> Option<ModelState> {
        let (&s, &(e, st)) = self.runs.range(..=vpn).next_back()?;
        (vpn < e).then(|| st.nth(vpn - s))
    }

    /// Runs overlapping `start..end`, clipped to it, in order.
    pub fn runs_in(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, ModelState)> + '_ {
        self.runs_over(start, end).map(move |(s, e, st)| {
            let cs = s.max(start);
            (cs, e.min(end), st.nth(cs - s))
        })
    }

    /// Whole runs overlapping `start..end`, not clipped, in order.
    pub fn runs_over(
        &self,
        start: u64,
        end: u64,
    ) -> impl Iterator<Item = (u64, u64, ModelState)> + '_ {
        let head = self
            .runs
            .range(..start)
            .next_back()
            .filter(|(_, &(e, _))| e > start && start < end)
            .map(|(&s, &(e, st))| (s, e, st));
        let rest = self.runs.range(start..end).map(|(&s, &(e, st))| (s, e, st));
        head.into_iter().chain(rest)
    }

    /// Every run, in order.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64, ModelState)> + '_ {
        self.runs.iter().map(|(&s, &(e, st))| (s, e, st))
    }

    /// The first unusable page of `start..end`, if any.
    pub fn first_gap(&self, start: u64, end: u64) -> Option<u64> {
        let mut at = start;
        for (s, e, _) in self.runs_in(start, end) {
            if s > at {
                return Some(at);
            }
            at = e;
        }
        (at < end).then_some(at)
    }

    /// Replaces the states of `start..end` with `f(first page, old state)`
    /// piece by piece (`None` = unusable, both ways).
    pub fn update(
        &mut self,
        start: u64,
        end: u64,
        mut f: impl FnMut(u64, Option<ModelState>) -> Option<ModelState>,
    ) {
        let mut pieces = Vec::new();
        let mut at = start;
        for (s, e, st) in self.runs_in(start, end) {
            if s > at {
                pieces.push((at, s, f(at, None)));
            }
            pieces.push((s, e, f(s, Some(st))));
            at = e;
        }
        if at < end {
            pieces.push((at, end, f(at, None)));
        }
        let tables_before = self.tables_over(start, end);
        self.split(start);
        self.split(end);
        let inside: Vec<u64> = self.runs.range(start..end).map(|(&s, _)| s).collect();
        for s in inside {
            self.runs.remove(&s);
        }
        for (s, e, st) in pieces {
            if let Some(st) = st {
                self.runs.insert(s, (e, st));
            }
        }
        self.coalesce(start, end);
        self.tables = self.tables - tables_before + self.tables_over(start, end);
    }

    /// Sets the pages of `start..end` to `state` (slots and file pages
    /// counting up from the first page's).
    pub fn set(&mut self, start: u64, end: u64, state: Option<ModelState>) {
        self.update(start, end, |p, _| state.map(|s| s.nth(p - start)));
    }

    /// Makes `at` the start of a run if a run covers it.
    fn split(&mut self, at: u64) {
        if let Some((&s, &(e, st))) = self.runs.range(..at).next_back() {
            if e > at {
                self.runs.insert(s, (at, st));
                self.runs.insert(at, (e, st.nth(at - s)));
            }
        }
    }

    /// Merges runs that continue one another around `start..end`.
    fn coalesce(&mut self, start: u64, end: u64) {
        let from = self
            .runs
            .range(..start)
            .next_back()
            .map_or(start, |(&s, _)| s);
        let keys: Vec<u64> = self.runs.range(from..=end).map(|(&s, _)| s).collect();
        let mut current: Option<u64> = None;
        for k in keys {
            let (e, st) = self.runs[&k];
            if let Some(c) = current {
                let (ce, cst) = self.runs[&c];
                if ce == k && cst.nth(ce - c) == st {
                    self.runs.remove(&k);
                    self.runs.insert(c, (e, cst));
                    continue;
                }
            }
            current = Some(k);
        }
    }

    /// Pages whose state satisfies `pred`.
    pub fn count(&self, pred: impl Fn(ModelState) -> bool) -> u64 {
        self.runs()
            .filter(|r| pred(r.2))
            .map(|(s, e, _)| e - s)
            .sum()
    }

    /// Page-table frames (PT, PD, PDPT) the current pages need.
    pub fn tables(&self) -> u64 {
        self.tables
    }

    /// Page-table frames the current pages need, counted over every run
    /// (what [`PageMap::tables`] keeps up to date).
    #[cfg(test)]
    pub(crate) fn tables_counted(&self) -> u64 {
        TABLE_SHIFTS
            .iter()
            .map(|&sh| distinct_regions(self.runs().map(|(s, e, _)| (s, e)), sh, 0, u64::MAX))
            .sum()
    }

    /// Of the tables (every level) the pages `start..end` span, those that
    /// hold a page, inside the range or not. Only these can change when
    /// the range's states do. The two tables at a level's ends are looked
    /// up; those between lie inside the range, whose runs are counted.
    fn tables_over(&self, start: u64, end: u64) -> u64 {
        if start >= end {
            return 0;
        }
        TABLE_SHIFTS
            .iter()
            .map(|&sh| {
                let (lo, hi) = (start >> sh, (end - 1) >> sh);
                let holds = |t: u64| self.runs_in(t << sh, (t + 1) << sh).next().is_some();
                let mut n = u64::from(holds(lo));
                if hi > lo {
                    n += u64::from(holds(hi));
                }
                if hi > lo + 1 {
                    let inside = self.runs_in(start, end).map(|(s, e, _)| (s, e));
                    n += distinct_regions(inside, sh, lo + 1, hi - 1);
                }
                n
            })
            .sum()
    }

    /// Tables that must be created for every page of `start..end` to be
    /// non-unusable: per level, the tables the range spans less those that
    /// exist (hold any page, inside the range or not).
    pub fn needed_tables(&self, start: u64, end: u64) -> u64 {
        TABLE_SHIFTS
            .iter()
            .map(|&sh| {
                let (lo, hi) = (start >> sh, (end - 1) >> sh);
                let near = self
                    .runs_in(lo << sh, (hi + 1) << sh)
                    .map(|(s, e, _)| (s, e));
                (hi - lo + 1) - distinct_regions(near, sh, lo, hi)
            })
            .sum()
    }
}

/// How many distinct regions of `2^shift` pages in `lo..=hi` the sorted,
/// disjoint page runs touch.
fn distinct_regions(runs: impl Iterator<Item = (u64, u64)>, shift: u32, lo: u64, hi: u64) -> u64 {
    let mut count = 0;
    let mut last: Option<u64> = None;
    for (s, e) in runs {
        let mut a = (s >> shift).max(lo);
        let b = ((e - 1) >> shift).min(hi);
        if let Some(l) = last {
            a = a.max(l + 1);
        }
        if a <= b {
            count += b - a + 1;
            last = Some(b);
        }
    }
    count
}
