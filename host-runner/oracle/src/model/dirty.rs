//! What changed since the memory checker last looked: every page whose
//! state, expected frame or bytes changed (reclaim events included), the
//! host frames taken or given back, or everything (a `Reset`). The
//! checker's incremental check re-verifies exactly these, and whatever the
//! guest's memory shows changed, against its record of the last check.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use super::runs::insert_run;

/// A source of model identities: a model made by `Model::new` gets a fresh
/// one, so that a checker never takes one model's changes for another's.
static EPOCHS: AtomicU64 = AtomicU64::new(1);

/// The changes accumulating in a model between two takes.
#[derive(Clone, Debug)]
pub(crate) struct Dirty {
    epoch: u64,
    /// Takes so far.
    seq: u64,
    all: bool,
    /// Page numbers, as disjoint runs not touching one another: start → end.
    pages: BTreeMap<u64, u64>,
    /// Host frame numbers taken or given back.
    host: BTreeSet<u64>,
}

impl Dirty {
    pub fn new() -> Self {
        Dirty {
            epoch: EPOCHS.fetch_add(1, Ordering::Relaxed),
            seq: 0,
            all: false,
            pages: BTreeMap::new(),
            host: BTreeSet::new(),
        }
    }

    /// Pages `start..end` changed.
    pub fn pages(&mut self, start: u64, end: u64) {
        if start >= end || self.all {
            return;
        }
        insert_run(&mut self.pages, start, end);
    }

    /// Page `vpn` changed.
    pub fn page(&mut self, vpn: u64) {
        self.pages(vpn, vpn.saturating_add(1));
    }

    /// Host frame number `f` was taken or given back.
    pub fn host_frame(&mut self, f: u64) {
        if !self.all {
            self.host.insert(f);
        }
    }

    /// Everything changed (a `Reset`).
    pub fn everything(&mut self) {
        self.all = true;
        self.pages.clear();
        self.host.clear();
    }

    /// The changes so far, and a clean slate.
    pub fn take(&mut self) -> Changes {
        self.seq += 1;
        Changes {
            epoch: self.epoch,
            first: self.seq,
            seq: self.seq,
            all: std::mem::take(&mut self.all),
            pages: std::mem::take(&mut self.pages).into_iter().collect(),
            host_frames: std::mem::take(&mut self.host).into_iter().collect(),
        }
    }
}

/// What changed in a model between two takes ([`crate::Model::take_changes`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    epoch: u64,
    /// The first and last take they cover.
    first: u64,
    seq: u64,
    all: bool,
    pages: Vec<(u64, u64)>,
    host_frames: Vec<u64>,
}

impl Changes {
    /// Changes that cover everything: a checker given these checks in full.
    pub fn everything() -> Self {
        Changes {
            all: true,
            ..Changes::default()
        }
    }

    /// Whether everything may have changed (a `Reset`, or no model behind).
    pub fn is_everything(&self) -> bool {
        self.all
    }

    /// The model these changes come from (0: none).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The last take of that model these cover (1 for the first).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether these changes are the ones taken right after `(epoch, seq)`
    /// of the same model, so that together with a record made then they
    /// cover every change.
    pub fn follow(&self, epoch: u64, seq: u64) -> bool {
        !self.all && self.epoch != 0 && self.epoch == epoch && self.first == seq + 1
    }

    /// Adds the changes taken right after these (of the same model); any
    /// others make these cover everything.
    pub fn merge(&mut self, later: Changes) {
        if self.epoch != later.epoch || later.first != self.seq + 1 || later.all {
            self.all = true;
        }
        self.seq = later.seq;
        if self.all {
            self.pages.clear();
            self.host_frames.clear();
            return;
        }
        let mut d = Dirty {
            epoch: self.epoch,
            seq: 0,
            all: false,
            pages: self.pages.drain(..).collect(),
            host: self.host_frames.drain(..).collect(),
        };
        for (s, e) in later.pages {
            d.pages(s, e);
        }
        d.host.extend(later.host_frames);
        self.pages = d.pages.into_iter().collect();
        self.host_frames = d.host.into_iter().collect();
    }

    /// The changed pages as disjoint runs of page numbers, in order.
    pub fn pages(&self) -> &[(u64, u64)] {
        &self.pages
    }

    /// How many pages changed.
    pub fn page_count(&self) -> u64 {
        self.pages.iter().map(|(s, e)| e - s).sum()
    }

    /// Whether page `vpn` changed.
    pub fn has_page(&self, vpn: u64) -> bool {
        let i = self.pages.partition_point(|&(_, e)| e <= vpn);
        self.pages.get(i).is_some_and(|&(s, _)| s <= vpn)
    }

    /// The changed runs overlapping pages `start..end`, clipped.
    pub fn pages_in(&self, start: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let i = self.pages.partition_point(|&(_, e)| e <= start);
        self.pages[i..]
            .iter()
            .take_while(move |&&(s, _)| s < end)
            .map(move |&(s, e)| (s.max(start), e.min(end)))
    }

    /// Host frame numbers taken or given back, in order.
    pub fn host_frames(&self) -> &[u64] {
        &self.host_frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_take_clears() {
        let mut d = Dirty::new();
        d.pages(10, 12);
        d.pages(20, 30);
        d.page(12);
        d.pages(25, 40);
        d.host_frame(7);
        let c = d.take();
        assert_eq!(c.pages(), [(10, 13), (20, 40)]);
        assert_eq!(c.page_count(), 23);
        assert!(c.has_page(12) && c.has_page(20) && !c.has_page(13) && !c.has_page(40));
        assert_eq!(c.pages_in(11, 21).collect::<Vec<_>>(), [(11, 13), (20, 21)]);
        assert_eq!(c.host_frames(), [7]);
        assert_eq!(c.seq(), 1);
        let next = d.take();
        assert!(next.pages().is_empty() && next.follow(c.epoch(), c.seq()));
        assert!(!next.follow(c.epoch(), 0) && !next.follow(c.epoch() + 1, c.seq()));
        d.pages(5, 6);
        d.everything();
        d.page(9);
        let all = d.take();
        assert!(all.is_everything() && all.pages().is_empty());
        assert!(!all.follow(next.epoch(), next.seq()));
        let mut a = d.take();
        d.pages(1, 3);
        a.merge(d.take());
        d.pages(2, 5);
        d.host_frame(4);
        a.merge(d.take());
        assert_eq!((a.pages(), a.host_frames()), (&[(1, 5)][..], &[4][..]));
        assert!(a.follow(all.epoch(), all.seq()) && !a.is_everything());
        let stale = d.take();
        a.merge(Dirty::new().take());
        assert!(a.is_everything());
        let mut b = stale;
        b.merge(d.take());
        b.merge(d.take());
        assert!(!b.is_everything());
    }

    #[test]
    fn two_models_never_share_an_epoch() {
        let (a, b) = (Dirty::new().take(), Dirty::new().take());
        assert_ne!(a.epoch(), b.epoch());
    }
}
