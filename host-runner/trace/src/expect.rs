//! Expected answers: the optional `"expect"` field of a trace line, in a
//! readable form, and how it matches a [`Response`].
//!
//! The same syntax shows the guest's answers in replay tables
//! ([`Expect::exact`] of a response, written with [`Expect::to_json`]).
//!
//! A `Reclaimed { events, response }` answer (version 2: the pages the guest
//! reclaimed on its own before answering) is matched by its `response`:
//! which pages the guest reclaims is its choice, judged by the model, not
//! by `expect`. Only `"reclaimed"` looks at the wrapper itself: it accepts
//! an answer with reclaim events and nothing else.

mod read;

use protocol::{FaultReason, Response};

use crate::answer::FAULTS;
pub use crate::answer::{AnswerKind, ErrorCode, FaultName, PageKind, StatField};
use crate::value::ObjectWriter;

/// What a line expects its answer to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `"any"`: anything (the same as no `expect`).
    Any,
    /// `"ok"`: anything but an error, a fault or a bad frame.
    Ok,
    /// A kind of answer with any content: `"done"`, `"hello"`, `"error"`…
    Kind(AnswerKind),
    /// `{"error":"invalid_state","addr":"0x…"}`; `at` is the `addr` of
    /// `invalid_state` or the `frame` of `not_owned` (any when `None`).
    Error { code: ErrorCode, at: Option<u64> },
    /// `{"fault":{"addr":"0x…","write":true,"reason":"read_only"}}`, every
    /// inner field optional.
    Fault {
        addr: Option<u64>,
        write: Option<bool>,
        reason: Option<FaultReason>,
    },
    /// `{"checksum":"0x…"}`.
    Checksum(u32),
    /// `{"pong":"0x…"}`.
    Pong(u64),
    /// `{"valloc":"0x…"}`.
    Valloc(u64),
    /// `{"frames":N}`: `AllocFrames` answered N frames in all.
    Frames(u64),
    /// `{"evicted":{"swapped":N,"dropped":M}}`: `Evict`'s counts, each
    /// optional.
    Evicted {
        swapped: Option<u64>,
        dropped: Option<u64>,
    },
    /// `{"kmalloc":"0x…"}`: a heap block at that address.
    Kmalloc(u64),
    /// `{"scavenged":N}`: `HeapScavenge` freed N heap pages.
    Scavenged(u64),
    /// `{"pages":["present_ram",["unusable",3]]}`: page states as runs.
    Pages(Vec<(PageKind, u64)>),
    /// `{"stats":{"free_frames":100}}`: the named counters only.
    Stats(Vec<(StatField, u64)>),
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
            _ => false,
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
        let q = |s: &str| format!("\"{s}\"");
        match self {
            Expect::Any => q("any"),
            Expect::Ok => q("ok"),
            Expect::Kind(k) => q(k.name()),
            Expect::Error { code, at } => {
                let w = ObjectWriter::new().str("error", code.name());
                match (code, at) {
                    (ErrorCode::NotOwned, Some(f)) => w.hex("frame", *f),
                    (_, Some(a)) => w.hex("addr", *a),
                    (_, None) => w,
                }
                .finish()
            }
            Expect::Fault {
                addr,
                write,
                reason,
            } => {
                let mut w = ObjectWriter::new();
                if let Some(a) = addr {
                    w = w.hex("addr", *a);
                }
                if let Some(x) = write {
                    w = w.bool("write", *x);
                }
                if let Some(r) = reason {
                    let i = FAULTS.iter().position(|f| f == r).unwrap_or(0);
                    w = w.str("reason", FaultName::ALL[i].name());
                }
                ObjectWriter::new().raw("fault", &w.finish()).finish()
            }
            Expect::Checksum(c) => ObjectWriter::new().hex("checksum", u64::from(*c)).finish(),
            Expect::Pong(n) => ObjectWriter::new().hex("pong", *n).finish(),
            Expect::Valloc(a) => ObjectWriter::new().hex("valloc", *a).finish(),
            Expect::Frames(n) => ObjectWriter::new().count("frames", *n).finish(),
            Expect::Evicted { swapped, dropped } => {
                let mut w = ObjectWriter::new();
                if let Some(n) = swapped {
                    w = w.count("swapped", *n);
                }
                if let Some(n) = dropped {
                    w = w.count("dropped", *n);
                }
                ObjectWriter::new().raw("evicted", &w.finish()).finish()
            }
            Expect::Kmalloc(a) => ObjectWriter::new().hex("kmalloc", *a).finish(),
            Expect::Scavenged(n) => ObjectWriter::new().count("scavenged", *n).finish(),
            Expect::Pages(runs) => {
                let items: Vec<String> = runs
                    .iter()
                    .map(|(k, n)| {
                        if *n == 1 {
                            q(k.name())
                        } else {
                            format!("[{},{n}]", q(k.name()))
                        }
                    })
                    .collect();
                ObjectWriter::new()
                    .raw("pages", &format!("[{}]", items.join(",")))
                    .finish()
            }
            Expect::Stats(fields) => {
                let inner = fields
                    .iter()
                    .fold(ObjectWriter::new(), |w, (f, v)| w.count(f.name(), *v));
                ObjectWriter::new().raw("stats", &inner.finish()).finish()
            }
        }
    }
}
