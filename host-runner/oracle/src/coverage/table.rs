//! The model-coverage table as text: one line per transition, then every
//! event with its count (those never reached too, as 0).

use std::fmt;

use super::{Event, ModelCoverage, Transition};

impl Transition {
    /// `area: state` of the page, or `-` for a request that names none.
    pub fn from_name(&self) -> String {
        match self.from {
            Some(s) => format!("{}: {}", s.area().name(), s.name()),
            None => "-".into(),
        }
    }

    /// The answer's class, `+reclaim` when it carried reclaim events.
    pub fn answer_name(&self) -> String {
        let mut a = self.answer.name();
        if self.reclaimed {
            a.push_str(" +reclaim");
        }
        a
    }
}

impl Event {
    /// Every event, in order.
    pub const ALL: [Event; 22] = [
        Event::PresentPageUnmapped,
        Event::SwappedPageConverted,
        Event::SwappedPageUnmapped,
        Event::DirtyFilePageSwapped,
        Event::RamPageSwapped,
        Event::CleanFilePageDropped,
        Event::HeapScavengedNeighbourLive,
        Event::HeapPageScavenged,
        Event::SwapIn,
        Event::FileLoad,
        Event::CopyOnWrite,
        Event::AllocatorNearEmpty,
        Event::ReclaimUnderPressure,
        Event::ReclaimRingFull,
        Event::RangeCrossesTable,
        Event::PageTableEmptied,
        Event::SpaceSwitchedAway,
        Event::SpaceDestroyedHoldingPages,
        Event::KernelSlotSharedBySpaces,
        Event::ReclaimInOtherSpace,
        Event::SharedMappingDropped,
        Event::SharedFrameFreed,
    ];
}

impl fmt::Display for ModelCoverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "model transitions: {} reached (request, caller, page state before, answer)",
            self.transitions_reached()
        )?;
        for (t, n) in self.transitions() {
            writeln!(
                f,
                "  {:<24} {:<6} {:<38} {:<28} {n:>9}",
                t.request.name(),
                t.caller.name(),
                t.from_name(),
                t.answer_name()
            )?;
        }
        writeln!(
            f,
            "model events: {} of {} reached",
            self.events_reached(),
            Event::ALL.len()
        )?;
        for e in Event::ALL {
            writeln!(f, "  {:<38} {:>9}", e.name(), self.event_count(e))?;
        }
        Ok(())
    }
}
