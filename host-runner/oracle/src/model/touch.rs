//! `Write` and `Read`: where a touch stops, which pages it allocates, the
//! bytes it stores and the checksum it answers.

use std::sync::Arc;

use protocol::{pattern, FaultReason, Response, PAGE_SIZE};

use super::outcomes::TouchOutcomes;
use super::pages::ModelState;
use super::prediction::Prediction;
use super::{Effect, Model, PageBytes, Plan};
use protocol::pattern::Checksum;

/// A planned touch of `addr..end` (keys: plain addresses plus `off`, the
/// current space's tag for a user touch); where it stopped comes from the
/// answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchPlan {
    addr: u64,
    end: u64,
    off: u64,
    /// The seed of a `Write`; `None` for a `Read`.
    seed: Option<u64>,
    /// A touch of a host heap block.
    heap: bool,
}

const ZERO: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

impl Model {
    /// Plans the touch of `addr..end` (validated, non-empty; plain
    /// addresses of the current space); `heap`: a touch inside a host heap
    /// block.
    pub(super) fn plan_touch(&self, addr: u64, end: u64, seed: Option<u64>, heap: bool) -> Plan {
        let write = seed.is_some();
        // From here on in keys: the answer's addresses are plain again.
        let off = self.spaces.offset(addr);
        let (addr, end) = (addr + off, end + off);
        let (first, last) = (addr >> 12, ((end - 1) >> 12) + 1);
        if let Err(what) = self.file_bytes_known(first, last) {
            return Plan {
                prediction: Prediction::Unspecified(what),
                effect: Effect::None,
            };
        }
        let mut needy = Vec::new();
        let mut stop = None;
        if heap {
            for vpn in first..last {
                if !self.heap.present.contains(&vpn) {
                    push_run(&mut needy, vpn, false);
                }
            }
        } else {
            for (s, e, st) in self.segments(first, last) {
                stop = match st {
                    None => Some((s, FaultReason::Unusable)),
                    Some(
                        ModelState::PresentRam {
                            writable: false, ..
                        }
                        | ModelState::PinnedRam { writable: false }
                        | ModelState::Shared {
                            writable: false, ..
                        },
                    ) if write => Some((s, FaultReason::ReadOnly)),
                    Some(
                        ModelState::AllocOnWrite
                        | ModelState::PinnedAllocOnWrite
                        | ModelState::OnSwap { .. }
                        | ModelState::NotPresentMmap { .. },
                    ) => {
                        needy.push((s, e, true));
                        None
                    }
                    Some(_) => None,
                };
                if stop.is_some() {
                    break;
                }
            }
        }
        let complete = match (stop, seed) {
            (Some((page, reason)), _) => Some(Response::Fault {
                addr: (page << 12).max(addr) - off,
                write,
                reason,
            }),
            (None, Some(_)) => Some(Response::Done),
            (None, None) if heap && !self.heap.all_written(addr, end) => None,
            (None, None) => Some(Response::Checksum {
                checksum: self.checksum(addr, end),
            }),
        };
        let outcomes = TouchOutcomes {
            addr,
            off,
            write,
            complete,
            needy,
            // A host block's page takes its frame as a request does: the
            // kernel's reserve is not the host's.
            free: self.request_free_bounds(),
            oom_ok: self.reclaim_exhausted(first, last),
        };
        Plan {
            prediction: Prediction::of_touch(outcomes),
            effect: Effect::Touch(TouchPlan {
                addr,
                end,
                off,
                seed,
                heap,
            }),
        }
    }

    /// The runs of `first..last`, unusable gaps included (`None`).
    fn segments(&self, first: u64, last: u64) -> Vec<(u64, u64, Option<ModelState>)> {
        let mut segments = Vec::new();
        let mut at = first;
        for (s, e, st) in self.pages.runs_in(first, last) {
            if s > at {
                segments.push((at, s, None));
            }
            segments.push((s, e, Some(st)));
            at = e;
        }
        if at < last {
            segments.push((at, last, None));
        }
        segments
    }

