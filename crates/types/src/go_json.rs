//! Decoding request bodies the way the Docker daemon does: Go's `encoding/json` rules on top
//! of serde, for any `Deserialize` type, driven by the type's own field names.
//!
//! Go matches a JSON object key to a struct field by its exact name first, then
//! case-insensitively (`"image"` and `"IMAGE"` both set `Image`), ignores keys that match no
//! field, and treats `null` as "leave the zero value" for anything that is not a pointer,
//! slice or map. Clients in the wild rely on all three, so a body is parsed into a JSON value
//! once, and a deserializer over that value renames every object key to the field name the
//! target struct declares (serde hands the names to `deserialize_struct`) before the derived
//! code sees it, at every nesting level. Maps (`Labels`, `Options`) keep their keys as sent,
//! as in Go. Unknown keys are ignored because no body type denies them.
//!
//! Two departures from Go, both refused rather than guessed: a key given twice under
//! different cases (`"Name"` and `"name"`) is an error, since the parsed value no longer
//! knows which came last; and errors name the field by its path (`TaskTemplate.ContainerSpec.
//! Image: invalid type ...`), which Go does only in part.
//!
//! It owns decoding only; what a field means is the business of the types and the managers.

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};
use serde_json::{Map, Value};

/// A body that cannot be decoded, with the path of the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON at all.
    #[error("invalid JSON in request body: {0}")]
    Syntax(serde_json::Error),
    /// JSON that does not fit the type; `path` is `.`-separated from the body's root.
    #[error("invalid request body: {}{message}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
    Field { path: String, message: String },
}

/// Decodes `bytes` into `T` with Go's `encoding/json` rules (see the module docs).
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let value: Value = serde_json::from_slice(bytes).map_err(DecodeError::Syntax)?;
    from_value(value)
}

/// Decodes an already parsed JSON value into `T` with Go's `encoding/json` rules.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(GoValue(value)).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Field {
            path: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

/// Go's `strings.EqualFold` for a key against an ASCII field name: ASCII letters match in
/// either case, and so do the two non-ASCII letters that fold onto ASCII ones (`ſ` onto `s`,
/// the Kelvin sign onto `k`).
fn fold_eq(key: &str, field: &str) -> bool {
    let mut k = key.chars();
    let mut f = field.chars();
    loop {
        match (k.next(), f.next()) {
            (None, None) => return true,
            (Some(kc), Some(fc)) => {
                let same = kc.eq_ignore_ascii_case(&fc)
                    || (kc == '\u{017F}' && fc.eq_ignore_ascii_case(&'s'))
                    || (kc == '\u{212A}' && fc.eq_ignore_ascii_case(&'k'));
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The field a key sets: the exact name if the struct has it, otherwise the first field whose
/// name matches ignoring case; `None` for a key the struct does not know.
fn field_for<'a>(key: &str, fields: &[&'a str]) -> Option<&'a str> {
    fields
        .iter()
        .find(|f| **f == key)
        .or_else(|| fields.iter().find(|f| fold_eq(key, f)))
        .copied()
}

/// Renames the keys of a JSON object to the struct's field names. Unknown keys are dropped
/// (the derived code would skip them anyway).
fn canonical_object(
    object: Map<String, Value>,
    fields: &'static [&'static str],
) -> Result<Vec<(String, Value)>, serde_json::Error> {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(object.len());
    let mut sent_as: Vec<String> = Vec::with_capacity(object.len());
    for (key, value) in object {
        let Some(field) = field_for(&key, fields) else {
            continue;
        };
        if let Some(i) = out.iter().position(|(f, _)| f == field) {
            return Err(de::Error::custom(format_args!(
                "keys {:?} and {key:?} both set field {field}: send it once",
                sent_as[i]
            )));
        }
        out.push((field.to_string(), value));
        sent_as.push(key);
    }
    Ok(out)
}

