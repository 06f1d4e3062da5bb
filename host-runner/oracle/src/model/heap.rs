//! The kernel heap as the host sees it: its own blocks (`Kmalloc`,
//! `Kfree`), the bytes it wrote in them, and the heap pages it knows are
//! present. The kernel's own blocks are invisible: they may use any heap
//! byte the host's blocks do not. The host's blocks lie in the upper half
//! (semantics, **Kmalloc**: `protocol::host_heap_offset`), the lower half
//! is the kernel's.

use std::collections::{BTreeMap, BTreeSet};

use protocol::{Error, Response, KMALLOC_GRANULE, MAX_KMALLOC_ALIGN, PAGE_SIZE};

use super::plan::{Effect, Plan};
use super::prediction::Prediction;
use super::runs::insert_run;
use super::Model;

/// What the model knows of the heap.
#[derive(Clone, Debug, Default)]
pub(super) struct Heap {
    /// The host's live blocks: address → size, rounded up to whole
    /// granules (the block a `Kmalloc` hands out).
    pub blocks: BTreeMap<u64, u64>,
    /// Byte ranges of live host blocks the host wrote: start → end.
    pub written: BTreeMap<u64, u64>,
    /// Heap pages (page numbers) the host's touches made present and no
    /// `Scavenged` event took back since.
    pub present: BTreeSet<u64>,
    /// `heap_pages` of the last `Stats` answer, and the pages scavenged since.
    pub stats_pages: u64,
    pub scavenged_since: u64,
}

impl Heap {
    /// The host block holding all of `addr..end`, if any.
    pub fn block_holding(&self, addr: u64, end: u64) -> Option<(u64, u64)> {
        let (&a, &size) = self.blocks.range(..=addr).next_back()?;
        (end <= a + size).then_some((a, size))
    }

    /// Whether a live host block overlaps `addr..end`.
    pub fn overlaps(&self, addr: u64, end: u64) -> Option<(u64, u64)> {
        let (&a, &size) = self.blocks.range(..end).next_back()?;
        (a + size > addr).then_some((a, size))
    }

    /// Bytes in the host's live blocks.
    pub fn live_bytes(&self) -> u64 {
        self.blocks.values().sum()
    }

    /// Marks `addr..end` written.
    pub fn wrote(&mut self, addr: u64, end: u64) {
        insert_run(&mut self.written, addr, end);
    }

    /// Forgets what was written in `addr..end` (a freed block).
    pub fn unwrite(&mut self, addr: u64, end: u64) {
        let pieces: Vec<(u64, u64)> = self
            .written
            .range(..end)
            .filter(|(_, &we)| we > addr)
            .map(|(&ws, &we)| (ws, we))
            .collect();
        for (ws, we) in pieces {
            self.written.remove(&ws);
            if ws < addr {
                self.written.insert(ws, addr);
            }
            if we > end {
                self.written.insert(end, we);
            }
        }
    }

    /// Whether every byte of `addr..end` was written.
    pub fn all_written(&self, addr: u64, end: u64) -> bool {
        self.written
            .range(..=addr)
            .next_back()
            .is_some_and(|(_, &we)| we >= end)
    }
}

impl Model {
    /// The heap's pages, by page number: `heap.start..heap.start + heap_max_bytes`.
    pub(super) fn heap_vpns(&self) -> (u64, u64) {
        let start = self.hello.heap.start;
        let end = start.saturating_add(self.hello.heap_max_bytes);
        (start / PAGE_SIZE, end / PAGE_SIZE)
    }

    /// The host's part of the heap: `heap.start + host_heap_offset..heap.start
    /// + heap_max_bytes`.
    pub(super) fn host_heap(&self) -> (u64, u64) {
        let (start, max) = (self.hello.heap.start, self.hello.heap_max_bytes);
        (
            start.saturating_add(protocol::host_heap_offset(max)),
            start.saturating_add(max),
        )
    }

    pub(super) fn plan_kmalloc(&self, size: u64, align: u64) -> Result<Plan, Error> {
        if size == 0 {
            return Err(Error::ZeroCount);
        }
        if !align.is_power_of_two() {
            return Err(Error::Misaligned);
        }
        if align > MAX_KMALLOC_ALIGN {
            return Err(Error::TooLarge);
        }
        let region = self.host_heap();
        let part = region.1 - region.0;
        let room = part - self.heap.live_bytes().min(part);
        // Whole granules: `size` rounded up (saturating: a size that
        // rounds past `u64::MAX` is out of memory anyway).
        let size = size
            .checked_next_multiple_of(KMALLOC_GRANULE)
            .unwrap_or(u64::MAX);
        if size > room {
            return Err(Error::OutOfMemory);
        }
        Ok(Plan {
            prediction: Prediction::Kmalloc {
                size,
                align: align.max(16),
                region,
            },
            effect: Effect::Kmalloc { size },
        })
    }

    /// Takes the block a `Kmalloc` answered (its place was judged); `size`
    /// is already rounded up to whole granules.
    pub(super) fn commit_kmalloc(&mut self, addr: u64, size: u64) -> Result<(), String> {
        if let Some((a, s)) = self.heap.overlaps(addr, addr + size) {
            return Err(format!(
                "block {addr:#x}+{size:#x} overlaps the live block {a:#x}+{s:#x}"
            ));
        }
        self.heap.blocks.insert(addr, size);
        Ok(())
    }

    pub(super) fn plan_kfree(&self, addr: u64) -> Result<Plan, Error> {
        if !self.heap.blocks.contains_key(&addr) {
            return Err(Error::InvalidState { addr });
        }
        Ok(Plan::done(Effect::Kfree { addr }))
    }

    pub(super) fn commit_kfree(&mut self, addr: u64) {
        if let Some(size) = self.heap.blocks.remove(&addr) {
            self.heap.unwrite(addr, addr + size);
        }
    }

    /// The plan of `HeapScavenge`: a `Scavenged` answer whose count the
    /// reclaim judgement checks against the events.
    pub(super) fn plan_scavenge(&self) -> Plan {
        Plan {
            prediction: Prediction::Scavenge,
            effect: Effect::None,
        }
    }

    /// Judges `Scavenged { pages }` against the answer's events: at most
    /// one page per `Scavenged` event (reclaims made between requests may
    /// add events of their own).
    pub(super) fn judge_scavenge(&self, events: usize, got: &Response) -> Result<(), String> {
        match got {
            Response::Scavenged { pages } if *pages as usize <= events => Ok(()),
            Response::Scavenged { pages } => Err(format!(
                "{pages} pages scavenged but {events} Scavenged events reported"
            )),
            _ => Ok(()),
        }
    }
}
