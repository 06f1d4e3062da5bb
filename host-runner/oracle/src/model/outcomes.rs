//! The answers a touch may get when the free frames are known only within
//! bounds, and how an answer is judged against them. (The one answer they
//! leave, when they leave one: `Prediction::of_touch`.)

use std::fmt;

use protocol::{FaultReason, Response};

use super::hex::hex_debug;

/// The answers a touch may get: the complete one when every frame it
/// needs is found, or `Fault { OutOfMemory }` at a page needing a frame
/// where the frames found so far lie within the free-frame bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchOutcomes {
    /// The touch's first byte and the pages below, as keys
    /// ([`super::keys`]): the plain address plus `off`.
    pub(super) addr: u64,
    /// The key offset of the touch's addresses (the current space's tag
    /// for a user touch, else 0): answers name plain addresses.
    pub(super) off: u64,
    pub(super) write: bool,
    /// The answer if no frame runs out (`None`: any `Checksum`, for heap
    /// bytes the host never wrote).
    pub(super) complete: Option<Response>,
    /// Page runs before the complete answer's stop whose touch takes a
    /// frame: (first, end, certainly: false for heap pages the kernel may
    /// have made present already).
    pub(super) needy: Vec<(u64, u64, bool)>,
    /// The fewest and the most frames that can be free.
    pub(super) free: (u64, u64),
    /// Reclaim may have given up (see `Model::reclaim_exhausted`).
    pub(super) oom_ok: bool,
}

impl TouchOutcomes {
    fn needs(&self) -> u64 {
        self.needy.iter().filter(|r| r.2).map(|r| r.1 - r.0).sum()
    }

    /// The answer the model assumes in a batch prediction.
    pub(crate) fn assumed(&self) -> Option<Response> {
        (self.needs() <= self.free.1)
            .then(|| self.complete.clone())
            .flatten()
    }

    /// Why `got` is not one of the possible answers.
    pub fn mismatch(&self, got: &Response) -> Option<String> {
        let complete = match (&self.complete, got) {
            (Some(c), g) => c == g,
            (None, g) => matches!(g, Response::Checksum { .. }),
        };
        if complete {
            let n = self.needs();
            return (n > self.free.1)
                .then(|| format!("it needs {n} frames; at most {} can be free", self.free.1));
        }
        let Response::Fault {
            addr,
            write,
            reason: FaultReason::OutOfMemory,
        } = *got
        else {
            return Some("different answer".into());
        };
        // A fault outside the touch's half is at none of its pages.
        if self.off != 0 && !super::keys::in_lower_half(addr) {
            return Some("the fault's address is not in the touch's half".into());
        }
        let addr = addr + self.off;
        let (mut sure, mut all) = (0, 0);
        for &(s, e, certain) in &self.needy {
            if (s..e).contains(&(addr >> 12)) && write == self.write {
                let before = addr.max(self.addr) >> 12;
                if addr != (before << 12).max(self.addr) {
                    break;
                }
                let k = before - s;
                let (sure, all) = (sure + if certain { k } else { 0 }, all + k);
                return if !self.oom_ok {
                    Some("a clean file page outside the range was left to drop".into())
                } else if sure > self.free.1 {
                    Some(format!("{sure} frames found, at most {} free", self.free.1))
                } else if all < self.free.0 {
                    Some(format!(
                        "only {all} frames found, at least {} free",
                        self.free.0
                    ))
                } else {
                    None
                };
            }
            all += e - s;
            if certain {
                sure += e - s;
            }
        }
        Some("no frame-taking page of the touch is there".into())
    }
}

impl fmt::Display for TouchOutcomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.complete {
            Some(r) => write!(f, "{}", hex_debug(r))?,
            None => write!(f, "any Checksum")?,
        }
        write!(
            f,
            " (needing {} frames, {}..={} free), or Fault(OutOfMemory) where they run out",
            self.needs(),
            self.free.0,
            self.free.1
        )
    }
}
