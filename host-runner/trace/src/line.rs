//! Reading one line of a trace: the header, or an operation with its
//! expectation. The line's shape (which line it is, the `"op"` tag, the
//! format and version) is checked here; everything else is serde derive.

use serde_json::{Map, Value};

use crate::de::{quoted, shown};
use crate::error::FieldError;
use crate::expect::read::read_expect;
use crate::fields::{read, Place};
use crate::format::{Entry, TraceHeader, FORMAT_NAME, FORMAT_VERSION, READ_VERSIONS};
use crate::numbers::{read_number, Count};
use crate::op::{OpFields, OpKind};
use crate::refs::Ref;

/// The fields of an operation line's object.
fn object(value: Value) -> Result<Map<String, Value>, FieldError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(FieldError::new(
            "",
            format!("expected a JSON object, got {}", shown(&other)),
        )),
    }
}

/// Reads the header line: the header and the trace's format version.
pub(crate) fn read_header(value: Value) -> Result<(TraceHeader, u32), FieldError> {
    let mut f = object(value)?;
    if f.contains_key("op") && !f.contains_key("format") {
        return Err(FieldError::new("format", format!("missing: a trace starts with a header line like {{\"format\":\"{FORMAT_NAME}\",\"version\":{FORMAT_VERSION}}} before its first op")));
    }
    match f.remove("format") {
        Some(Value::String(s)) if s == FORMAT_NAME => {}
        Some(other) => {
            return Err(FieldError::new(
                "format",
                format!(
                    "expected one of {}, got {}",
                    quoted(&[FORMAT_NAME]),
                    shown(&other)
                ),
            ))
        }
        None => {
            return Err(FieldError::new(
                "format",
                format!("missing (\"{FORMAT_NAME}\")"),
            ))
        }
    }
    let version = f
        .remove("version")
        .ok_or_else(|| FieldError::new("version", format!("missing ({FORMAT_VERSION})")))?;
    let version: u32 =
        read_number::<_, Count>(&version).map_err(|e| FieldError::new("version", e))?;
    if !READ_VERSIONS.contains(&version) {
        let readable: Vec<String> = READ_VERSIONS.iter().map(u32::to_string).collect();
        let readable = match readable.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => readable.concat(),
        };
        return Err(FieldError::new(
            "version",
            format!("unsupported version {version}: this build reads versions {readable}"),
        ));
    }
    let header = read(
        &Value::Object(f),
        Place {
            known_before: &["format", "version"],
            ..Place::default()
        },
    )?;
    Ok((header, version))
}

/// Reads an operation line.
pub(crate) fn read_entry(value: Value) -> Result<Entry, FieldError> {
    let mut f = object(value)?;
    if f.contains_key("format") {
        return Err(FieldError::new(
            "format",
            "a second header line: the header is the first line only",
        ));
    }
    let name = match f.remove("op") {
        Some(Value::String(s)) if OpKind::NAMES.contains(&s.as_str()) => s,
        Some(other) => {
            return Err(FieldError::new(
                "op",
                format!(
                    "expected one of {}, got {}",
                    quoted(&OpKind::NAMES),
                    shown(&other)
                ),
            ))
        }
        None => {
            return Err(FieldError::new(
                "op",
                "missing (the operation's name, e.g. \"map\")",
            ))
        }
    };
    let expect = f.remove("expect").as_ref().map(read_expect).transpose()?;
    let reference = f
        .remove("ref")
        .map(|v| {
            read::<Ref>(
                &v,
                Place {
                    name: "ref",
                    ..Place::default()
                },
            )
        })
        .transpose()?;
    // The derive reads an operation externally tagged: `{"map": {…}}`.
    let mut tagged = Map::new();
    tagged.insert(name, Value::Object(f));
    let tagged = Value::Object(tagged);
    let op = read::<OpFields>(
        &tagged,
        Place {
            variant_is_tag: true,
            known_before: &["op"],
            known_after: &["ref", "expect"],
            ..Place::default()
        },
    )?
    .into();
    Ok(Entry {
        op,
        reference,
        expect,
    })
}
