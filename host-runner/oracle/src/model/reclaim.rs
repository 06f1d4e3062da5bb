//! Reclaim events (semantics, "Reclaim events"): each one checked legal at
//! its moment and applied before the request is judged; `Evict`'s and
//! `HeapScavenge`'s own events judged against what those requests do.

use protocol::{Reclaim, Request, Response, PAGE_SIZE, RECLAIM_RING};

use super::pages::ModelState;
use super::slots::Slots;
use super::undo::{Applied, Replaced};
use super::Model;

/// The pages a request names (rule 2: no reclaim may change them), and the
/// pages an `Evict` may send out, in address order (`true`: to swap).
#[derive(Clone, Debug, Default)]
pub(super) struct Own {
    range: (u64, u64),
    evict: Option<Vec<(u64, bool)>>,
}

/// Pages `first..end` a request names, plain (empty when it names none).
fn named_pages(req: &Request) -> (u64, u64) {
    match *req {
        Request::Map { addr, pages, .. }
        | Request::Unmap { addr, pages, .. }
        | Request::Convert { addr, pages, .. }
        | Request::MapFile { addr, pages, .. }
        | Request::Query { addr, pages, .. }
        | Request::Evict { addr, pages, .. }
        // Share's source range: the clock never takes one of its pages.
        | Request::Share { addr, pages, .. } => (addr >> 12, (addr >> 12).saturating_add(pages)),
        Request::Write { addr, len, .. } | Request::Read { addr, len, .. } if len > 0 => {
            (addr >> 12, (addr.saturating_add(len - 1) >> 12) + 1)
        }
        _ => (0, 0),
    }
}

/// The `Evicted` answer that counts `events`: how many went to swap, how
/// many dropped.
pub(crate) fn evicted<'a>(events: impl IntoIterator<Item = &'a Reclaim>) -> Response {
    let (mut swapped, mut dropped) = (0, 0);
    for e in events {
        match e {
            Reclaim::Swapped { .. } => swapped += 1,
            _ => dropped += 1,
        }
    }
    Response::Evicted { swapped, dropped }
}

fn show(ev: &Reclaim) -> String {
    super::hex::hex_debug(ev)
}

impl Model {
    /// Pages `first..end` a request names, as keys of the current space
    /// (empty when it names none).
    pub(super) fn named_keys(&self, req: &Request) -> (u64, u64) {
        let (first, end) = named_pages(req);
        if first == end {
            return (0, 0);
        }
        self.keys((first, end))
    }

    /// The key of an event's page (`None`: not a canonical address, so
    /// no page).
    fn event_key(&self, addr: u64) -> Option<u64> {
        super::validate::canonical(addr).then(|| self.key(addr) >> 12)
    }

    /// What the request's own events may be, from the state before them.
    pub(super) fn own_events(&self, req: &Request) -> Own {
        let range = self.named_keys(req);
        let evict = match *req {
            Request::Evict {
                addr,
                pages,
                privilege,
            } => self
                .managed
                .check_pages(addr, pages, u64::MAX, privilege)
                .ok()
                .map(|pages| {
                    let (first, end) = self.keys(pages);
                    self.evictable(first, end)
                }),
            _ => None,
        };
        Own { range, evict }
    }

