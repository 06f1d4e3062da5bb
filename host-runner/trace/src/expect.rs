//! Expected answers: the optional `"expect"` field of a trace line, in a
//! readable form, and how it matches a [`Response`].
//!
//! The same syntax shows the guest's answers in replay tables
//! ([`Expect::exact`] of a response, written with [`Expect::to_json`]).

use protocol::{FaultReason, Response};
use serde_json::Value;

use crate::answer::FAULTS;
pub use crate::answer::{AnswerKind, ErrorCode, FaultName, PageKind, StatField};
use crate::error::FieldError;
use crate::value::{read_bool, read_u32, read_u64, shown, Fields, ObjectWriter};

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
    /// Whether `r` is an answer this expectation accepts.
    pub fn matches(&self, r: &Response) -> bool {
        match (self, r) {
            (Expect::Any, _) => true,
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
            _ => false,
        }
    }

    /// The most exact expectation `r` satisfies (frames, swap slots and the
    /// handshake's layout left out): what a recorded answer reads as.
    pub fn exact(r: &Response) -> Expect {
        match r {
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

    /// Reads the `expect` field's value; errors name `expect…` fields.
    pub fn read(v: &Value) -> Result<Expect, FieldError> {
        let top = || {
            FieldError::new("expect", format!("expected \"any\", \"ok\", an answer kind such as \"done\", or an object such as {{\"error\":\"invalid_state\"}}, got {}", shown(v)))
        };
        if let Value::String(s) = v {
            return match s.as_str() {
                "any" => Ok(Expect::Any),
                "ok" => Ok(Expect::Ok),
                _ => AnswerKind::read(v).map(Expect::Kind).map_err(|_| top()),
            };
        }
        let mut f = Fields::new(v.clone(), "expect.").map_err(|_| top())?;
        let key = [
            "error", "fault", "checksum", "pong", "valloc", "frames", "pages", "stats",
        ]
        .into_iter()
        .find(|k| f.has(k))
        .ok_or_else(top)?;
        let e = match key {
            "error" => {
                let code = f.required("error", "an error name", ErrorCode::read)?;
                let at_name = if code == ErrorCode::NotOwned {
                    "frame"
                } else {
                    "addr"
                };
                let at = f.optional(at_name, read_u64)?;
                f.finish(&["error", at_name])?;
                return Ok(Expect::Error { code, at });
            }
            "fault" => {
                let mut inner =
                    Fields::new(f.take("fault").unwrap_or(Value::Null), "expect.fault.")?;
                let addr = inner.optional("addr", read_u64)?;
                let write = inner.optional("write", read_bool)?;
                let reason =
                    inner.optional("reason", |v| FaultName::read(v).map(|n| FAULTS[n as usize]))?;
                inner.finish(&["addr", "write", "reason"])?;
                Expect::Fault {
                    addr,
                    write,
                    reason,
                }
            }
            "checksum" => Expect::Checksum(f.required("checksum", "", read_u32)?),
            "pong" => Expect::Pong(f.required("pong", "", read_u64)?),
            "valloc" => Expect::Valloc(f.required("valloc", "", read_u64)?),
            "frames" => Expect::Frames(f.required("frames", "", read_u64)?),
            "pages" => Expect::Pages(f.required("pages", "", read_page_runs)?),
            _ => {
                let mut inner =
                    Fields::new(f.take("stats").unwrap_or(Value::Null), "expect.stats.")?;
                let mut want = Vec::new();
                for &field in StatField::ALL {
                    if let Some(v) = inner.optional(field.name(), read_u64)? {
                        want.push((field, v));
                    }
                }
                inner.finish(StatField::NAMES)?;
                Expect::Stats(want)
            }
        };
        f.finish(&[key])?;
        Ok(e)
    }
}

fn read_page_runs(v: &Value) -> Result<Vec<(PageKind, u64)>, String> {
    let items = v
        .as_array()
        .ok_or_else(|| format!("expected a list of page states, got {}", shown(v)))?;
    items
        .iter()
        .map(|item| match item {
            Value::Array(pair) if pair.len() == 2 => {
                Ok((PageKind::read(&pair[0])?, read_u64(&pair[1])?))
            }
            Value::Array(_) => Err(format!(
                "expected a state or [state, count], got {}",
                shown(item)
            )),
            _ => Ok((PageKind::read(item)?, 1)),
        })
        .collect()
}