/// A JSON value that deserializes with Go's rules.
struct GoValue(Value);

macro_rules! delegate {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                self.0.$method(visitor)
            }
        )*
    };
}

/// `null` where Go keeps the zero value: the scalar's zero.
macro_rules! zero_on_null {
    ($($method:ident => $visit:ident($zero:expr)),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.0 {
                    Value::Null => visitor.$visit($zero),
                    other => other.$method(visitor),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for GoValue {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(GoSeq(items.into_iter())),
            Value::Object(object) => visitor.visit_map(GoMap::new(object.into_iter().collect())),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(GoValue(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(GoSeq(items.into_iter())),
            Value::Null => visitor.visit_seq(GoSeq(Vec::new().into_iter())),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(object) => visitor.visit_map(GoMap::new(object.into_iter().collect())),
            Value::Null => visitor.visit_map(GoMap::new(Vec::new())),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(object) => {
                visitor.visit_map(GoMap::new(canonical_object(object, fields)?))
            }
            Value::Null => visitor.visit_map(GoMap::new(Vec::new())),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        // No body type has an enum with data; Go has none either.
        self.0.deserialize_enum(name, variants, visitor)
    }

    zero_on_null! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_str => visit_str(""),
        deserialize_string => visit_str(""),
    }

    delegate! {
        deserialize_i128 deserialize_u128 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }
}

impl<'de> IntoDeserializer<'de, serde_json::Error> for GoValue {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

struct GoSeq(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for GoSeq {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|v| seed.deserialize(GoValue(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct GoMap {
    entries: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
}

impl GoMap {
    fn new(entries: Vec<(String, Value)>) -> Self {
        GoMap {
            entries: entries.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for GoMap {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(MapKey(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self
            .value
            .take()
            .ok_or_else(|| <serde_json::Error as de::Error>::custom("value asked before key"))?;
        seed.deserialize(GoValue(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// An object key: a string, or a number or boolean written as one when the map's keys are
/// (`BTreeMap<u64, _>`), as `encoding/json` and serde_json both read them.
struct MapKey(String);

macro_rules! parse_key {
    ($($method:ident => $visit:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
                match self.0.parse::<$ty>() {
                    Ok(v) => visitor.$visit(v),
                    Err(_) => Err(de::Error::invalid_value(
                        de::Unexpected::Str(&self.0),
                        &visitor,
                    )),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for MapKey {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    parse_key! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Value::String(self.0).deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, rename_all = "PascalCase")]
    struct Inner {
        image: String,
        #[serde(rename = "TTY")]
        tty: bool,
        args: Vec<String>,
        replicas: Option<u64>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, rename_all = "PascalCase")]
    struct Outer {
        name: String,
        labels: BTreeMap<String, String>,
        inner: Inner,
        list: Vec<Inner>,
        maybe: Option<Inner>,
    }

    fn decode<T: DeserializeOwned>(json: &str) -> Result<T, DecodeError> {
        from_slice(json.as_bytes())
    }

    #[test]
    fn keys_match_fields_ignoring_case_at_every_level() {
        let o: Outer = decode(
            r#"{"name":"web","INNER":{"image":"nginx","tty":true},
                "list":[{"iMaGe":"a"}],"Maybe":{"replicas":3}}"#,
        )
        .unwrap();
        assert_eq!(o.name, "web");
        assert_eq!(o.inner.image, "nginx");
        assert!(o.inner.tty);
        assert_eq!(o.list[0].image, "a");
        assert_eq!(o.maybe.unwrap().replicas, Some(3));
    }

    #[test]
    fn map_keys_stay_as_sent() {
        let o: Outer = decode(r#"{"labels":{"Com.Example":"x","name":"y"}}"#).unwrap();
        assert_eq!(o.labels.get("Com.Example").map(String::as_str), Some("x"));
        assert_eq!(o.labels.get("name").map(String::as_str), Some("y"));
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let o: Outer = decode(r#"{"Name":"a","Bogus":{"x":1},"inner":{"nope":[1]}}"#).unwrap();
        assert_eq!(o.name, "a");
    }

    #[test]
    fn null_leaves_the_zero_value_as_in_go() {
        let o: Outer = decode(
            r#"{"Name":null,"Labels":null,"Inner":null,"List":null,"Maybe":null,
                "x":null}"#,
        )
        .unwrap();
        assert_eq!(o, Outer::default());
        let i: Inner = decode(r#"{"Tty":null,"Args":null,"Replicas":null}"#).unwrap();
        assert_eq!(i, Inner::default());
    }

    #[test]
    fn the_exact_name_wins_over_a_case_insensitive_match() {
        #[derive(Debug, Default, Deserialize)]
        #[serde(default)]
        struct Both {
            #[serde(rename = "ID")]
            upper: String,
            #[serde(rename = "id")]
            lower: String,
        }
        let b: Both = decode(r#"{"id":"l","ID":"u"}"#).unwrap();
        assert_eq!((b.upper.as_str(), b.lower.as_str()), ("u", "l"));
        let b: Both = decode(r#"{"Id":"first"}"#).unwrap();
        assert_eq!(b.upper, "first");
    }

    #[test]
    fn go_folds_the_long_s_and_the_kelvin_sign() {
        assert!(fold_eq("\u{017F}ecrets", "Secrets"));
        assert!(fold_eq("\u{212A}ind", "Kind"));
        assert!(!fold_eq("Image2", "Image"));
        assert!(!fold_eq("Imag", "Image"));
    }

    #[test]
    fn a_field_sent_twice_in_different_cases_is_refused() {
        let e = decode::<Outer>(r#"{"Name":"a","name":"b"}"#).unwrap_err();
        assert!(e.to_string().contains("both set field Name"), "{e}");
    }

    #[test]
    fn errors_name_the_field_by_its_path() {
        let e = decode::<Outer>(r#"{"inner":{"replicas":"three"}}"#).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("Inner.Replicas"), "{msg}");
        let e = decode::<Outer>(r#"{"list":[{},{"tty":"yes"}]}"#).unwrap_err();
        assert!(e.to_string().contains("List[1].TTY"), "{e}");
        let e = decode::<Outer>("{").unwrap_err();
        assert!(e.to_string().starts_with("invalid JSON"), "{e}");
    }

    #[test]
    fn the_swarm_types_decode_lower_case_bodies() {
        use crate::swarm::ServiceSpec;
        let s: ServiceSpec = decode(
            r#"{"name":"web","taskTemplate":{"containerSpec":{"image":"nginx:1",
                "env":["A=1"]},"resources":{"limits":{"nanoCpus":500000000}},
                "restartPolicy":{"condition":"on-failure"}},
                "mode":{"replicated":{"replicas":2}},
                "endpointSpec":{"ports":[{"targetPort":80,"publishedPort":8080}]}}"#,
        )
        .unwrap();
        assert_eq!(s.name, "web");
        let c = s.task_template.container_spec.as_ref().unwrap();
        assert_eq!(c.image, "nginx:1");
        assert_eq!(c.env, vec!["A=1".to_string()]);
        assert_eq!(s.mode.replicated.unwrap().replicas, Some(2));
        let ports = &s.endpoint_spec.unwrap().ports;
        assert_eq!((ports[0].target_port, ports[0].published_port), (80, 8080));
    }

    #[test]
    fn number_keys_of_maps_parse_as_from_bytes() {
        let m: BTreeMap<u64, String> = decode(r#"{"1388754546386913597":"a","2":"b"}"#).unwrap();
        assert_eq!(
            m.get(&1_388_754_546_386_913_597).map(String::as_str),
            Some("a")
        );
        assert!(decode::<BTreeMap<u64, String>>(r#"{"x":"a"}"#).is_err());
    }
}