    /// The pages of `first..end` `Evict` sends out, in order (at most one
    /// more than the ring holds).
    fn evictable(&self, first: u64, end: u64) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        for (s, e, st) in self.pages.runs_in(first, end) {
            let swap = match st {
                ModelState::PresentRam { writable: true, .. }
                | ModelState::PresentMmap { private: true, .. } => true,
                ModelState::PresentMmap { private: false, .. } => false,
                _ => continue,
            };
            for p in s..e {
                if out.len() > RECLAIM_RING {
                    return out;
                }
                out.push((p, swap));
            }
        }
        out
    }

    /// Checks each event legal when it happened and applies it; the pages
    /// they changed are marked changed only by [`Model::keep_events`], and
    /// [`Model::undo_events`] puts back what they replaced. Atomic: on an
    /// illegal event the model is as it was.
    pub(super) fn apply_events(
        &mut self,
        events: &[Reclaim],
        own: &Own,
    ) -> Result<Applied, String> {
        if events.len() > RECLAIM_RING {
            return Err(format!(
                "{} events, more than the ring's {RECLAIM_RING}",
                events.len()
            ));
        }
        let mut applied = Applied {
            replaced: Vec::with_capacity(events.len()),
            reclaims: self.reclaims,
            scavenged_since: self.heap.scavenged_since,
        };
        match self.apply_each(events, own, &mut applied) {
            Ok(()) => Ok(applied),
            Err(why) => {
                self.undo_events(applied);
                Err(why)
            }
        }
    }

    fn apply_each(
        &mut self,
        events: &[Reclaim],
        own: &Own,
        applied: &mut Applied,
    ) -> Result<(), String> {
        let mut slots = Slots::default();
        for (i, ev) in events.iter().enumerate() {
            let (Reclaim::Swapped { addr, .. }
            | Reclaim::Dropped { addr }
            | Reclaim::Scavenged { addr }) = *ev;
            let why = |w: String| format!("event {i} {}: {w}", show(ev));
            if addr % PAGE_SIZE != 0 {
                return Err(why("address not page aligned".into()));
            }
            let Some(vpn) = self.event_key(addr) else {
                return Err(why("address not canonical".into()));
            };
            let (a, b) = own.range;
            if (a..b).contains(&vpn) && own.evict.is_none() {
                return Err(why("a page of the request's own range".into()));
            }
            let replaced = self.apply_event(ev, &mut slots).map_err(why)?;
            applied.replaced.push(replaced);
        }
        Ok(())
    }

    /// Applies one event if legal, answering what it replaced.
    fn apply_event(&mut self, ev: &Reclaim, slots: &mut Slots) -> Result<Replaced, String> {
        match *ev {
            Reclaim::Swapped { addr, slot } => {
                let vpn = self.key(addr) >> 12;
                let st = self.pages.get(vpn);
                let Some(
                    state @ (ModelState::PresentRam { writable: true, .. }
                    | ModelState::PresentMmap { private: true, .. }),
                ) = st
                else {
                    let (a, b) = self.heap_vpns();
                    let what = if (a..b).contains(&vpn) {
                        "a heap page (never swapped)".into()
                    } else {
                        format!(
                            "{} (only present writable RAM or private file pages)",
                            super::prediction::describe(st)
                        )
                    };
                    return Err(format!("the page is {what}"));
                };
                if let Some((total, _)) = self.learned {
                    if slot >= total / 128 {
                        return Err(format!(
                            "slot {slot} is past the store's {} units",
                            total / 128
                        ));
                    }
                }
                if !slots.take(&self.pages, slot) {
                    return Err(format!("slot {slot} is in use"));
                }
                self.pages
                    .set(vpn, vpn + 1, Some(ModelState::OnSwap { slot }));
                let frame = self.drop_frame(vpn);
                self.reclaims[1] += 1;
                Ok(Replaced::Page { vpn, state, frame })
            }
            Reclaim::Dropped { addr } => {
                let vpn = self.key(addr) >> 12;
                let Some(
                    state @ ModelState::PresentMmap {
                        file,
                        page,
                        private: false,
                    },
                ) = self.pages.get(vpn)
                else {
                    let st = super::prediction::describe(self.pages.get(vpn));
                    return Err(format!(
                        "the page is {st} (only clean present file pages drop)"
                    ));
                };
                self.pages.set(
                    vpn,
                    vpn + 1,
                    Some(ModelState::NotPresentMmap { file, page }),
                );
                let frame = self.drop_frame(vpn);
                self.reclaims[2] += 1;
                Ok(Replaced::Page { vpn, state, frame })
            }
            Reclaim::Scavenged { addr } => {
                let (a, b) = self.heap_vpns();
                let vpn = addr >> 12;
                if !(a..b).contains(&vpn) {
                    return Err("not a page of the heap".into());
                }
                if let Some((s, n)) = self.heap.overlaps(addr, addr + PAGE_SIZE) {
                    return Err(format!("the page holds the live block {s:#x}+{n:#x}"));
                }
                let present = self.heap.present.remove(&vpn);
                self.heap.scavenged_since += 1;
                let data = self.data.remove(&vpn);
                self.reclaims[0] += 1;
                Ok(Replaced::Heap { vpn, present, data })
            }
        }
    }

    /// Forgets the frame page `vpn` had (its data stays): the frame, and
    /// the page recorded for that frame.
    fn drop_frame(&mut self, vpn: u64) -> Option<(u64, Option<u64>)> {
        let f = self.page_frames.remove(&vpn)?;
        Some((f, self.frame_pages.remove(&f)))
    }

    /// Judges `Evict`'s and `HeapScavenge`'s own events and counts.
    pub(super) fn judge_own(
        &self,
        req: &Request,
        events: &[Reclaim],
        own: &Own,
        inner: &Response,
    ) -> Result<(), (String, String)> {
        if let Request::HeapScavenge { .. } = req {
            let n = events
                .iter()
                .filter(|e| matches!(e, Reclaim::Scavenged { .. }))
                .count();
            return self
                .judge_scavenge(n, inner)
                .map_err(|w| ("Scavenged, one page per event".into(), w));
        }
        let Some(elig) = &own.evict else {
            return Ok(());
        };
        let (a, b) = own.range;
        let mine: Vec<&Reclaim> = events
            .iter()
            .filter(|e| {
                let (Reclaim::Swapped { addr, .. }
                | Reclaim::Dropped { addr }
                | Reclaim::Scavenged { addr }) = **e;
                self.event_key(addr).is_some_and(|k| (a..b).contains(&k))
            })
            .collect();
        let expected = || {
            let next: Vec<String> = elig
                .iter()
                .take(4)
                .map(|(p, s)| format!("{}{}", if *s { "swap " } else { "drop " }, Model::show(*p)))
                .collect();
            format!("Evict's events in address order: {} ...", next.join(", "))
        };
        for (i, ev) in mine.iter().enumerate() {
            let want = elig.get(i).copied();
            let fits = match (**ev, want) {
                (Reclaim::Swapped { addr, .. }, Some((p, true)))
                | (Reclaim::Dropped { addr }, Some((p, false))) => self.key(addr) >> 12 == p,
                _ => false,
            };
            if !fits {
                return Err((
                    expected(),
                    format!(
                        "its event {} is not the next page Evict sends out",
                        show(ev)
                    ),
                ));
            }
        }
        let k = mine.len();
        if let Some(&(p, false)) = elig.get(k) {
            if events.len() < RECLAIM_RING {
                return Err((
                    expected(),
                    format!(
                        "the walk stopped at the clean file page {}, which needs no swap space",
                        Model::show(p)
                    ),
                ));
            }
        }
        let want = evicted(mine.iter().copied());
        if matches!(inner, Response::Evicted { .. }) && *inner != want {
            return Err((
                super::hex::hex_debug(&want),
                "the counts are not the events'".into(),
            ));
        }
        Ok(())
    }
}
