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
