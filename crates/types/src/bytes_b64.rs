//! Serde helpers for Go `[]byte` fields, which `encoding/json` writes as standard base64 (with
//! padding) and reads back the same way; `null` reads as empty. Used by config and secret data,
//! TLS info and seccomp profiles. It owns the encoding only, never the meaning of the bytes.
//!
//! ```ignore
//! #[serde(with = "crate::bytes_b64", skip_serializing_if = "Vec::is_empty")]
//! data: Vec<u8>,
//! #[serde(with = "crate::bytes_b64::option", skip_serializing_if = "Option::is_none")]
//! data: Option<Vec<u8>>,
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serializer};

/// Encodes bytes as standard base64, like Go's `encoding/json`.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes standard base64; like Go, line breaks inside the text are ignored.
pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    if text.contains(['\r', '\n']) {
        let clean: String = text.chars().filter(|c| *c != '\r' && *c != '\n').collect();
        STANDARD.decode(clean)
    } else {
        STANDARD.decode(text)
    }
}

pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&encode(bytes))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(text) => decode(&text)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid base64 data: {e}"))),
    }
}

/// The same for `Option<Vec<u8>>`: `None` is `null` (skip it with `Option::is_none` to mirror
/// `omitempty`), `null` reads as `None`.
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => s.serialize_str(&encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => decode(&text)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format_args!("invalid base64 data: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_line_breaks() {
        assert_eq!(encode(b"hello\n"), "aGVsbG8K");
        assert_eq!(decode("aGVs\nbG8K").unwrap(), b"hello\n");
        assert!(decode("not base64!").is_err());
    }
}
