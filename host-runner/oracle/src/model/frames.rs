//! Frames and virtual space the host holds: `AllocFrames`, `FreeFrames`,
//! `Valloc`, `Vfree`, and the frame identities the guest reports.

use protocol::{Error, FrameRun, PageState, VirtRange, MAX_ALLOC_FRAMES, PAGE_SIZE};

use super::pages::ModelState;
use super::prediction::Prediction;
use super::validate::{count_and_alignment, page_range};
use super::{Effect, Model, Plan};

/// The mark of a reserved page in the `Valloc` map.
pub(super) const RESERVED: Option<ModelState> = Some(ModelState::AllocOnWrite);

/// Page numbers `first..end` of a virtual range (`end == 0`: the top).
fn pages_of(r: VirtRange) -> (u64, u64) {
    let end = if r.end == 0 { 1 << 52 } else { r.end >> 12 };
    (r.start.div_ceil(PAGE_SIZE), end)
}

impl Model {
    pub(super) fn plan_alloc_frames(&self, count: u64, contiguous: bool) -> Result<Plan, Error> {
        if count == 0 {
            return Err(Error::ZeroCount);
        }
        if count > MAX_ALLOC_FRAMES {
            return Err(Error::TooLarge);
        }
        let outcome = self.outcome(count, 0, 0);
        if !outcome.ok {
            return Ok(Plan {
                prediction: outcome.predict(protocol::Response::Done),
                effect: Effect::None,
            });
        }
        Ok(Plan {
            prediction: Prediction::Frames {
                count,
                contiguous,
                oom: outcome.oom,
            },
            effect: Effect::AllocFrames,
        })
    }

    pub(super) fn plan_free_frames(&self, frame: u64, count: u64) -> Result<Plan, Error> {
        count_and_alignment(frame, count, MAX_ALLOC_FRAMES)?;
        let end = (count * PAGE_SIZE)
            .checked_add(frame)
            .ok_or(Error::Overflow)?;
        if end > self.hello.total_frames * PAGE_SIZE {
            return Err(Error::OutOfRange);
        }
        let first = frame >> 12;
        if let Some(f) = (first..first + count).find(|f| !self.host.contains(f)) {
            return Err(Error::NotOwned { frame: f << 12 });
        }
        Ok(Plan::done(Effect::FreeFrames { first, count }))
    }

    pub(super) fn plan_valloc(&self, pages: u64) -> Result<Plan, Error> {
        let (lo, hi) = pages_of(self.hello.valloc);
        if pages == 0 {
            return Err(Error::ZeroCount);
        }
        if pages > hi.saturating_sub(lo) {
            return Err(Error::TooLarge);
        }
        self.valloc_fit(pages).ok_or(Error::NoVirtualSpace)?;
        Ok(Plan {
            prediction: Prediction::Valloc {
                pages,
                region: self.hello.valloc,
            },
            effect: Effect::Valloc { pages },
        })
    }

    /// The lowest free run of `pages` pages of the `Valloc` region.
    pub(super) fn valloc_fit(&self, pages: u64) -> Option<u64> {
        let (lo, hi) = pages_of(self.hello.valloc);
        let mut at = lo;
        for (s, e, _) in self.vspace.runs_in(lo, hi) {
            if s - at >= pages {
                return Some(at);
            }
            at = e;
        }
        (hi.saturating_sub(at) >= pages).then_some(at)
    }

    pub(super) fn plan_vfree(&self, addr: u64, pages: u64) -> Result<Plan, Error> {
        page_range(addr, pages, u64::MAX)?;
        let (first, end) = (addr >> 12, (addr >> 12) + pages);
        if let Some(p) = self.vspace.first_gap(first, end) {
            return Err(Error::InvalidState { addr: p << 12 });
        }
        Ok(Plan::done(Effect::Vfree { first, end }))
    }

    /// Takes the `Valloc` answer at `addr`: a free run inside the region.
    pub(super) fn commit_valloc(&mut self, addr: u64, pages: u64) -> Result<(), String> {
        let (lo, hi) = pages_of(self.hello.valloc);
        let first = addr >> 12;
        if addr % PAGE_SIZE != 0 || first < lo || first.saturating_add(pages) > hi {
            return Err(format!(
                "{addr:#x} + {pages} pages is not inside the Valloc region"
            ));
        }
        if let Some((s, _, _)) = self.vspace.runs_in(first, first + pages).next() {
            return Err(format!("page {:#x} is already reserved", s << 12));
        }
        self.vspace.set(first, first + pages, RESERVED);
        Ok(())
    }

