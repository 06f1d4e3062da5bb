//! Expected answers: the optional `"expect"` field of a trace line, in a
//! readable form, and how it matches a [`Response`].
//!
//! The same syntax shows the guest's answers in replay tables
//! ([`Expect::exact`] of a response, written with [`Expect::to_json`]).
//!
//! Its JSON form comes from serde derive: `"any"`, `"ok"` and an answer
//! kind are names, every other form an object whose one key names it
//! (`{"checksum":"0x…"}`), except the error form, whose key `"error"` has
//! the address beside it (`{"error":"invalid_state","addr":"0x…"}`). Reading
//! picks the form (`read`); the adapters of the forms are in `forms`.
//!
//! A `Reclaimed { events, response }` answer (version 2: the pages the guest
//! reclaimed on its own before answering) is matched by its `response`:
//! which pages the guest reclaims is its choice, judged by the model, not
//! by `expect`. Only `"reclaimed"` looks at the wrapper itself: it accepts
//! an answer with reclaim events and nothing else.

mod forms;
pub(crate) mod read;

use protocol::{FaultReason, Response};
use serde::{Deserialize, Serialize};
use serde_with::{serde_as, skip_serializing_none};

pub use crate::names::{AnswerKind, ErrorCode, FaultName, PageKind, StatField};
use crate::numbers::{Count, Hex};
use forms::{PageRuns, StatsMap};

