//! Reading an `expect` field's value.

use serde_json::Value;

use super::Expect;
use crate::answer::{AnswerKind, ErrorCode, FaultName, PageKind, StatField, FAULTS};
use crate::error::FieldError;
use crate::value::{read_bool, read_u32, read_u64, shown, Fields};

impl Expect {
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
            "error",
            "fault",
            "checksum",
            "pong",
            "valloc",
            "frames",
            "pages",
            "stats",
            "evicted",
            "kmalloc",
            "scavenged",
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
            "evicted" => {
                let mut inner =
                    Fields::new(f.take("evicted").unwrap_or(Value::Null), "expect.evicted.")?;
                let swapped = inner.optional("swapped", read_u64)?;
                let dropped = inner.optional("dropped", read_u64)?;
                inner.finish(&["swapped", "dropped"])?;
                Expect::Evicted { swapped, dropped }
            }
            "kmalloc" => Expect::Kmalloc(f.required("kmalloc", "", read_u64)?),
            "scavenged" => Expect::Scavenged(f.required("scavenged", "", read_u64)?),
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
