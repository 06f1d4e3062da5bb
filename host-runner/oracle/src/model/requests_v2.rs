//! The version-2 requests' plans (`MapFile`, `Evict`) and what `Reset`,
//! `Convert` and heap touches need beyond version 1.

use protocol::{Error, Privilege, Reclaim, Request, Response};

use super::pages::ModelState;
use super::plan::{Effect, Plan};
use super::prediction::Prediction;
use super::Model;

impl Model {
    /// `MapFile` over the validated pages `first..end`.
    pub(super) fn plan_map_file(
        &self,
        (first, end): (u64, u64),
        file: u8,
        file_page: u64,
    ) -> Result<Plan, Error> {
        let info = self
            .hello
            .files
            .get(usize::from(file))
            .ok_or(Error::NoSuchFile)?;
        let pages = end - first;
        if file_page.checked_add(pages).is_none_or(|e| e > info.pages) {
            return Err(Error::BeyondFile);
        }
        if let Some((s, _, _)) = self.pages.runs_in(first, end).next() {
            return Err(Error::InvalidState {
                addr: super::keys::untag(s << 12).1,
            });
        }
        let need = self.pages.needed_tables(first, end);
        let state = Some(ModelState::NotPresentMmap {
            file,
            page: file_page,
        });
        Ok(Plan {
            prediction: self.outcome(need, first, end).predict(Response::Done),
            effect: Effect::Set { first, end, state },
        })
    }

    /// `Evict` over the validated pages `first..end`: at most every page it
    /// may send out (the events decide, see `reclaim`).
    pub(super) fn plan_evict(&self, (first, end): (u64, u64)) -> Plan {
        let (mut swap, mut drop) = (0, 0);
        for (s, e, st) in self.pages.runs_in(first, end) {
            match st {
                ModelState::PresentRam { writable: true, .. }
                | ModelState::PresentMmap { private: true, .. } => swap += e - s,
                ModelState::PresentMmap { .. } => drop += e - s,
                _ => {}
            }
        }
        Plan {
            prediction: Prediction::Evict { swap, drop },
            effect: Effect::None,
        }
    }
}

impl Model {
    /// A `Reset` answered with events: they come from its own scavenge of
    /// the heap, after it (semantics, **Reset**), so they are applied after
    /// the reset, and may only be `Scavenged`.
    pub(super) fn apply_reset(
        &mut self,
        req: &Request,
        events: &[Reclaim],
        inner: &Response,
    ) -> Result<(), (String, String)> {
        let mut m = self.clone();
        m.judge_plain(req, inner)?;
        if let Some(e) = events
            .iter()
            .find(|e| !matches!(e, Reclaim::Scavenged { .. }))
        {
            return Err((
                "Done, with Scavenged events of the heap alone".into(),
                format!("a Reset reclaims heap pages only, not {e:?}"),
            ));
        }
        let applied = m
            .apply_events(events, &Default::default())
            .map_err(|why| ("legal reclaim events".to_string(), why))?;
        m.keep_events(applied);
        // The reset zeroes the reclaim counters after its scavenge.
        m.reclaims = [0; 3];
        *self = m;
        Ok(())
    }

    /// `Reset`: back to boot, but the files, the fixed numbers learned,
    /// the roots of the spaces it destroys and the heap's pages stay (the kernel's blocks live on; only the host's
    /// blocks are freed).
    pub(super) fn reset(&mut self) {
        let mut m = Model::new(&self.hello);
        m.files = std::mem::take(&mut self.files);
        m.learned = self.learned;
        m.heap = std::mem::take(&mut self.heap);
        // Every space but 0 destroyed (their roots retired), 0 current.
        m.spaces = self.spaces.clone();
        m.spaces.reset();
        m.heap.blocks.clear();
        m.heap.written.clear();
        for vpn in m.heap.present.clone() {
            m.data.remove(&vpn);
        }
        // The same model, changed everywhere.
        m.dirty = self.dirty.clone();
        m.dirty.everything();
        *self = m;
    }

    /// Gives the clean file pages of `first..end` their bytes as the
    /// host's data (they become anonymous).
    pub(super) fn materialize_clean(&mut self, first: u64, end: u64) {
        let clean: Vec<(u64, u64)> = self
            .pages
            .runs_in(first, end)
            .filter(|r| matches!(r.2, ModelState::PresentMmap { private: false, .. }))
            .map(|(s, e, _)| (s, e))
            .collect();
        for (s, e) in clean {
            (s..e).for_each(|p| self.materialize(p));
        }
    }

    /// The end of a kernel touch of `addr..addr + len` that lies in one
    /// live host heap block (semantics, `Write`), else `None`.
    pub(super) fn heap_touch(&self, addr: u64, len: u64, privilege: Privilege) -> Option<u64> {
        if privilege != Privilege::Kernel || len == 0 || len > protocol::MAX_TOUCH_LEN {
            return None;
        }
        let end = addr.checked_add(len)?;
        self.heap.block_holding(addr, end).map(|_| end)
    }
}
