//! The model's coverage hook: what a request reached ([`Observation`]),
//! seen from the model's state before it (and, for emptied page tables,
//! after it). Read only: it never changes what the model predicts.

use protocol::{Reclaim, Request, Response, PAGE_SIZE, RECLAIM_RING};

use super::keys::{user_pages, KERNEL_FIRST_PAGE};
use super::{Model, ModelState};
use crate::coverage::{
    AnswerClass, Caller, Event, Observation, RequestKind, StateKind, StateSet, Transition,
    NEAR_EMPTY_FRAMES,
};

/// Page-number bits one page table covers (512 pages, 2 MiB).
const PT_SHIFT: u32 = 9;
/// Page-number bits one PML4 entry covers (512 GiB).
const PML4_SHIFT: u32 = 27;

fn kind_of(s: ModelState) -> StateKind {
    match s {
        ModelState::PresentRam {
            executable: true, ..
        } => StateKind::PresentRamExecutable,
        ModelState::PresentRam {
            writable: false, ..
        } => StateKind::PresentRamReadOnly,
        ModelState::PresentRam { writable: true, .. } => StateKind::PresentRamWritable,
        ModelState::AllocOnWrite => StateKind::AllocOnWrite,
        ModelState::OnSwap { .. } => StateKind::OnSwap,
        ModelState::PresentMmap { private: false, .. } => StateKind::MmapClean,
        ModelState::PresentMmap { private: true, .. } => StateKind::MmapPrivate,
        ModelState::NotPresentMmap { .. } => StateKind::MmapNotPresent,
        ModelState::PinnedRam { writable: false } => StateKind::PinnedRamReadOnly,
        ModelState::PinnedRam { writable: true } => StateKind::PinnedRamWritable,
        ModelState::PinnedAllocOnWrite => StateKind::PinnedAllocOnWrite,
        ModelState::Shared {
            writable: false, ..
        } => StateKind::SharedReadOnly,
        ModelState::Shared { writable: true, .. } => StateKind::SharedWritable,
    }
}

/// The plain answer and its reclaim events, without copying either.
fn split(actual: &Response) -> (&[Reclaim], &Response) {
    match actual {
        Response::Reclaimed { events, response } => (events, response),
        r => (&[], r),
    }
}

/// Whether the request names a range of pages by `addr` and `pages`.
fn is_range(req: &Request) -> bool {
    matches!(
        req,
        Request::Map { .. }
            | Request::Unmap { .. }
            | Request::Convert { .. }
            | Request::MapFile { .. }
            | Request::Evict { .. }
    )
}

impl Model {
    /// The pages `req` acted on, as page numbers `first..end`: its named
    /// range, cut after the faulting page of a touch that faulted.
    fn acted_pages(&self, req: &Request, answer: &Response) -> (u64, u64) {
        let (first, end) = self.named_keys(req);
        match answer {
            Response::Fault { addr, .. } => {
                let fault = self.key(*addr) >> 12;
                (first, end.min(fault.saturating_add(1)))
            }
            _ => (first, end),
        }
    }

    /// The states of pages `first..end` (page numbers).
    fn states_in(&self, first: u64, end: u64) -> StateSet {
        let mut set = StateSet::default();
        if end <= first {
            return set;
        }
        let heap = &self.hello.heap;
        let (hs, he) = (heap.start >> 12, heap.end.wrapping_sub(1) >> 12);
        if first <= he && end > hs && heap.end > heap.start {
            set.insert(StateKind::HeapPage);
            if first >= hs && end - 1 <= he {
                return set;
            }
        }
        for (_, _, st) in self.pages.runs_in(first, end) {
            set.insert(kind_of(st));
        }
        if self.pages.first_gap(first, end).is_some() {
            set.insert(StateKind::Unusable);
        }
        set
    }

