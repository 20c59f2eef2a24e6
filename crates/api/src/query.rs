//! Request parsing with Docker-style 400s: query strings, `filters`, `version=`, JSON bodies.

use crate::error::{HttpError, HttpResult};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use shoal_types::filters::Filters;
use std::collections::HashMap;

pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> HttpResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| HttpError::bad_request(format!("invalid query string: {e}")))?;
        Ok(Query(pairs.into_iter().collect()))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// Docker's boolean query values: `1`, `true`, `True` are true; absent or `0`/`false` false.
    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some(v) if !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
    }

    pub fn filters(&self, accepted: &[&str]) -> HttpResult<Filters> {
        let f = match self.get("filters") {
            Some(s) if !s.is_empty() => {
                Filters::parse(s).map_err(|e| HttpError::bad_request(e.to_string()))?
            }
            _ => Filters::new(),
        };
        f.validate(accepted)
            .map_err(|e| HttpError::bad_request(e.to_string()))?;
        Ok(f)
    }

    /// The `version` an update was computed from.
    pub fn version(&self, kind: &str) -> HttpResult<u64> {
        let v = self.get("version").unwrap_or("");
        v.parse().map_err(|_| {
            HttpError::bad_request(format!(
                "invalid {kind} version '{v}': the update must name the Version.Index it was made from"
            ))
        })
    }
}

pub fn json<T: DeserializeOwned>(body: &Bytes) -> HttpResult<T> {
    if body.is_empty() {
        return Err(HttpError::bad_request(
            "request body is empty: a JSON object is expected",
        ));
    }
    // As the Docker daemon decodes: keys matched to fields ignoring case, unknown keys
    // ignored, `null` keeps the zero value.
    shoal_types::go_json::from_slice(body).map_err(|e| HttpError::bad_request(e.to_string()))
}

/// A node-to-node body: shoal's own messages, decoded exactly as shoal encoded them (the
/// Docker API's Go rules in [`json`] are for clients, not for Raft and heartbeats).
pub fn internal_json<T: DeserializeOwned>(body: &Bytes) -> HttpResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::bad_request(format!("invalid JSON in request body: {e}")))
}

/// Like [`json`], but an empty body is the type's default.
pub fn json_or_default<T: DeserializeOwned + Default>(body: &Bytes) -> HttpResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;
    use shoal_types::network::NetworkCreateRequest;
    use shoal_types::swarm::{
        ConfigSpec, InitRequest, JoinRequest, NodeSpec, SecretSpec, ServiceSpec, Spec,
    };

    /// Every Docker API body type, fed the same bytes: each decodes or is a 400, never a panic.
    fn decode_every_body(bytes: &[u8]) {
        let b = Bytes::copy_from_slice(bytes);
        let _ = json::<ServiceSpec>(&b);
        let _ = json::<Spec>(&b);
        let _ = json::<InitRequest>(&b);
        let _ = json::<JoinRequest>(&b);
        let _ = json::<NodeSpec>(&b);
        let _ = json::<SecretSpec>(&b);
        let _ = json::<ConfigSpec>(&b);
        let _ = json::<NetworkCreateRequest>(&b);
    }

    /// JSON whose keys are the body types' own field names in any case, and nonsense.
    fn any_body() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        let key = prop_oneof![
            "(?i)(name|labels|tasktemplate|containerspec|image|mode|replicated|replicas|mounts|type|networks|target|endpointspec|ports|resources|limits|spec|raft|dispatcher|heartbeatperiod|ipam|config|data|role|availability)",
            "[a-zA-Z]{1,10}",
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_body_decodes_or_is_refused(v in any_body()) {
            decode_every_body(&serde_json::to_vec(&v).unwrap());
        }

        #[test]
        fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            decode_every_body(&bytes);
        }
    }
}
