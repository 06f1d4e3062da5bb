//! What the model expects of an answer, how an answer is judged against it,
//! and the divergence reported when it is not what was expected.

use std::fmt;

use protocol::{Error, FaultReason, PageState, Request, Response, VirtRange};

use super::hex::hex_debug;
use super::outcomes::TouchOutcomes;
use super::pages::ModelState;
use super::stats::StatsBounds;

/// The model's prediction of one answer.
// `Exact` holds a whole `Response` (a v2 `Hello` is large); predictions are
// few and short-lived, so boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Prediction {
    /// Exactly this answer.
    Exact(Response),
    /// `Done`, or `Error(OutOfMemory)` (a contiguous `Map` that may not find
    /// a physically contiguous run although enough frames are free).
    DoneOrOutOfMemory,
    /// `Frames` runs holding `count` frames (one run if `contiguous`); with
    /// `contiguous` or `oom` (the free frames are known only within
    /// bounds), `Error(OutOfMemory)` is accepted too.
    Frames {
        count: u64,
        contiguous: bool,
        oom: bool,
    },
    /// A `Write` or `Read` whose stop depends on how many frames are free.
    Touch(TouchOutcomes),
    /// `Stats` within these bounds.
    Stats(StatsBounds),
    /// `Kmalloc { addr }` with `addr % align == 0` and `addr..addr + size`
    /// inside `region`, the host's part of the heap (overlap with live
    /// blocks is judged by the model), or `Error(OutOfMemory)`.
    Kmalloc {
        size: u64,
        align: u64,
        region: (u64, u64),
    },
    /// `Evicted` with at most `swap` pages swapped and `drop` dropped, in
    /// the state before the answer's events (`Model::apply` judges the
    /// counts against the events).
    Evict { swap: u64, drop: u64 },
    /// `Scavenged` (the model judges the count against the events).
    Scavenge,
    /// No answer is right without reclaim first: the guest had to reclaim
    /// (why) before answering.
    Reclaim(String),
    /// `Valloc` with a free run of `pages` pages inside `region`.
    Valloc { pages: u64, region: VirtRange },
    /// `Space` numbered `space` with any root (the guest's choice; the
    /// model judges it a frame it knows nothing else of, and learns it);
    /// with `oom` (the free frames are known only within bounds),
    /// `Error(OutOfMemory)` too.
    Space { space: u16, oom: bool },
    /// `Pages` with these states (`None` = unusable), each with the
    /// mapping count of its frame when it is shared (0 otherwise); frames
    /// are not predicted.
    Pages(Vec<(Option<ModelState>, u64)>),
    /// The guest sends no answer (`Shutdown`, a kernel `Panic`).
    NoAnswer,
    /// The specification says nothing about this answer (e.g. a touch of a
    /// page in a state no request can create yet): any answer diverges.
    Unspecified(String),
    /// One prediction per request of a batch (approximate after an answer
    /// the model cannot predict exactly; `apply` is exact).
    Batch(Vec<Prediction>),
}

impl Prediction {
    /// A touch's prediction: its one possible answer when the bounds leave
    /// one (every frame-taking page is sure to take one and the free frames
    /// are known exactly), else all of `outcomes`.
    pub(super) fn of_touch(outcomes: TouchOutcomes) -> Prediction {
        let all: u64 = outcomes.needy.iter().map(|r| r.1 - r.0).sum();
        // Enough frames whatever the bounds: the touch completes, with no
        // reclaim (a read of a host block's bytes not all written may
        // answer any checksum: no exact answer, but no shortage either).
        if all <= outcomes.free.0 {
            return match &outcomes.complete {
                Some(c) => Prediction::Exact(c.clone()),
                None => Prediction::Touch(outcomes),
            };
        }
        if outcomes.free.0 != outcomes.free.1 || outcomes.needy.iter().any(|r| !r.2) {
            return Prediction::Touch(outcomes);
        }
        if !outcomes.oom_ok {
            return Prediction::Reclaim("clean file pages outside the range".into());
        }
        let mut k = outcomes.free.0;
        for &(s, e, _) in &outcomes.needy {
            if k < e - s {
                return Prediction::Exact(Response::Fault {
                    addr: ((s + k) << 12).max(outcomes.addr) - outcomes.off,
                    write: outcomes.write,
                    reason: FaultReason::OutOfMemory,
                });
            }
            k -= e - s;
        }
        Prediction::Touch(outcomes)
    }