    /// What `req`, answered `actual`, reached, from the state before it.
    pub(super) fn observe(&self, req: &Request, actual: &Response) -> Observation {
        let (reclaims, inner) = split(actual);
        let (request, caller) = (RequestKind::of(req), Caller::of(req));
        let answer = AnswerClass::of(inner);
        let reclaimed = !reclaims.is_empty();
        let (first, end) = self.acted_pages(req, inner);
        let states = self.states_in(first, end);
        let mut seen = Observation::default();
        let transition = |from| Transition {
            request,
            caller,
            from,
            answer,
            reclaimed,
        };
        if states.is_empty() {
            seen.transitions.push(transition(None));
        }
        seen.transitions
            .extend(states.iter().map(|s| transition(Some(s))));

        let done = answer == AnswerClass::Ok;
        let mut event = |e| seen.events.push(e);
        let present = [
            StateKind::PresentRamReadOnly,
            StateKind::PresentRamWritable,
            StateKind::PresentRamExecutable,
            StateKind::MmapClean,
            StateKind::MmapPrivate,
            StateKind::PinnedRamReadOnly,
            StateKind::PinnedRamWritable,
            StateKind::SharedReadOnly,
            StateKind::SharedWritable,
        ]
        .into_iter()
        .any(|s| states.contains(s));
        let unmapping = matches!(request, RequestKind::Unmap | RequestKind::ConvertToUnusable);
        if done && unmapping && present {
            event(Event::PresentPageUnmapped);
        }
        if done && states.contains(StateKind::OnSwap) {
            match request {
                RequestKind::Unmap => event(Event::SwappedPageUnmapped),
                RequestKind::ConvertToUsable
                | RequestKind::ConvertToUnusable
                | RequestKind::ConvertToPinned => event(Event::SwappedPageConverted),
                RequestKind::Write | RequestKind::Read => event(Event::SwapIn),
                _ => {}
            }
        }
        let touch = matches!(request, RequestKind::Write | RequestKind::Read);
        if done && touch && states.contains(StateKind::MmapNotPresent) {
            event(Event::FileLoad);
        }
        if done && request == RequestKind::Write && states.contains(StateKind::MmapClean) {
            event(Event::CopyOnWrite);
        }
        if done && is_range(req) && end > first && first >> PT_SHIFT != (end - 1) >> PT_SHIFT {
            event(Event::RangeCrossesTable);
        }
        if self.free_frames() <= self.heap_reserve() + NEAR_EMPTY_FRAMES {
            event(Event::AllocatorNearEmpty);
        }
        let own = matches!(
            request,
            RequestKind::Evict | RequestKind::HeapScavenge | RequestKind::Reset
        );
        if reclaimed && !own {
            event(Event::ReclaimUnderPressure);
        }
        if reclaims.len() >= RECLAIM_RING {
            event(Event::ReclaimRingFull);
        }
        if reclaimed && self.spaces.current != 0 {
            event(Event::ReclaimInOtherSpace);
        }
        let dropped = match *req {
            _ if !done => (0, 0),
            Request::DestroySpace { space, .. } => user_pages(space),
            _ if unmapping => (first, end),
            _ => (0, 0),
        };
        for e in self.shared_drops(dropped.0, dropped.1) {
            event(e);
        }
        match *req {
            Request::SwitchSpace { space, .. }
                if done
                    && space != self.spaces.current
                    && self.holds_present(self.spaces.current) =>
            {
                event(Event::SpaceSwitchedAway)
            }
            Request::DestroySpace { space, .. } if done && self.space_holds_pages(space) => {
                event(Event::SpaceDestroyedHoldingPages)
            }
            _ => {}
        }
        for r in reclaims {
            if let Some(e) = self.reclaim_event(r) {
                event(e);
            }
            if let Reclaim::Scavenged { addr } = *r {
                let before = addr.saturating_sub(PAGE_SIZE);
                let after = addr.saturating_add(PAGE_SIZE);
                let live = |a: u64| a != addr && self.heap.overlaps(a, a + PAGE_SIZE).is_some();
                if live(before) || live(after) {
                    event(Event::HeapScavengedNeighbourLive);
                }
            }
        }
        seen
    }

    /// The event one reclaim is, from the page's state before it.
    fn reclaim_event(&self, r: &Reclaim) -> Option<Event> {
        match *r {
            Reclaim::Swapped { addr, .. } => match self.pages.get(self.key(addr) >> 12)? {
                ModelState::PresentMmap { private: true, .. } => Some(Event::DirtyFilePageSwapped),
                ModelState::PresentRam { .. } => Some(Event::RamPageSwapped),
                _ => None,
            },
            Reclaim::Dropped { .. } => Some(Event::CleanFilePageDropped),
            Reclaim::Scavenged { .. } => Some(Event::HeapPageScavenged),
        }
    }

    /// Whether space `space`'s user half holds a present page.
    fn holds_present(&self, space: u16) -> bool {
        let (first, end) = user_pages(space);
        self.pages
            .runs_in(first, end)
            .any(|(_, _, st)| st.holds_frame())
    }

    /// How many kernel-half PML4 entries hold tables, when a space other
    /// than 0 lives and `req` may change that (a range request in the
    /// kernel half): `None` otherwise, not counted.
    pub(super) fn kernel_slots(&self, req: &Request) -> Option<u64> {
        let kernel = self.named_keys(req).0 >= KERNEL_FIRST_PAGE;
        if self.spaces.roots.is_empty() || !is_range(req) || !kernel {
            return None;
        }
        let mut last = None;
        let mut n = 0;
        for (s, e, _) in self.pages.runs_in(KERNEL_FIRST_PAGE, u64::MAX) {
            for slot in (s >> PML4_SHIFT).max(last.map_or(0, |l| l + 1))..=(e - 1) >> PML4_SHIFT {
                n += 1;
                last = Some(slot);
            }
        }
        Some(n)
    }

    /// Completes `seen` from the state after `req` was applied: a page
    /// table a successful unmap left empty, a kernel PML4 entry made or
    /// freed while other spaces live (`slots`: [`Model::kernel_slots`]
    /// before the request).
    pub(super) fn observe_after(
        &self,
        req: &Request,
        actual: &Response,
        slots: Option<u64>,
        seen: &mut Observation,
    ) {
        if slots.is_some() && slots != self.kernel_slots(req) {
            seen.events.push(Event::KernelSlotSharedBySpaces);
        }
        let unmapping = matches!(
            RequestKind::of(req),
            RequestKind::Unmap | RequestKind::ConvertToUnusable
        );
        let (_, inner) = split(actual);
        if !unmapping || AnswerClass::of(inner) != AnswerClass::Ok {
            return;
        }
        let (first, end) = self.named_keys(req);
        let had_pages = seen
            .transitions
            .iter()
            .any(|t| t.from.is_some_and(|s| s != StateKind::Unusable));
        if !had_pages || end <= first {
            return;
        }
        let emptied = [first >> PT_SHIFT, (end - 1) >> PT_SHIFT]
            .into_iter()
            .any(|t| {
                let (a, b) = (t << PT_SHIFT, (t + 1) << PT_SHIFT);
                self.pages.runs_in(a, b).next().is_none()
            });
        if emptied {
            seen.events.push(Event::PageTableEmptied);
        }
    }
}