    /// The checksum of the bytes the model holds at `addr..end` (a page
    /// without bytes holds zeros).
    fn checksum(&self, addr: u64, end: u64) -> u32 {
        let mut sum = Checksum::new();
        let mut at = addr;
        while at < end {
            let page_end = ((at >> 12) + 1) << 12;
            let to = end.min(page_end);
            let (lo, hi) = ((at & 0xfff) as usize, lo_hi_end(to));
            match self.page_bytes(at >> 12) {
                Some(bytes) => sum.update(&bytes[lo..hi]),
                None => sum.update(&ZERO[lo..hi]),
            }
            at = to;
        }
        sum.finish()
    }

    /// Carries out a touch that got `actual`: every page before the one it
    /// stopped at took its frame (or became private), and a write stored
    /// its bytes up to the stop.
    pub(super) fn commit_touch(&mut self, t: TouchPlan, actual: &Response) {
        let (first, last) = (t.addr >> 12, ((t.end - 1) >> 12) + 1);
        // A judged fault lies in the touch's range, so in its half.
        let stop = match *actual {
            Response::Fault { addr, .. } => addr + t.off,
            _ => t.end,
        };
        let stop_page = if stop == t.end { last } else { stop >> 12 };
        let write = t.seed.is_some();
        // What changed, for the checker's next incremental check: the pages
        // it wrote bytes to, and below those the pages it made present or
        // private (each run whose state moves, below). A page it only read
        // that was present already keeps its state, frame and bytes (its
        // accessed bit aside, which no check judges), and the pages past a
        // fault were not reached: neither is among the changes, as for any
        // request that leaves a page alone. So a guest that wrote such a
        // page while only reading it is caught as a wild write into any
        // page is: by the next full check (each sequence's last), if the
        // page still holds the stray bytes then. A heap touch's pages all
        // count. A proptest holds every page whose state, frame or bytes
        // a request changed to be among the changes.
        if t.heap {
            self.dirty.pages(first, last);
            self.heap.present.extend(first..stop_page);
        } else {
            if write && stop > t.addr {
                self.dirty.pages(first, ((stop - 1) >> 12) + 1);
            }
            let runs: Vec<_> = self.pages.runs_in(first, stop_page).collect();
            for (s, e, st) in runs {
                let new = match st {
                    ModelState::AllocOnWrite | ModelState::OnSwap { .. } => {
                        self.faults_resolved += e - s;
                        ModelState::DATA
                    }
                    ModelState::PinnedAllocOnWrite => {
                        self.faults_resolved += e - s;
                        ModelState::PinnedRam { writable: true }
                    }
                    ModelState::NotPresentMmap { file, page } => {
                        self.faults_resolved += e - s;
                        ModelState::PresentMmap {
                            file,
                            page,
                            private: false,
                        }
                    }
                    other => other,
                };
                let new = match new {
                    ModelState::PresentMmap { file, page, .. } if write => {
                        (s..e).for_each(|p| self.materialize(p));
                        ModelState::PresentMmap {
                            file,
                            page,
                            private: true,
                        }
                    }
                    other => other,
                };
                if new != st {
                    self.dirty.pages(s, e);
                }
                self.pages.set(s, e, Some(new));
            }
        }
        let Some(seed) = t.seed else { return };
        if t.heap {
            self.heap.wrote(t.addr, stop);
        }
        let mut at = t.addr;
        while at < stop {
            let page_end = ((at >> 12) + 1) << 12;
            let to = stop.min(page_end);
            let (lo, hi) = ((at & 0xfff) as usize, lo_hi_end(to));
            let page: &mut PageBytes = self.data.entry(at >> 12).or_insert_with(|| Arc::new(ZERO));
            pattern::fill(seed, at - t.off, &mut Arc::make_mut(page)[lo..hi]);
            if !t.heap {
                // Through every mapping of a shared frame written.
                self.spread_page(at >> 12);
            }
            at = to;
        }
    }
}

/// Appends page `vpn` to the last run of `runs` or starts a new one.
fn push_run(runs: &mut Vec<(u64, u64, bool)>, vpn: u64, certain: bool) {
    match runs.last_mut() {
        Some(r) if r.1 == vpn && r.2 == certain => r.1 += 1,
        _ => runs.push((vpn, vpn + 1, certain)),
    }
}

/// The end offset inside its page of a range ending at `to` (4096 for a
/// page-aligned end).
fn lo_hi_end(to: u64) -> usize {
    match to & 0xfff {
        0 => PAGE_SIZE as usize,
        n => n as usize,
    }
}
