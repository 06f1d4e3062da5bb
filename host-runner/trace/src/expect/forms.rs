//! The serde adapters of the expectation forms that are not plain fields:
//! page runs, counter maps, and the error form.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::de::DeserializeAsWrap;
use serde_with::ser::SerializeAsWrap;
use serde_with::{DeserializeAs, SerializeAs};

use crate::de::{shown, ValueDe};
use crate::names::{ErrorCode, PageKind, StatField};
use crate::numbers::{Count, Hex};

/// A run of page states: `"present_ram"` for one page, `["unusable",3]`
/// for several.
#[derive(Debug)]
struct Run;

impl SerializeAs<(PageKind, u64)> for Run {
    fn serialize_as<S: Serializer>(&(kind, n): &(PageKind, u64), s: S) -> Result<S::Ok, S::Error> {
        if n == 1 {
            kind.serialize(s)
        } else {
            (kind, n).serialize(s)
        }
    }
}

impl<'de> DeserializeAs<'de, (PageKind, u64)> for Run {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<(PageKind, u64), D::Error> {
        let v = Value::deserialize(d)?;
        let run = match v {
            Value::Array(pair) => match <[Value; 2]>::try_from(pair) {
                Ok([kind, n]) => PageKind::deserialize(ValueDe(&kind))
                    .and_then(|k| Ok((k, Count::deserialize_as(ValueDe(&n))?)))
                    .map_err(|e| e.to_string()),
                Err(items) => Err(format!(
                    "expected a state or [state, count], got {}",
                    shown(&Value::Array(items))
                )),
            },
            one => PageKind::deserialize(ValueDe(&one))
                .map(|k| (k, 1))
                .map_err(|e| e.to_string()),
        };
        run.map_err(de::Error::custom)
    }
}

/// Page states as runs: `["present_ram",["unusable",3]]`.
#[derive(Debug)]
pub(super) struct PageRuns;

impl SerializeAs<Vec<(PageKind, u64)>> for PageRuns {
    fn serialize_as<S: Serializer>(runs: &Vec<(PageKind, u64)>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(runs.iter().map(SerializeAsWrap::<_, Run>::new))
    }
}

impl<'de> DeserializeAs<'de, Vec<(PageKind, u64)>> for PageRuns {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Vec<(PageKind, u64)>, D::Error> {
        d.deserialize_seq(RunsVisitor)
    }
}

struct RunsVisitor;

impl<'de> Visitor<'de> for RunsVisitor {
    type Value = Vec<(PageKind, u64)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of page states")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(run) = seq.next_element::<DeserializeAsWrap<_, Run>>()? {
            out.push(run.into_inner());
        }
        Ok(out)
    }
}

/// Counters by name, `{"free_frames":100}`: read in any order, kept in the
/// order of [`StatField::ALL`].
#[derive(Debug)]
pub(super) struct StatsMap;

impl SerializeAs<Vec<(StatField, u64)>> for StatsMap {
    fn serialize_as<S: Serializer>(
        fields: &Vec<(StatField, u64)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(fields.len()))?;
        for (field, n) in fields {
            map.serialize_entry(field.name(), &SerializeAsWrap::<u64, Count>::new(n))?;
        }
        map.end()
    }
}

impl<'de> DeserializeAs<'de, Vec<(StatField, u64)>> for StatsMap {
    fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Vec<(StatField, u64)>, D::Error> {
        d.deserialize_map(StatsVisitor)
    }
}

struct StatsVisitor;

impl<'de> Visitor<'de> for StatsVisitor {
    type Value = Vec<(StatField, u64)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("counters by name")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(field) = map.next_key_seed(StatKey)? {
            let n = map.next_value::<DeserializeAsWrap<u64, Count>>()?;
            out.push((field, n.into_inner()));
        }
        out.sort_by_key(|&(f, _)| f as usize);
        Ok(out)
    }
}

/// A counter's name, refused as an unknown field when it names none.
struct StatKey;

impl<'de> DeserializeSeed<'de> for StatKey {
    type Value = StatField;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StatField, D::Error> {
        let name = String::deserialize(d)?;
        StatField::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name)
            .ok_or_else(|| de::Error::unknown_field(&name, StatField::NAMES))
    }
}

/// Writes `{"error":"<code>"}` with its address (`"addr"`, or `"frame"` for
/// `not_owned`) when there is one.
pub(super) fn error_form<S: Serializer>(
    code: &ErrorCode,
    at: &Option<u64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(None)?;
    map.serialize_entry("error", code)?;
    if let Some(at) = at {
        map.serialize_entry(at_name(*code), &SerializeAsWrap::<u64, Hex>::new(at))?;
    }
    map.end()
}

/// The name of an error's address: the `frame` of `not_owned`, the `addr`
/// of the others.
pub(super) fn at_name(code: ErrorCode) -> &'static str {
    if code == ErrorCode::NotOwned {
        "frame"
    } else {
        "addr"
    }
}