    /// Why `got` does not fit this prediction, or `None` when it does.
    /// `Batch` is judged element by element by the model itself.
    pub fn mismatch(&self, got: &Response) -> Option<String> {
        let oom = Response::Error(Error::OutOfMemory);
        match (self, got) {
            (Prediction::Exact(want), got) if want == got => None,
            (Prediction::Exact(_), _) => Some("different answer".into()),
            (Prediction::DoneOrOutOfMemory, Response::Done) => None,
            (Prediction::DoneOrOutOfMemory, g) if *g == oom => None,
            (
                Prediction::Frames {
                    contiguous, oom, ..
                },
                g,
            ) if *g == Response::Error(Error::OutOfMemory) => {
                (!contiguous && !oom).then(|| "enough frames are free".into())
            }
            (Prediction::Touch(t), got) => t.mismatch(got),
            (Prediction::Stats(b), Response::Stats(got)) => b.mismatch(got),
            (Prediction::Kmalloc { .. }, g) if *g == oom => None,
            (
                Prediction::Kmalloc {
                    size,
                    align,
                    region,
                },
                Response::Kmalloc { addr },
            ) => {
                let end = addr.checked_add(*size);
                if addr % align != 0 {
                    Some(format!("{addr:#x} is not aligned to {align}"))
                } else if *addr < region.0 || end.is_none_or(|e| e > region.1) {
                    Some(format!(
                        "{addr:#x}+{size:#x} is not inside the host's part of the heap {:#x}..{:#x}",
                        region.0, region.1
                    ))
                } else {
                    None
                }
            }
            // The counts are judged against the events by the model (the
            // bounds here are of the state before them).
            (Prediction::Evict { .. }, Response::Evicted { .. }) => None,
            (Prediction::Scavenge, Response::Scavenged { .. }) => None,
            (Prediction::Reclaim(why), _) => {
                Some(format!("the guest had to reclaim {why} before answering"))
            }
            (
                Prediction::Frames {
                    count, contiguous, ..
                },
                Response::Frames(runs),
            ) => {
                let total = runs.iter().try_fold(0u64, |t, r| t.checked_add(r.count));
                if total != Some(*count) {
                    let total = total.map_or("over 2^64".into(), |t| t.to_string());
                    Some(format!("runs hold {total} frames"))
                } else if *contiguous && runs.len() != 1 {
                    Some(format!("{} runs for a contiguous request", runs.len()))
                } else {
                    None
                }
            }
            (Prediction::Valloc { .. }, Response::Valloc { .. }) => None,
            (Prediction::Space { oom, .. }, g) if *g == Response::Error(Error::OutOfMemory) => {
                (!oom).then(|| "a frame is free for the PML4".into())
            }
            (Prediction::Space { space, .. }, Response::Space { space: s, root }) => {
                if s != space {
                    Some(format!(
                        "space {s}, but the lowest unused number is {space}"
                    ))
                } else if root % protocol::PAGE_SIZE != 0 {
                    Some(format!("root {root:#x} is not page aligned"))
                } else {
                    None
                }
            }
            (Prediction::Pages(want), Response::Pages(got)) => pages_mismatch(want, got),
            (Prediction::Batch(_), Response::Batch(_)) => None,
            (Prediction::Unspecified(what), _) => Some(format!(
                "the specification does not say what answers {what}"
            )),
            _ => Some("different kind of answer".into()),
        }
    }
}

/// The first page whose state differs (frames are not compared).
fn pages_mismatch(want: &[(Option<ModelState>, u64)], got: &[PageState]) -> Option<String> {
    if want.len() != got.len() {
        return Some(format!("{} states for {} pages", got.len(), want.len()));
    }
    let (i, w, g) = want
        .iter()
        .zip(got)
        .enumerate()
        .find(|(_, (&(w, n), g))| !state_matches(w, n, **g))
        .map(|(i, (w, g))| (i, w, g))?;
    Some(format!(
        "page {i}: expected {}, got {g:?}",
        describe_page(*w)
    ))
}

