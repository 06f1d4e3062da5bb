//! Model coverage: which (request × page state × answer) transitions and
//! which invariant-relevant events the judged answers reached, counted on
//! the host from the model alone (no guest code, no guest counters).
//!
//! The model records into its own [`ModelCoverage`] as it applies answers
//! (`Model::coverage`, `Model::take_coverage`). A transition is counted
//! once per request for each state its pages were in before it (a
//! `Convert` over present and on-swap pages counts two); a request that
//! names no pages counts one with no state. [`ModelCoverage::merge`] adds
//! two together (associative and commutative: jobs and shards merge in any
//! order), and [`ModelCoverage::novelty`] says what one sequence reached
//! that the campaign had not: the signal a corpus keeps sequences by.

mod kinds;
mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use kinds::{AnswerClass, Area, Caller, Refusal, RequestKind, StateKind, StateSet};

/// One transition: a request of `caller` met a page in state `from` (None:
/// the request names no pages) and was answered `answer`; `reclaimed` when
/// the answer carried reclaim events (the guest reclaimed to serve it).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Transition {
    pub request: RequestKind,
    pub caller: Caller,
    pub from: Option<StateKind>,
    pub answer: AnswerClass,
    pub reclaimed: bool,
}

/// Moments the invariants care about, beyond single transitions.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// `Unmap` or a convert to unusable took a page that held a frame
    /// (its translation must go from the TLB too).
    PresentPageUnmapped,
    /// A page on swap was converted (to usable RAM: kept; to unusable:
    /// its slot freed).
    SwappedPageConverted,
    /// `Unmap` of a page on swap (its slot freed).
    SwappedPageUnmapped,
    /// A private (written) file page went to swap.
    DirtyFilePageSwapped,
    /// A present RAM page went to swap.
    RamPageSwapped,
    /// A clean file page was dropped (not present again).
    CleanFilePageDropped,
    /// A heap page lost its frame while a neighbouring page held a live
    /// block of the host's.
    HeapScavengedNeighbourLive,
    /// A heap page lost its frame.
    HeapPageScavenged,
    /// A touch brought a page back from swap.
    SwapIn,
    /// A touch loaded a not-present file page.
    FileLoad,
    /// A write made a clean file page private (copy on write in place).
    CopyOnWrite,
    /// A request arrived with at most a few frames free beyond the heap's
    /// reserve ([`NEAR_EMPTY_FRAMES`]).
    AllocatorNearEmpty,
    /// A request other than `Evict`, `HeapScavenge` or `Reset` was answered
    /// with reclaim events: the guest was under memory pressure.
    ReclaimUnderPressure,
    /// An answer filled the reclaim ring.
    ReclaimRingFull,
    /// A successful range request spanned two page tables (a 2 MiB
    /// boundary).
    RangeCrossesTable,
    /// A successful `Unmap` or convert to unusable left a page table it
    /// touched empty (the VMM must free it).
    PageTableEmptied,
    /// `SwitchSpace` left a space holding present user pages for another:
    /// no translation of them may survive the switch.
    SpaceSwitchedAway,
    /// `DestroySpace` freed a space that held user pages (frames, swap
    /// slots, tables).
    SpaceDestroyedHoldingPages,
    /// A successful request made or freed a kernel-half PDPT while a
    /// space other than 0 lived: the VMM writes that PML4 entry into
    /// every live space's PML4.
    KernelSlotSharedBySpaces,
    /// An answer came with reclaim events while a space other than 0 was
    /// current (the clock sweeps that space's user half).
    ReclaimInOtherSpace,
    /// A shared page became unusable (`Unmap`, convert to unusable,
    /// `DestroySpace`) while other pages still map its frame: the count
    /// goes down, the frame stays.
    SharedMappingDropped,
    /// The last mapping of a shared frame went: the frame and its record
    /// are freed.
    SharedFrameFreed,
}

/// Frames free beyond the heap's reserve at or below which the allocator
/// counts as near empty.
pub const NEAR_EMPTY_FRAMES: u64 = 32;

