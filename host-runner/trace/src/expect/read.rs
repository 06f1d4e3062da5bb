//! Reading an `expect` field's value: which form it is, then the form by
//! serde derive.

use serde::Deserialize;
use serde_json::Value;

use super::forms::at_name;
use super::Expect;
use crate::de::shown;
use crate::error::FieldError;
use crate::fields::{read, Place};
use crate::names::ErrorCode;
use crate::numbers::{read_number, Hex};

const EXPECT: Place = Place {
    name: "expect",
    variant_is_tag: false,
    known_before: &[],
    known_after: &[],
};

/// An object form of an expectation, read by the derive.
struct Form(Expect);

impl<'de> Deserialize<'de> for Form {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Expect::deserialize(d).map(Form)
    }
}

impl Expect {
    /// Reads the `expect` field's value; errors name `expect…` fields.
    pub fn read(v: &Value) -> Result<Expect, FieldError> {
        read_expect(v)
    }
}

/// Reads the `expect` field's value; errors name `expect…` fields.
pub(crate) fn read_expect(v: &Value) -> Result<Expect, FieldError> {
    let top = || {
        FieldError::new("expect", format!("expected \"any\", \"ok\", an answer kind such as \"done\", or an object such as {{\"error\":\"invalid_state\"}}, got {}", shown(v)))
    };
    match v {
        Value::String(s) => match s.as_str() {
            "any" => Ok(Expect::Any),
            "ok" => Ok(Expect::Ok),
            _ => read(v, EXPECT).map(Expect::Kind).map_err(|_| top()),
        },
        Value::Object(map) => match map.get("error") {
            Some(code) => {
                let code: ErrorCode = read(
                    code,
                    Place {
                        name: "expect.error",
                        ..EXPECT
                    },
                )?;
                let at_key = at_name(code);
                let at = map
                    .get(at_key)
                    .map(|v| {
                        read_number::<_, Hex>(v)
                            .map_err(|e| FieldError::new(&format!("expect.{at_key}"), e))
                    })
                    .transpose()?;
                if let Some(other) = map.keys().find(|k| *k != "error" && *k != at_key) {
                    return Err(FieldError::new(
                        &format!("expect.{other}"),
                        format!("unknown field (expected one of: error, {at_key})"),
                    ));
                }
                Ok(Expect::Error { code, at })
            }
            None => read(v, EXPECT).map(|Form(x)| x).map_err(|e| {
                // Not one of the forms at all.
                if e.field == "expect" {
                    top()
                } else {
                    e
                }
            }),
        },
        _ => Err(top()),
    }
}