/// Whether the guest's reported state is the model's (frames ignored);
/// `mappings`: the mapping count the model expects of a shared page.
pub fn state_matches(want: Option<ModelState>, mappings: u64, got: PageState) -> bool {
    match (want, got) {
        (
            Some(ModelState::Shared { writable, .. }),
            PageState::Shared {
                writable: w,
                mappings: n,
                ..
            },
        ) => (writable, mappings) == (w, n),
        (None, PageState::Unusable) => true,
        (
            Some(ModelState::PresentRam {
                writable,
                executable,
            }),
            PageState::PresentRam {
                writable: w,
                executable: x,
                ..
            },
        ) => (writable, executable) == (w, x),
        (Some(ModelState::AllocOnWrite), PageState::AllocOnWrite) => true,
        (Some(ModelState::PinnedRam { writable }), PageState::PinnedRam { writable: w, .. }) => {
            writable == w
        }
        (Some(ModelState::PinnedAllocOnWrite), PageState::PinnedAllocOnWrite) => true,
        (Some(ModelState::OnSwap { slot }), PageState::OnSwap { slot: s }) => slot == s,
        (
            Some(ModelState::PresentMmap {
                file,
                page,
                private,
            }),
            PageState::PresentMmap {
                file: f,
                page: p,
                private: v,
                ..
            },
        ) => (file, page, private) == (f, p, v),
        (
            Some(ModelState::NotPresentMmap { file, page }),
            PageState::NotPresentMmap { file: f, page: p },
        ) => (file, page) == (f, p),
        _ => false,
    }
}

/// A model state in the words of [`PageState`].
pub fn describe(state: Option<ModelState>) -> String {
    match state {
        None => "Unusable".into(),
        Some(s) => format!("{s:?}"),
    }
}

/// A page the model expects of a `Query` (its state and, when shared, its
/// frame's mapping count) in the words of [`PageState`].
fn describe_page((state, mappings): (Option<ModelState>, u64)) -> String {
    match state {
        Some(ModelState::Shared { writable, .. }) => {
            format!("Shared {{ writable: {writable}, mappings: {mappings} }}")
        }
        s => describe(s),
    }
}

impl fmt::Display for Prediction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prediction::Exact(r) => write!(f, "{}", hex_debug(r)),
            Prediction::DoneOrOutOfMemory => write!(f, "Done or Error(OutOfMemory)"),
            Prediction::Frames {
                count,
                contiguous: false,
                oom: false,
            } => write!(f, "Frames holding {count} frames"),
            Prediction::Frames {
                count,
                contiguous: false,
                ..
            } => write!(f, "Frames holding {count} frames or Error(OutOfMemory)"),
            Prediction::Frames { count, .. } => {
                write!(f, "Frames (one run of {count}) or Error(OutOfMemory)")
            }
            Prediction::Touch(t) => write!(f, "{t}"),
            Prediction::Stats(b) => write!(f, "{b}"),
            Prediction::Kmalloc { size, align, region } => write!(
                f,
                "Kmalloc of {size:#x} bytes aligned to {align} inside {:#x}..{:#x} or Error(OutOfMemory)",
                region.0, region.1
            ),
            Prediction::Evict { swap, drop } => write!(
                f,
                "Evicted: a prefix in address order of {swap} pages to swap and {drop} to drop"
            ),
            Prediction::Scavenge => write!(f, "Scavenged, one page per Scavenged event"),
            Prediction::Reclaim(why) => write!(f, "reclaim of {why} first"),
            Prediction::Valloc { pages, region } => write!(
                f,
                "Valloc of {pages} free pages inside {:#x}..{:#x}",
                region.start, region.end
            ),
            Prediction::Pages(states) => {
                write!(f, "Pages[")?;
                let mut i = 0;
                while i < states.len() {
                    let mut j = i + 1;
                    while j < states.len() && describe_page(states[j]) == describe_page(states[i]) {
                        j += 1;
                    }
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{}x {}", j - i, describe_page(states[i]))?;
                    i = j;
                }
                write!(f, "]")
            }
            Prediction::Space { space, oom } => {
                write!(f, "Space {{ space: {space}, root: a free frame }}")?;
                if *oom {
                    write!(f, " or Error(OutOfMemory)")?;
                }
                Ok(())
            }
            Prediction::NoAnswer => write!(f, "no answer"),
            Prediction::Unspecified(what) => write!(f, "nothing specified for {what}"),
            Prediction::Batch(p) => write!(f, "Batch of {} answers", p.len()),
        }
    }
}

/// The guest's answer differs from the model's prediction.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Divergence {
    /// Index of the operation in the sequence (as the runner counts them).
    pub index: u64,
    /// Index inside the operation's batch, if it was one.
    pub element: Option<usize>,
    /// The request (the batch element when `element` is set).
    pub request: Box<Request>,
    /// What the model expected, readable (addresses in hex).
    pub expected: String,
    /// What the guest answered.
    pub got: Box<Response>,
    /// Why the answer is wrong.
    pub reason: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation {}", self.index)?;
        if let Some(e) = self.element {
            write!(f, " (batch element {e})")?;
        }
        write!(
            f,
            ": {}: expected {}, got {}: {}",
            hex_debug(&self.request),
            self.expected,
            hex_debug(&self.got),
            self.reason
        )
    }
}
