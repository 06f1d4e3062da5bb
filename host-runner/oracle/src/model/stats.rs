//! `Stats` in version 2: the counters the history determines are predicted
//! exactly, the guest's own are checked against bounds and the identity
//! `free + tables + present + host + heap_pages == boot_free`.

use std::fmt;

use protocol::{Stats, PAGE_SIZE};

use super::pages::ModelState;
use super::Model;

/// What a `Stats` answer must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsBounds {
    /// The determined counters (the guest's own ones are ignored here;
    /// `free_frames` and `heap_pages` are the bounds' most free / fewest).
    pub exact: Stats,
    /// `swap_bytes_total` and `heap_table_frames` once learned (fixed at boot).
    pub learned: Option<(u64, u64)>,
    /// `heap_pages` bounds, inclusive.
    pub heap_pages: (u64, u64),
    /// The host's live heap bytes (a lower bound of `heap_bytes_live`).
    pub host_live_bytes: u64,
}

impl StatsBounds {
    /// Why `got` breaks these bounds, or `None`.
    pub fn mismatch(&self, got: &Stats) -> Option<String> {
        let e = &self.exact;
        let fields = [
            ("total_frames", e.total_frames, got.total_frames),
            ("boot_free_frames", e.boot_free_frames, got.boot_free_frames),
            (
                "page_table_frames",
                e.page_table_frames,
                got.page_table_frames,
            ),
            ("present_pages", e.present_pages, got.present_pages),
            (
                "alloc_on_write_pages",
                e.alloc_on_write_pages,
                got.alloc_on_write_pages,
            ),
            ("host_frames", e.host_frames, got.host_frames),
            ("valloc_pages", e.valloc_pages, got.valloc_pages),
            ("faults_resolved", e.faults_resolved, got.faults_resolved),
            ("swap_slots_used", e.swap_slots_used, got.swap_slots_used),
            ("heap_max_bytes", e.heap_max_bytes, got.heap_max_bytes),
            ("pages_scavenged", e.pages_scavenged, got.pages_scavenged),
            ("pages_evicted", e.pages_evicted, got.pages_evicted),
            ("pages_dropped", e.pages_dropped, got.pages_dropped),
        ];
        if let Some((name, want, g)) = fields.iter().find(|(_, w, g)| w != g) {
            return Some(format!("{name} is {g}, expected {want}"));
        }
        if let Some((total, tables)) = self.learned {
            if (got.swap_bytes_total, got.heap_table_frames) != (total, tables) {
                return Some(format!(
                    "swap_bytes_total {} and heap_table_frames {} changed since boot ({total}, {tables})",
                    got.swap_bytes_total, got.heap_table_frames
                ));
            }
        }
        let (lo, hi) = self.heap_pages;
        if got.heap_pages < lo || got.heap_pages > hi {
            return Some(format!("heap_pages {} outside {lo}..={hi}", got.heap_pages));
        }
        let used = [got.free_frames, got.page_table_frames, got.present_pages]
            .into_iter()
            .chain([got.host_frames, got.heap_pages])
            .try_fold(0u64, u64::checked_add);
        if used != Some(got.boot_free_frames) {
            return Some(format!(
                "free + tables + present + host + heap_pages is {used:?}, not boot_free_frames {}",
                got.boot_free_frames
            ));
        }
        let slots = got.swap_slots_used;
        let (min, max) = (slots, slots.saturating_mul(PAGE_SIZE));
        if got.swap_bytes_used < min || got.swap_bytes_used > max.min(got.swap_bytes_total) {
            return Some(format!(
                "swap_bytes_used {} for {slots} slots in a store of {} bytes",
                got.swap_bytes_used, got.swap_bytes_total
            ));
        }
        if got.heap_bytes_live < self.host_live_bytes || got.heap_bytes_live > e.heap_max_bytes {
            return Some(format!(
                "heap_bytes_live {} below the host's {} live bytes or above the heap",
                got.heap_bytes_live, self.host_live_bytes
            ));
        }
        None
    }
}

impl fmt::Display for StatsBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Stats {:?} with heap_pages in {}..={} and free_frames to match",
            self.exact, self.heap_pages.0, self.heap_pages.1
        )
    }
}

impl Model {
    /// The counters `Stats` must answer; the guest's own counters are the
    /// model's bounds (`heap_pages` the fewest, `free_frames` the most).
    pub fn stats(&self) -> Stats {
        let [scavenged, evicted, dropped] = self.reclaims;
        let (swap_total, heap_tables) = self.learned.unwrap_or((0, 0));
        Stats {
            total_frames: self.hello.total_frames,
            free_frames: self.free_frames(),
            boot_free_frames: self.hello.boot_free_frames,
            page_table_frames: self.table_frames(),
            present_pages: self.present_frames(),
            alloc_on_write_pages: self
                .pages
                .count(|s| matches!(s, ModelState::AllocOnWrite | ModelState::PinnedAllocOnWrite)),
            host_frames: self.host.len() as u64,
            valloc_pages: self.vspace.count(|_| true),
            faults_resolved: self.faults_resolved,
            swap_slots_used: self.pages.count(|s| matches!(s, ModelState::OnSwap { .. })),
            swap_bytes_total: swap_total,
            heap_max_bytes: self.hello.heap_max_bytes,
            heap_pages: self.heap_pages_min(),
            heap_table_frames: heap_tables,
            heap_bytes_live: self.heap.live_bytes(),
            pages_scavenged: scavenged,
            pages_evicted: evicted,
            pages_dropped: dropped,
            ..Stats::default()
        }
    }

    pub(super) fn stats_bounds(&self) -> StatsBounds {
        StatsBounds {
            exact: self.stats(),
            learned: self.learned,
            heap_pages: (self.heap_pages_min(), self.heap_pages_max()),
            host_live_bytes: self.heap.live_bytes(),
        }
    }

    /// Learns the guest's own counters from a (judged) `Stats` answer.
    pub(super) fn commit_stats(&mut self, got: &Stats) {
        self.learned = Some((got.swap_bytes_total, got.heap_table_frames));
        self.heap.stats_pages = got.heap_pages;
        self.heap.scavenged_since = 0;
    }
}
