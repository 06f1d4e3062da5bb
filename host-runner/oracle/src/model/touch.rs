//! `Write` and `Read`: where a touch stops, which pages it allocates, the
//! bytes it stores and the checksum it answers.

use std::sync::Arc;

use protocol::{pattern, FaultReason, PAGE_SIZE};

use super::pages::ModelState;
use super::prediction::Prediction;
use super::{Effect, Model, PageBytes, Plan};

/// A touch of `addr..stop`, the bytes before the fault (or all of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchPlan {
    addr: u64,
    stop: u64,
    /// The seed of a `Write`; `None` for a `Read`.
    seed: Option<u64>,
    /// Allocate-on-write page runs the touch allocates, by page number.
    allocs: Vec<(u64, u64)>,
}

const ZERO: [u8; PAGE_SIZE as usize] = [0; PAGE_SIZE as usize];

/// [`pattern::checksum`]'s CRC-32C with a 16-way table: the same function
/// (a test holds them equal), several times faster on 256 MiB reads.
static CRC32C: crc::Crc<u32, crc::Table<16>> =
    crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);

impl Model {
    /// Plans the touch of `addr..end` (validated, non-empty).
    pub(super) fn plan_touch(&self, addr: u64, end: u64, seed: Option<u64>) -> Plan {
        let write = seed.is_some();
        let (first, last) = (addr >> 12, ((end - 1) >> 12) + 1);
        let mut free = self.free_frames();
        let mut allocs = Vec::new();
        let mut at = first;
        let mut fault = None;
        let mut segments: Vec<(u64, u64, Option<ModelState>)> = Vec::new();
        for (s, e, st) in self.pages.runs_in(first, last) {
            if s > at {
                segments.push((at, s, None));
            }
            segments.push((s, e, Some(st)));
            at = e;
        }
        if at < last {
            segments.push((at, last, None));
        }
        for (s, e, st) in segments {
            let stop = match st {
                None => Some((s, FaultReason::Unusable)),
                Some(ModelState::PresentRam { writable: false }) if write => {
                    Some((s, FaultReason::ReadOnly))
                }
                Some(ModelState::PresentRam { .. }) => None,
                Some(ModelState::AllocOnWrite) => {
                    let got = free.min(e - s);
                    free -= got;
                    if got > 0 {
                        allocs.push((s, s + got));
                    }
                    (got < e - s).then_some((s + got, FaultReason::OutOfMemory))
                }
                Some(other) => {
                    return Plan {
                        prediction: Prediction::Unspecified(format!(
                            "a touch of page {:#x} in state {other:?}",
                            s << 12
                        )),
                        effect: Effect::None,
                    }
                }
            };
            if let Some((page, reason)) = stop {
                fault = Some(((page << 12).max(addr), reason));
                break;
            }
        }
        let stop = fault.map_or(end, |f| f.0);
        let response = match (fault, seed) {
            (Some((addr, reason)), _) => protocol::Response::Fault {
                addr,
                write,
                reason,
            },
            (None, Some(_)) => protocol::Response::Done,
            (None, None) => protocol::Response::Checksum {
                checksum: self.checksum(addr, end),
            },
        };
        Plan {
            prediction: Prediction::Exact(response),
            effect: Effect::Touch(TouchPlan {
                addr,
                stop,
                seed,
                allocs,
            }),
        }
    }

    /// The checksum of the bytes the model holds at `addr..end`.
    fn checksum(&self, addr: u64, end: u64) -> u32 {
        let mut sum = CRC32C.digest();
        let mut at = addr;
        while at < end {
            let page_end = ((at >> 12) + 1) << 12;
            let to = end.min(page_end);
            let (lo, hi) = ((at & 0xfff) as usize, lo_hi_end(to));
            let bytes = self.data.get(&(at >> 12)).map_or(&ZERO, |p| &**p);
            sum.update(&bytes[lo..hi]);
            at = to;
        }
        sum.finalize()
    }

    /// Carries out a planned touch.
    pub(super) fn commit_touch(&mut self, t: TouchPlan) {
        for (s, e) in t.allocs {
            self.pages
                .set(s, e, Some(ModelState::PresentRam { writable: true }));
            self.faults_resolved += e - s;
        }
        let Some(seed) = t.seed else { return };
        let mut at = t.addr;
        while at < t.stop {
            let page_end = ((at >> 12) + 1) << 12;
            let to = t.stop.min(page_end);
            let (lo, hi) = ((at & 0xfff) as usize, lo_hi_end(to));
            let page: &mut PageBytes = self.data.entry(at >> 12).or_insert_with(|| Arc::new(ZERO));
            pattern::fill(seed, at, &mut Arc::make_mut(page)[lo..hi]);
            at = to;
        }
    }
}

/// The end offset inside its page of a range ending at `to` (4096 for a
/// page-aligned end).
fn lo_hi_end(to: u64) -> usize {
    match to & 0xfff {
        0 => PAGE_SIZE as usize,
        n => n as usize,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fast_checksum_is_the_protocol_s(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
            prop_assert_eq!(super::CRC32C.checksum(&bytes), protocol::pattern::checksum(&bytes));
        }
    }
}
