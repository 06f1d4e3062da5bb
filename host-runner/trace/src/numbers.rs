//! The integers of a trace, as serde_with adapters: `#[serde_as(as =
//! "Hex")]` for addresses, frames, seeds and checksums (written `"0x1000"`),
//! `#[serde_as(as = "Count")]` for counts (written as JSON numbers). Both
//! read every spelling: a hex string (`"0x1000"`, `_` separators allowed), a
//! decimal string, or a JSON number.
//!
//! A reference to an earlier answer does not change a field: it sits
//! beside the literal, as the line's `"ref"` ([`crate::refs`]).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serializer;
use serde_json::Value;
use serde_with::{DeserializeAs, SerializeAs};

use crate::de::shown;

/// Written as a hex string: addresses, frames, seeds, checksums.
#[derive(Debug)]
pub(crate) struct Hex;

/// Written as a JSON number, or as a hex string when too large for a plain
/// JSON number to hold exactly (above 2^53, JavaScript's limit).
#[derive(Debug)]
pub(crate) struct Count;

/// Counts up to this are written as JSON numbers.
const MAX_PLAIN_NUMBER: u64 = 1 << 53;

/// `$ty`: the type, how it widens to `u64` and narrows back, and the range
/// an error names.
macro_rules! integers {
    ($($ty:ty: $widen:expr, $narrow:expr, $range:literal;)*) => {$(
        impl SerializeAs<$ty> for Hex {
            fn serialize_as<S: Serializer>(value: &$ty, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&format_args!("{value:#x}"))
            }
        }
        impl SerializeAs<$ty> for Count {
            fn serialize_as<S: Serializer>(value: &$ty, s: S) -> Result<S::Ok, S::Error> {
                let v: u64 = ($widen)(*value);
                if v <= MAX_PLAIN_NUMBER {
                    s.serialize_u64(v)
                } else {
                    s.collect_str(&format_args!("{v:#x}"))
                }
            }
        }
        impl<'de> DeserializeAs<'de, $ty> for Hex {
            fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let n = d.deserialize_any(HexOrNumber)?;
                ($narrow)(n).map_err(|_| {
                    de::Error::custom(format_args!("expected a number {}, got {n}", $range))
                })
            }
        }
        impl<'de> DeserializeAs<'de, $ty> for Count {
            fn deserialize_as<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                Hex::deserialize_as(d)
            }
        }
    )*};
}

integers! {
    u64: |v| v, Ok::<u64, ()>, "below 2^64";
    u32: u64::from, u32::try_from, "below 2^32";
    u16: u64::from, u16::try_from, "from 0 to 65535";
    u8: u64::from, u8::try_from, "from 0 to 255";
    usize: |v| v as u64, usize::try_from, "below 2^64";
}

/// Reads a number of a line's value as `As` does (`Hex`, `Count`).
pub(crate) fn read_number<T, As: for<'de> DeserializeAs<'de, T>>(v: &Value) -> Result<T, String> {
    As::deserialize_as(crate::de::ValueDe(v)).map_err(|e| e.to_string())
}

/// Reads an unsigned number in any of its spellings.
struct HexOrNumber;

impl HexOrNumber {
    fn bad<E: de::Error>(got: impl fmt::Display) -> E {
        E::custom(format_args!(
            "expected a hex string like \"0x1000\" or a number, got {got}"
        ))
    }
}

impl<'de> Visitor<'de> for HexOrNumber {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a hex string like \"0x1000\" or a number")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
        Ok(n)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
        u64::try_from(n).map_err(|_| Self::bad(n))
    }

    fn visit_f64<E: de::Error>(self, x: f64) -> Result<u64, E> {
        Err(Self::bad(Value::from(x)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<u64, E> {
        parse_u64_str(s).ok_or_else(|| Self::bad(shown(&Value::from(s))))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<u64, E> {
        Err(Self::bad(b))
    }

    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Err(Self::bad("null"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<u64, A::Error> {
        let v: Value = de::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Err(Self::bad(shown(&v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<u64, A::Error> {
        let v: Value = de::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Err(Self::bad(shown(&v)))
    }
}

/// Parses `"0x…"` (hex) or decimal digits, with `_` separators (not
/// leading), surrounding blanks ignored.
pub(crate) fn parse_u64_str(s: &str) -> Option<u64> {
    let s = s.trim();
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => (h, 16),
        None => (s, 10),
    };
    if digits.is_empty() || digits.starts_with('_') {
        return None;
    }
    if digits.contains('_') {
        let clean: String = digits.chars().filter(|&c| c != '_').collect();
        u64::from_str_radix(&clean, radix).ok()
    } else {
        u64::from_str_radix(digits, radix).ok()
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_with::serde_as;

    #[serde_as]
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct N(#[serde_as(as = "super::Count")] u64);

    fn read(json: &str) -> Result<u64, String> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        N::deserialize(v).map(|n| n.0).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_in_every_spelling() {
        assert_eq!(read("\"0x1000\""), Ok(0x1000));
        assert_eq!(read("\"0XffFF_c080_0000_0000\""), Ok(0xffff_c080_0000_0000));
        assert_eq!(read("\"4096\""), Ok(4096));
        assert_eq!(read("\" 1_000 \""), Ok(1000));
        assert_eq!(read("8448"), Ok(8448));
        assert_eq!(read(&u64::MAX.to_string()), Ok(u64::MAX));
        for bad in [
            "\"0x\"",
            "\"0x12g\"",
            "\"_1\"",
            "\"0x_1\"",
            "-1",
            "1.5",
            "null",
            "[1]",
        ] {
            assert!(read(bad).unwrap_err().contains("hex string"), "{bad}");
        }
        let json = |n| serde_json::to_string(&N(n)).unwrap();
        assert_eq!(json(1 << 53), "9007199254740992");
        assert_eq!(json((1 << 53) + 1), "\"0x20000000000001\"");
        assert_eq!(json(u64::MAX), "\"0xffffffffffffffff\"");
    }
}
