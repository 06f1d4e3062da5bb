//! A serde `Deserializer` over a parsed JSON value ([`ValueDe`]) whose
//! errors ([`DeError`]) are in the trace's words and keep what a field error
//! needs: the missing field's name, the unknown field and the known ones.
//!
//! Beyond serde_json's own `Value` deserializer, it:
//! - shows the offending value in every type error (`expected true or
//!   false, got "yes"`);
//! - takes a present `null` as a value, not as an absent field, so that
//!   `"seed": null` is refused as it always was;
//! - reads an externally tagged enum from an object by the first of its
//!   variants' names present as a key, every other key being an unknown
//!   field; and a unit variant from an empty object, so that an operation
//!   line `{"op":"stats"}` reads as `{"stats":{}}`.

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{
    self, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

/// A value as error messages show it (compact JSON, cut when long).
pub(crate) fn shown(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

/// Why a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeError {
    /// A field the type requires is absent.
    Missing(&'static str),
    /// A field the type does not have; `expected` are those it has.
    /// `keyed` when the error's path ends with the field (serde refused it
    /// as it read the key), not when the object was refused as a whole.
    Unknown {
        field: String,
        expected: &'static [&'static str],
        keyed: bool,
    },
    /// Anything else, said in full.
    Message(String),
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeError::Missing(field) => write!(f, "field \"{field}\": missing"),
            DeError::Unknown {
                field, expected, ..
            } => write!(
                f,
                "field \"{field}\": unknown field (expected one of: {})",
                expected.join(", ")
            ),
            DeError::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::Message(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::Missing(field)
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::Unknown {
            field: field.to_string(),
            expected,
            keyed: true,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::Message(format!(
            "expected one of {}, got {}",
            quoted(expected),
            shown(&Value::from(variant))
        ))
    }
}

/// `"a", "b" or "c"`.
pub(crate) fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => q.join(""),
    }
}

fn expected(what: &str, got: &Value) -> DeError {
    DeError::Message(format!("expected {what}, got {}", shown(got)))
}

/// Deserializes from a JSON value (see the module's doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValueDe<'a>(pub(crate) &'a Value);

impl<'de> IntoDeserializer<'de, DeError> for ValueDe<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: &'de Map<String, Value>,
    v: V,
) -> Result<V::Value, DeError> {
    let mut access = MapDeserializer::new(map.iter().map(|(k, x)| (k.as_str(), ValueDe(x))));
    let out = v.visit_map(&mut access)?;
    access.end()?;
    Ok(out)
}

fn visit_array<'de, V: Visitor<'de>>(items: &'de [Value], v: V) -> Result<V::Value, DeError> {
    let mut access = SeqDeserializer::new(items.iter().map(ValueDe));
    let out = v.visit_seq(&mut access)?;
    access.end()?;
    Ok(out)
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => v.visit_u64(u),
                (None, Some(i)) => v.visit_i64(i),
                (None, None) => v.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => v.visit_borrowed_str(s),
            Value::Array(items) => visit_array(items, v),
            Value::Object(map) => visit_object(map, v),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Bool(b) => v.visit_bool(*b),
            other => Err(expected("true or false", other)),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_string(v)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::String(s) => v.visit_borrowed_str(s),
            other => Err(expected("a string", other)),
        }
    }

    /// A list; anything else is refused in the visitor's words, serde's
    /// "a sequence" said "a list".
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Array(items) => visit_array(items, v),
            other => {
                let what = (&v as &dyn Expected).to_string();
                let what = if what == "a sequence" {
                    "a list"
                } else {
                    &what
                };
                Err(expected(what, other))
            }
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Object(map) => visit_object(map, v),
            other => Err(expected("a JSON object", other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    /// A present value is never "absent", `null` included.
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::String(s) => {
                v.visit_enum(IntoDeserializer::<DeError>::into_deserializer(s.as_str()))
            }
            Value::Object(map) => {
                let first = map
                    .iter()
                    .filter_map(|(k, x)| Some((variants.iter().position(|n| n == k)?, x)))
                    .min_by_key(|&(i, _)| i);
                let Some((i, content)) = first else {
                    return Err(expected(&format!("one of {}", quoted(variants)), self.0));
                };
                if let Some(other) = map.keys().find(|k| *k != variants[i]) {
                    return Err(DeError::Unknown {
                        field: other.clone(),
                        expected: &variants[i..=i],
                        keyed: false,
                    });
                }
                v.visit_enum(Variant {
                    name: variants[i],
                    content,
                })
            }
            other => Err(expected(&format!("one of {}", quoted(variants)), other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct tuple tuple_struct identifier
    }
}

/// An enum variant read from an object's key, and its content.
struct Variant<'a> {
    name: &'static str,
    content: &'a Value,
}

impl<'de> EnumAccess<'de> for Variant<'de> {
    type Error = DeError;
    type Variant = ValueDe<'de>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, ValueDe<'de>), DeError> {
        let name: StrDeserializer<DeError> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, ValueDe(self.content)))
    }
}

impl<'de> VariantAccess<'de> for ValueDe<'de> {
    type Error = DeError;

    /// A unit variant's content is empty: `{}` (or `null`).
    fn unit_variant(self) -> Result<(), DeError> {
        match self.0 {
            Value::Null => Ok(()),
            Value::Object(map) => match map.keys().next() {
                None => Ok(()),
                Some(field) => Err(DeError::Unknown {
                    field: field.clone(),
                    expected: &[],
                    keyed: false,
                }),
            },
            other => Err(expected("nothing", other)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self, v)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self, v)
    }
}