    /// Why frame number `f` cannot be newly handed to `owner` (None: it can).
    pub(super) fn frame_conflict(&self, f: u64, owner: Option<u64>) -> Option<String> {
        let addr = f << 12;
        if f >= self.hello.total_frames {
            return Some(format!("frame {addr:#x} is beyond RAM"));
        }
        if self.hello.boot_reserved.iter().any(|r| r.contains(addr)) {
            return Some(format!("frame {addr:#x} is a boot reservation"));
        }
        if self.host.contains(&f) {
            return Some(format!("frame {addr:#x} is held by the host"));
        }
        if let Some(why) = self.root_conflict(f) {
            return Some(why);
        }
        match self.frame_pages.get(&f) {
            Some(&p) if Some(p) != owner && !owner.is_some_and(|o| self.same_frame(o, p)) => {
                Some(format!("frame {addr:#x} backs page {}", Model::show(p)))
            }
            _ => None,
        }
    }

    /// Takes the frames of an `AllocFrames` answer.
    pub(super) fn commit_alloc_frames(&mut self, runs: &[FrameRun]) -> Result<(), String> {
        let mut new = std::collections::BTreeSet::new();
        for r in runs {
            if r.start % PAGE_SIZE != 0 || r.count == 0 {
                return Err(format!("bad run {:#x} x {}", r.start, r.count));
            }
            for f in (r.start >> 12)..(r.start >> 12).saturating_add(r.count) {
                if let Some(why) = self.frame_conflict(f, None) {
                    return Err(why);
                }
                if !new.insert(f) {
                    return Err(format!("frame {:#x} appears twice", f << 12));
                }
            }
        }
        new.iter().for_each(|&f| self.dirty.host_frame(f));
        self.host.extend(new);
        Ok(())
    }

    /// Records the frames a `Query` answer reports for pages from `first`.
    /// Atomic: when a page's frame cannot be its own, the pages before it
    /// are put back as they were (the model is left unchanged by a
    /// divergence, and judging answers with events relies on it).
    pub(super) fn record_frames(&mut self, first: u64, states: &[PageState]) -> Result<(), String> {
        let mut done = Vec::new();
        match self.record_frames_logged(first, states, &mut done) {
            Ok(()) => {
                done.iter().for_each(|r| self.dirty.page(r.vpn));
                Ok(())
            }
            Err(why) => {
                done.into_iter().rev().for_each(|r| self.unrecord(r));
                Err(why)
            }
        }
    }

    /// Records the frames page by page, in order, each in `done`.
    fn record_frames_logged(
        &mut self,
        first: u64,
        states: &[PageState],
        done: &mut Vec<Recorded>,
    ) -> Result<(), String> {
        for (vpn, st) in (first..).zip(states) {
            let frame = match *st {
                PageState::PresentRam { frame, .. }
                | PageState::PresentMmap { frame, .. }
                | PageState::PinnedRam { frame, .. }
                | PageState::Shared { frame, .. } => frame,
                _ => continue,
            };
            if frame % PAGE_SIZE != 0 {
                return Err(format!(
                    "page {}: frame {frame:#x} not aligned",
                    Model::show(vpn)
                ));
            }
            if let Some(why) = self.frame_conflict(frame >> 12, Some(vpn)) {
                return Err(format!("page {}: {why}", Model::show(vpn)));
            }
            if let Some(why) = self.peer_conflict(vpn, frame >> 12) {
                return Err(format!("page {}: {why}", Model::show(vpn)));
            }
            let old = self.page_frames.insert(vpn, frame >> 12);
            let old = old.map(|f| (f, self.frame_pages.remove(&f)));
            let before = self.frame_pages.insert(frame >> 12, vpn);
            done.push(Recorded {
                vpn,
                frame: frame >> 12,
                old,
                before,
            });
        }
        Ok(())
    }

    /// Puts back what recording one page's frame replaced.
    fn unrecord(&mut self, r: Recorded) {
        match r.before {
            Some(p) => self.frame_pages.insert(r.frame, p),
            None => self.frame_pages.remove(&r.frame),
        };
        match r.old {
            Some((f, owner)) => {
                if let Some(p) = owner {
                    self.frame_pages.insert(f, p);
                }
                self.page_frames.insert(r.vpn, f)
            }
            None => self.page_frames.remove(&r.vpn),
        };
    }
}

/// One page's frame a `Query` answer recorded, and what it replaced.
#[derive(Debug)]
struct Recorded {
    vpn: u64,
    frame: u64,
    /// The page's frame before, and the page that frame was recorded for.
    old: Option<(u64, Option<u64>)>,
    /// The page the new frame was recorded for before.
    before: Option<u64>,
}