impl Event {
    pub fn name(self) -> &'static str {
        use Event as E;
        match self {
            E::PresentPageUnmapped => "present page unmapped",
            E::SwappedPageConverted => "swapped page converted",
            E::SwappedPageUnmapped => "swapped page unmapped",
            E::DirtyFilePageSwapped => "dirty file page swapped",
            E::RamPageSwapped => "RAM page swapped",
            E::CleanFilePageDropped => "clean file page dropped",
            E::HeapScavengedNeighbourLive => "heap page scavenged, neighbour live",
            E::HeapPageScavenged => "heap page scavenged",
            E::SwapIn => "swap-in",
            E::FileLoad => "file page loaded",
            E::CopyOnWrite => "copy on write",
            E::AllocatorNearEmpty => "allocator near empty",
            E::ReclaimUnderPressure => "reclaim under pressure",
            E::ReclaimRingFull => "reclaim ring full",
            E::RangeCrossesTable => "range crosses a page table",
            E::PageTableEmptied => "page table emptied",
            E::SpaceSwitchedAway => "space switched away from present pages",
            E::SpaceDestroyedHoldingPages => "space destroyed holding pages",
            E::KernelSlotSharedBySpaces => "kernel PML4 entry changed with spaces",
            E::ReclaimInOtherSpace => "reclaim in a space other than 0",
            E::SharedMappingDropped => "shared mapping dropped, frame kept",
            E::SharedFrameFreed => "shared frame freed with its last mapping",
        }
    }
}

/// What one request reached (before it is known to be judged right).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub transitions: Vec<Transition>,
    pub events: Vec<Event>,
}

/// Transitions and events reached, with how often.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelCoverage {
    #[serde(with = "entries")]
    transitions: BTreeMap<Transition, u64>,
    #[serde(with = "entries")]
    events: BTreeMap<Event, u64>,
}

/// What a coverage reached that another had not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelNovelty {
    pub transitions: usize,
    pub events: usize,
}

impl ModelNovelty {
    /// Whether anything was new.
    pub fn any(&self) -> bool {
        self.transitions > 0 || self.events > 0
    }
}

impl ModelCoverage {
    /// Counts what one request reached.
    pub fn add(&mut self, seen: &Observation) {
        for t in &seen.transitions {
            *self.transitions.entry(*t).or_default() += 1;
        }
        for e in &seen.events {
            *self.events.entry(*e).or_default() += 1;
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &ModelCoverage) {
        for (t, n) in &other.transitions {
            *self.transitions.entry(*t).or_default() += n;
        }
        for (e, n) in &other.events {
            *self.events.entry(*e).or_default() += n;
        }
    }

    /// What this coverage reached that `seen` had not.
    pub fn novelty(&self, seen: &ModelCoverage) -> ModelNovelty {
        ModelNovelty {
            transitions: self
                .transitions
                .keys()
                .filter(|t| !seen.transitions.contains_key(t))
                .count(),
            events: self
                .events
                .keys()
                .filter(|e| !seen.events.contains_key(e))
                .count(),
        }
    }

    /// Every transition reached, in order, with its count.
    pub fn transitions(&self) -> impl Iterator<Item = (&Transition, u64)> {
        self.transitions.iter().map(|(t, &n)| (t, n))
    }

    /// Every event reached, in order, with its count.
    pub fn events(&self) -> impl Iterator<Item = (&Event, u64)> {
        self.events.iter().map(|(e, &n)| (e, n))
    }

    /// How often `t` was reached.
    pub fn count(&self, t: &Transition) -> u64 {
        self.transitions.get(t).copied().unwrap_or(0)
    }

    /// How often `e` happened.
    pub fn event_count(&self, e: Event) -> u64 {
        self.events.get(&e).copied().unwrap_or(0)
    }

    /// Distinct transitions reached.
    pub fn transitions_reached(&self) -> usize {
        self.transitions.len()
    }

    /// Distinct events reached.
    pub fn events_reached(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transitions.is_empty() && self.events.is_empty()
    }
}

/// A map with structured keys as a list of `[key, count]` pairs (JSON maps
/// take string keys only).
mod entries {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, S: Serializer>(
        map: &BTreeMap<K, u64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, K, D>(d: D) -> Result<BTreeMap<K, u64>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        D: Deserializer<'de>,
    {
        let pairs: Vec<(K, u64)> = Vec::deserialize(d)?;
        let mut map = BTreeMap::new();
        for (k, n) in pairs {
            *map.entry(k).or_default() += n;
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests;
