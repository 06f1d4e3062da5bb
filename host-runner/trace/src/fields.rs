//! Reading a line's JSON value into a typed value with serde derive, through
//! `serde_path_to_error`, so that an error names its field as the trace
//! spells it (`expect.fault.addr`, `files[1].pages`).

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

use crate::de::{DeError, ValueDe};
use crate::error::FieldError;

/// Where a value sits in its line, for naming fields in errors.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Place {
    /// The name of the value itself (`"expect"`), or empty for a whole
    /// line.
    pub(crate) name: &'static str,
    /// The value is an enum read from `{"<variant>": …}` that the line
    /// spells `{"op": "<variant>", …}`: the variant is not a field.
    pub(crate) variant_is_tag: bool,
    /// The line's fields read apart from this value, before and after its
    /// own, as an unknown-field error lists them.
    pub(crate) known_before: &'static [&'static str],
    pub(crate) known_after: &'static [&'static str],
}

/// Reads `value` as a `T`; errors name the field at `place`.
///
/// Paths are tracked only when reading fails: it is read again then,
/// through `serde_path_to_error`, which fails the same way.
pub(crate) fn read<T: DeserializeOwned>(value: &Value, place: Place) -> Result<T, FieldError> {
    T::deserialize(ValueDe(value)).or_else(|_| {
        serde_path_to_error::deserialize(ValueDe(value)).map_err(|e| field_error(&e, place))
    })
}

fn field_error(e: &serde_path_to_error::Error<DeError>, place: Place) -> FieldError {
    let mut names: Vec<String> = Vec::new();
    if !place.name.is_empty() {
        names.push(place.name.to_string());
    }
    for (i, segment) in e.path().iter().enumerate() {
        match segment {
            Segment::Enum { .. } if i == 0 && place.variant_is_tag => {}
            Segment::Map { key } | Segment::Enum { variant: key } => names.push(key.clone()),
            Segment::Seq { index } => match names.last_mut() {
                Some(last) => last.push_str(&format!("[{index}]")),
                None => names.push(format!("[{index}]")),
            },
            Segment::Unknown => names.push("?".to_string()),
        }
    }
    let own = usize::from(!place.name.is_empty());
    match e.inner() {
        DeError::Missing(field) => {
            let message = match what(field) {
                Some(what) => format!("missing ({what})"),
                None => "missing".to_string(),
            };
            names.push((*field).to_string());
            FieldError::new(&names.join("."), message)
        }
        DeError::Unknown {
            field,
            expected,
            keyed,
        } => {
            if *keyed {
                names.pop();
            }
            let mut known: Vec<&str> = expected.to_vec();
            if names.len() == own {
                known = [place.known_before, &known, place.known_after].concat();
            }
            names.push(field.clone());
            FieldError::new(
                &names.join("."),
                format!("unknown field (expected one of: {})", known.join(", ")),
            )
        }
        DeError::Message(m) => FieldError::new(&names.join("."), m.clone()),
    }
}

/// What a required field holds, as a "missing" error says it.
fn what(field: &str) -> Option<&'static str> {
    Some(match field {
        "addr" => "a hex address like \"0x1000\"",
        "frame" => "a hex physical address like \"0x200000\"",
        "pages" => "a page count",
        "len" => "a length in bytes",
        "count" => "a frame count",
        "size" => "a size in bytes",
        "file" => "a file number (0-255)",
        "as" => "\"user\" or \"kernel\"",
        "to" => "\"usable_ram\" or \"unusable\"",
        "kind" => "a failure kind",
        "error" => "an error name",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    //! A number field can become something else by giving its adapter an
    //! impl: a sketch of `{"ref": N}` beside literal addresses, read by the
    //! same reader, errors still naming the field.

    use serde::de::{Deserialize, Deserializer};
    use serde_json::{json, Value};
    use serde_with::{serde_as, DeserializeAs};

    use super::{read, Place};
    use crate::numbers::{read_number, Hex};

    #[derive(Debug, PartialEq)]
    enum Arg {
        Literal(u64),
        Ref(u64),
    }

    impl<'de> DeserializeAs<'de, Arg> for Hex {
        fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<Arg, D::Error> {
            let v = Value::deserialize(d)?;
            let number = |v: &Value| read_number::<u64, Hex>(v).map_err(serde::de::Error::custom);
            match v.get("ref") {
                Some(r) => number(r).map(Arg::Ref),
                None => number(&v).map(Arg::Literal),
            }
        }
    }

    #[serde_as]
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        #[serde_as(as = "Hex")]
        addr: Arg,
    }

    #[test]
    fn a_number_field_can_become_literal_or_ref() {
        let addr = |v: Value| read::<Line>(&v, Place::default()).map(|l| l.addr);
        assert_eq!(addr(json!({"addr": "0x1000"})), Ok(Arg::Literal(0x1000)));
        assert_eq!(addr(json!({"addr": {"ref": 12}})), Ok(Arg::Ref(12)));
        let e = addr(json!({"addr": {"ref": "x"}})).unwrap_err();
        assert_eq!(e.field, "addr");
        assert!(e.message.contains("hex string"), "{e}");
    }
}
