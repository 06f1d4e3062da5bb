//! Reading and writing the JSON values of a trace line field by field, so
//! that every parse error can name the field it is about.

use serde_json::{Map, Value};

use crate::error::FieldError;

/// Counts up to this are written as JSON numbers (exact in every JSON
/// reader, JavaScript's included); larger ones as hex strings.
const MAX_PLAIN_NUMBER: u64 = 1 << 53;

/// The fields of one JSON object, taken one by one; whatever is left at the
/// end is an unknown field.
#[derive(Debug)]
pub(crate) struct Fields {
    map: Map<String, Value>,
    /// Prefix of every field name in errors (`"expect.fault."`), or empty.
    path: String,
}

impl Fields {
    /// The object `value`, whose fields are named with `path` in errors.
    pub(crate) fn new(value: Value, path: &str) -> Result<Self, FieldError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                path: path.to_string(),
            }),
            other => Err(FieldError::new(
                path.trim_end_matches('.'),
                format!("expected a JSON object, got {}", shown(&other)),
            )),
        }
    }

    /// The full name of field `name`, as errors show it.
    pub(crate) fn name(&self, name: &str) -> String {
        format!("{}{name}", self.path)
    }

    /// Whether the object has field `name` (not yet taken).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Takes field `name` and reads it with `read`, if it is there.
    pub(crate) fn optional<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, FieldError> {
        match self.map.remove(name) {
            None => Ok(None),
            Some(v) => read(&v)
                .map(Some)
                .map_err(|m| FieldError::new(&self.name(name), m)),
        }
    }

    /// Takes field `name` and reads it with `read`; a missing field is an
    /// error that says what was expected (`what`).
    pub(crate) fn required<T>(
        &mut self,
        name: &str,
        what: &str,
        read: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<T, FieldError> {
        self.optional(name, read)?
            .ok_or_else(|| FieldError::new(&self.name(name), format!("missing ({what})")))
    }

    /// Takes field `name` as it is.
    pub(crate) fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// Fails on the first field nobody took; `known` lists the accepted ones.
    pub(crate) fn finish(self, known: &[&str]) -> Result<(), FieldError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(FieldError::new(
                &format!("{}{k}", self.path),
                format!("unknown field (expected one of: {})", known.join(", ")),
            )),
        }
    }
}

/// A value as error messages show it (compact JSON, cut when long).
pub(crate) fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// An unsigned number: a hex string (`"0x1000"`, `_` separators allowed), a
/// decimal string, or a JSON number.
pub(crate) fn read_u64(v: &Value) -> Result<u64, String> {
    let bad = || {
        format!(
            "expected a hex string like \"0x1000\" or a number, got {}",
            shown(v)
        )
    };
    match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad),
        Value::String(s) => parse_u64_str(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// A `u32`, read as [`read_u64`].
pub(crate) fn read_u32(v: &Value) -> Result<u32, String> {
    let n = read_u64(v)?;
    u32::try_from(n).map_err(|_| format!("expected a number below 2^32, got {}", shown(v)))
}

/// Parses `"0x…"` (hex) or decimal digits, with `_` separators.
pub(crate) fn parse_u64_str(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    if clean.is_empty() || digits.starts_with('_') {
        return None;
    }
    u64::from_str_radix(&clean, radix).ok()
}

/// `true` or `false`.
pub(crate) fn read_bool(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected true or false, got {}", shown(v)))
}

/// A string.
pub(crate) fn read_str(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string, got {}", shown(v)))
}

/// One of the names in `names` (a string); answers its index.
pub(crate) fn read_name(v: &Value, names: &[&str]) -> Result<usize, String> {
    let bad = || format!("expected one of {}, got {}", quoted(names), shown(v));
    let s = v.as_str().ok_or_else(bad)?;
    names.iter().position(|n| *n == s).ok_or_else(bad)
}

/// `"a", "b" or "c"`.
pub(crate) fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => q.join(""),
    }
}

/// A JSON object written field by field, in the order fields are added: the
/// writer side of [`Fields`].
#[derive(Debug, Default)]
pub(crate) struct ObjectWriter {
    out: String,
}

impl ObjectWriter {
    pub(crate) fn new() -> Self {
        ObjectWriter::default()
    }

    /// Adds a field whose value is already JSON text.
    pub(crate) fn raw(mut self, name: &str, json: &str) -> Self {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        self.out.push_str(&Value::from(name).to_string());
        self.out.push(':');
        self.out.push_str(json);
        self
    }

    pub(crate) fn str(self, name: &str, value: &str) -> Self {
        let json = Value::from(value).to_string();
        self.raw(name, &json)
    }

    /// An address, frame, seed or checksum: always a hex string.
    pub(crate) fn hex(self, name: &str, value: u64) -> Self {
        self.raw(name, &format!("\"{value:#x}\""))
    }

    /// A count: a number, or a hex string when too large for a plain JSON
    /// number to hold it exactly.
    pub(crate) fn count(self, name: &str, value: u64) -> Self {
        let json = count_json(value);
        self.raw(name, &json)
    }

    pub(crate) fn bool(self, name: &str, value: bool) -> Self {
        self.raw(name, if value { "true" } else { "false" })
    }

    pub(crate) fn finish(mut self) -> String {
        if self.out.is_empty() {
            return "{}".to_string();
        }
        self.out.push('}');
        self.out
    }
}

/// A count as JSON text (see [`ObjectWriter::count`]).
pub(crate) fn count_json(value: u64) -> String {
    if value <= MAX_PLAIN_NUMBER {
        value.to_string()
    } else {
        format!("\"{value:#x}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_spelling() {
        assert_eq!(read_u64(&Value::from("0x1000")), Ok(0x1000));
        assert_eq!(
            read_u64(&Value::from("0XffFF_c080_0000_0000")),
            Ok(0xffff_c080_0000_0000)
        );
        assert_eq!(read_u64(&Value::from("4096")), Ok(4096));
        assert_eq!(read_u64(&Value::from(8448u64)), Ok(8448));
        assert_eq!(read_u64(&Value::from(u64::MAX)), Ok(u64::MAX));
        for bad in [
            Value::from("0x"),
            Value::from("0x12g"),
            Value::from(-1),
            Value::from(1.5),
        ] {
            assert!(read_u64(&bad).unwrap_err().contains("hex string"), "{bad}");
        }
        assert_eq!(count_json(1 << 53), "9007199254740992");
        assert_eq!(count_json(u64::MAX), "\"0xffffffffffffffff\"");
    }
}
