//! Internal tagging on the writing side: an externally tagged enum value (a
//! unit or struct variant, as [`crate::Op`] derives) written into an open
//! JSON object as `"<tag>":"<variant>"` followed by the variant's fields.
//!
//! serde's `#[serde(tag = "op")]` would do the same, but its reading side
//! goes through an untyped buffer that loses the path to a bad field
//! (dtolnay/path-to-error#1), which a trace's errors must name. The reading
//! side is `de::ValueDe`, given `{"<variant>": {fields}}`.

use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStructVariant, Serializer};

/// Writes a variant into `map` under `tag` (see the module's doc).
#[derive(Debug)]
pub(crate) struct TagInto<'a, M> {
    pub(crate) map: &'a mut M,
    pub(crate) tag: &'static str,
}

impl<M: SerializeMap> TagInto<'_, M> {
    fn refuse<T>(&self) -> Result<T, M::Error> {
        Err(ser::Error::custom(format_args!(
            "only a unit or struct variant can be written under \"{}\"",
            self.tag
        )))
    }
}

/// The kinds of value a tagged variant cannot be.
macro_rules! refused {
    ($($method:ident($($arg:ty),*) -> $ok:ty;)*) => {$(
        fn $method(self, $(_: $arg),*) -> Result<$ok, M::Error> {
            self.refuse()
        }
    )*};
}

impl<'a, M: SerializeMap> Serializer for TagInto<'a, M> {
    type Ok = ();
    type Error = M::Error;
    type SerializeSeq = Impossible<(), M::Error>;
    type SerializeTuple = Impossible<(), M::Error>;
    type SerializeTupleStruct = Impossible<(), M::Error>;
    type SerializeTupleVariant = Impossible<(), M::Error>;
    type SerializeMap = Impossible<(), M::Error>;
    type SerializeStruct = Impossible<(), M::Error>;
    type SerializeStructVariant = Self;

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), M::Error> {
        self.map.serialize_entry(self.tag, variant)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self, M::Error> {
        self.map.serialize_entry(self.tag, variant)?;
        Ok(self)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), M::Error> {
        self.refuse()
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        self.refuse()
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), M::Error> {
        self.refuse()
    }

    refused! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_str(&str) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_seq(Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(usize) -> Self::SerializeTuple;
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }
}

impl<M: SerializeMap> SerializeStructVariant for TagInto<'_, M> {
    type Ok = ();
    type Error = M::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        self.map.serialize_entry(key, value)
    }

    fn end(self) -> Result<(), M::Error> {
        Ok(())
    }
}