/// What a line expects its answer to be.
///
/// Reading takes the first of the object forms, in the order declared,
/// whose key a line has; any other key is an unknown field.
///
/// The derive (`remote = "Self"`: serde's functions, not its traits) does
/// the object forms; the names and the error form are written by the
/// `Serialize` impl below and read by `read`.
#[skip_serializing_none]
#[serde_as]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expect {
    /// `"any"`: anything (the same as no `expect`).
    #[serde(skip_deserializing)]
    Any,
    /// `"ok"`: anything but an error, a fault or a bad frame.
    #[serde(skip_deserializing)]
    Ok,
    /// `{"fault":{"addr":"0x…","write":true,"reason":"read_only"}}`, every
    /// inner field optional.
    Fault {
        #[serde_as(as = "Option<Hex>")]
        addr: Option<u64>,
        write: Option<bool>,
        #[serde_as(as = "Option<FaultName>")]
        reason: Option<FaultReason>,
    },
    /// `{"checksum":"0x…"}`.
    Checksum(#[serde_as(as = "Hex")] u32),
    /// `{"pong":"0x…"}`.
    Pong(#[serde_as(as = "Hex")] u64),
    /// `{"valloc":"0x…"}`.
    Valloc(#[serde_as(as = "Hex")] u64),
    /// `{"frames":N}`: `AllocFrames` answered N frames in all.
    Frames(#[serde_as(as = "Count")] u64),
    /// `{"pages":["present_ram",["unusable",3]]}`: page states as runs.
    Pages(#[serde_as(as = "PageRuns")] Vec<(PageKind, u64)>),
    /// `{"stats":{"free_frames":100}}`: the named counters only.
    Stats(#[serde_as(as = "StatsMap")] Vec<(StatField, u64)>),
    /// `{"evicted":{"swapped":N,"dropped":M}}`: `Evict`'s counts, each
    /// optional.
    Evicted {
        #[serde_as(as = "Option<Count>")]
        swapped: Option<u64>,
        #[serde_as(as = "Option<Count>")]
        dropped: Option<u64>,
    },
    /// `{"kmalloc":"0x…"}`: a heap block at that address.
    Kmalloc(#[serde_as(as = "Hex")] u64),
    /// `{"scavenged":N}`: `HeapScavenge` freed N heap pages.
    Scavenged(#[serde_as(as = "Count")] u64),
    /// `{"space":N}`: `CreateSpace` made space N (its root, the guest's
    /// choice, is not matched).
    Space(#[serde_as(as = "Count")] u16),
    /// A kind of answer with any content: `"done"`, `"hello"`, `"error"`…
    #[serde(skip)]
    Kind(AnswerKind),
    /// `{"error":"invalid_state","addr":"0x…"}`; `at` is the `addr` of
    /// `invalid_state` or the `frame` of `not_owned` (any when `None`).
    #[serde(skip)]
    Error {
        code: ErrorCode,
        #[serialize_always]
        at: Option<u64>,
    },
}

impl Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Expect::Kind(kind) => kind.serialize(s),
            Expect::Error { code, at } => forms::error_form(code, at, s),
            form => Expect::serialize(form, s),
        }
    }
}

fn runs<T: PartialEq + Copy>(items: impl IntoIterator<Item = T>) -> Vec<(T, u64)> {
    let mut out: Vec<(T, u64)> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some((last, n)) if *last == item => *n += 1,
            _ => out.push((item, 1)),
        }
    }
    out
}

impl Expect {
    /// Whether `r` is an answer this expectation accepts (the answer inside
    /// a `Reclaimed`, unless the expectation is `"reclaimed"`).
    pub fn matches(&self, r: &Response) -> bool {
        match (self, r) {
            (Expect::Any, _) => true,
            (Expect::Kind(AnswerKind::Reclaimed), r) => matches!(r, Response::Reclaimed { .. }),
            (x, Response::Reclaimed { response, .. }) => x.matches(response),
            (Expect::Ok, r) => !matches!(
                r,
                Response::Error(_) | Response::Fault { .. } | Response::BadFrame(_)
            ),
            (Expect::Kind(k), r) => *k == AnswerKind::of(r),
            (Expect::Error { code, at }, Response::Error(e)) => {
                let (c, a) = ErrorCode::of(e);
                c == *code && (at.is_none() || *at == a)
            }
            (
                Expect::Fault {
                    addr,
                    write,
                    reason,
                },
                Response::Fault {
                    addr: a,
                    write: w,
                    reason: r,
                },
            ) => {
                addr.is_none_or(|x| x == *a)
                    && write.is_none_or(|x| x == *w)
                    && reason.is_none_or(|x| x == *r)
            }
            (Expect::Checksum(c), Response::Checksum { checksum }) => c == checksum,
            (Expect::Pong(n), Response::Pong { nonce }) => n == nonce,
            (Expect::Valloc(x), Response::Valloc { addr }) => x == addr,
            (Expect::Frames(n), Response::Frames(runs)) => {
                runs.iter().map(|r| r.count).sum::<u64>() == *n
            }
            (Expect::Pages(want), Response::Pages(got)) => {
                let total: u64 = want.iter().map(|(_, n)| n).sum();
                let mut got_iter = got.iter();
                total == got.len() as u64
                    && want.iter().all(|&(kind, n)| {
                        (0..n).all(|_| {
                            got_iter
                                .next()
                                .is_some_and(|s| kind == PageKind::Any || kind == PageKind::of(s))
                        })
                    })
            }
            (Expect::Stats(want), Response::Stats(s)) => want.iter().all(|&(f, v)| f.get(s) == v),
            (
                Expect::Evicted { swapped, dropped },
                Response::Evicted {
                    swapped: s,
                    dropped: d,
                },
            ) => swapped.is_none_or(|x| x == *s) && dropped.is_none_or(|x| x == *d),
            (Expect::Kmalloc(x), Response::Kmalloc { addr }) => x == addr,
            (Expect::Scavenged(n), Response::Scavenged { pages }) => n == pages,
            (Expect::Space(n), Response::Space { space, .. }) => n == space,
            _ => false,
        }
    }

    /// The same expectation, a `Read`'s checksum value left out: what a
    /// trace older than [`crate::format::CHECKSUM_VERSION`] expects, its
    /// value being of the checksum function of its time.
    pub fn without_checksum(self) -> Expect {
        match self {
            Expect::Checksum(_) => Expect::Kind(AnswerKind::Checksum),
            other => other,
        }
    }

    /// The most exact expectation `r` satisfies (frames, swap slots, the
    /// handshake's layout and reclaim events left out): what a recorded
    /// answer reads as.
    pub fn exact(r: &Response) -> Expect {
        match r {
            Response::Reclaimed { response, .. } => Expect::exact(response),
            Response::Evicted { swapped, dropped } => Expect::Evicted {
                swapped: Some(*swapped),
                dropped: Some(*dropped),
            },
            Response::Kmalloc { addr } => Expect::Kmalloc(*addr),
            Response::Scavenged { pages } => Expect::Scavenged(*pages),
            Response::Space { space, .. } => Expect::Space(*space),
            Response::Pong { nonce } => Expect::Pong(*nonce),
            Response::Checksum { checksum } => Expect::Checksum(*checksum),
            Response::Fault {
                addr,
                write,
                reason,
            } => Expect::Fault {
                addr: Some(*addr),
                write: Some(*write),
                reason: Some(*reason),
            },
            Response::Pages(states) => Expect::Pages(runs(states.iter().map(PageKind::of))),
            Response::Frames(runs) => Expect::Frames(runs.iter().map(|r| r.count).sum()),
            Response::Valloc { addr } => Expect::Valloc(*addr),
            Response::Stats(s) => {
                Expect::Stats(StatField::ALL.iter().map(|&f| (f, f.get(s))).collect())
            }
            Response::Error(e) => {
                let (code, at) = ErrorCode::of(e);
                Expect::Error { code, at }
            }
            other => Expect::Kind(AnswerKind::of(other)),
        }
    }

    /// The expectation as JSON text, as a trace line holds it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("every expectation can be written as JSON")
    }
}
