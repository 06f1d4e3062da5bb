//! Editing a trace's operations (removing, appending, inserting) with its
//! batch sizes and its references to earlier answers kept right.

use super::{Entry, Trace};
use crate::op::Op;
use crate::refs::Ref;

impl Trace {
    /// Removes operations `range`, keeping the batch sizes consistent (a
    /// batch left empty goes) and the references right: one to a later
    /// operation moves with it, one to a removed operation goes (its line
    /// keeps its literal).
    pub fn remove_ops(&mut self, range: std::ops::Range<usize>) {
        let cut = range.len();
        for e in &mut self.entries[range.end..] {
            e.reference = e.reference.and_then(|r| match r.op {
                i if i >= range.end => Some(Ref { op: i - cut, ..r }),
                i if i >= range.start => None,
                _ => Some(r),
            });
        }
        if !self.header.batches.is_empty() {
            let mut at = 0usize;
            for n in &mut self.header.batches {
                let (s, e) = (at, at + *n as usize);
                let cut = range.end.min(e).saturating_sub(range.start.max(s));
                *n -= cut as u32;
                at = e;
            }
            self.header.batches.retain(|&n| n > 0);
        }
        self.entries.drain(range);
    }

    /// Removes every operation `drop` picks, as [`Trace::remove_ops`] does
    /// (batches and references kept right); answers how many went.
    pub fn remove_where(&mut self, mut drop: impl FnMut(&Op) -> bool) -> usize {
        let gone: Vec<bool> = self.entries.iter().map(|e| drop(&e.op)).collect();
        // Each kept operation's new index.
        let mut to = Vec::with_capacity(gone.len());
        let mut kept = 0;
        for &g in &gone {
            to.push((!g).then_some(kept));
            kept += usize::from(!g);
        }
        if !self.header.batches.is_empty() {
            let mut at = 0usize;
            for n in &mut self.header.batches {
                let end = at + *n as usize;
                let cut = gone[at.min(gone.len())..end.min(gone.len())]
                    .iter()
                    .filter(|&&g| g)
                    .count();
                *n -= cut as u32;
                at = end;
            }
            self.header.batches.retain(|&n| n > 0);
        }
        let entries = std::mem::take(&mut self.entries);
        self.entries = entries
            .into_iter()
            .zip(&gone)
            .filter(|(_, &g)| !g)
            .map(|(mut e, _)| {
                e.reference = e.reference.and_then(|r| Some(Ref { op: to[r.op]?, ..r }));
                e
            })
            .collect();
        gone.len() - kept
    }

    /// `other`'s operations appended after this trace's, their references
    /// moved with them.
    pub fn append(&mut self, other: &Trace) {
        let at = self.entries.len();
        self.entries.extend(other.entries.iter().map(|e| Entry {
            reference: e.reference.map(|r| Ref { op: r.op + at, ..r }),
            ..e.clone()
        }));
    }

    /// `ops` put before this trace's operations (their own batch when the
    /// trace records batches), every reference moved with its target.
    pub fn prepend(&mut self, ops: impl IntoIterator<Item = Op>) {
        self.insert_ops(0, ops);
    }

    /// `ops` put before operation `at` (their own batches of at most
    /// [`protocol::MAX_BATCH`] when the trace records batches; a batch
    /// they fall inside is split around them), every reference moved with
    /// its target.
    pub fn insert_ops(&mut self, at: usize, ops: impl IntoIterator<Item = Op>) {
        let head: Vec<Entry> = ops.into_iter().map(Entry::from).collect();
        let k = head.len();
        if k == 0 {
            return;
        }
        let at = at.min(self.entries.len());
        for e in &mut self.entries {
            e.reference = e.reference.map(|r| {
                if r.op >= at {
                    Ref { op: r.op + k, ..r }
                } else {
                    r
                }
            });
        }
        if !self.header.batches.is_empty() {
            let max = protocol::MAX_BATCH;
            let sizes = (0..k.div_ceil(max)).map(|i| (k - i * max).min(max) as u32);
            let mut batches = Vec::with_capacity(self.header.batches.len() + k.div_ceil(max) + 1);
            let mut start = 0usize;
            let mut sizes = Some(sizes);
            for &b in &self.header.batches {
                let end = start + b as usize;
                if (start..end).contains(&at) {
                    if at > start {
                        batches.push((at - start) as u32);
                    }
                    batches.extend(sizes.take().into_iter().flatten());
                    batches.push((end - at) as u32);
                } else {
                    batches.push(b);
                }
                start = end;
            }
            batches.extend(sizes.into_iter().flatten());
            self.header.batches = batches;
        }
        self.entries.splice(at..at, head);
    }
}
