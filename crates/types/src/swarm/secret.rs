//! Secrets (moby `api/types/swarm/secret.go`): named, immutable, sensitive blobs, and the
//! references a container spec makes to them. The API never returns secret data: a `Secret`
//! leaving the manager has `Spec.Data = None`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Driver, Version};
use crate::wire::null_default;

/// A secret, as `GET /secrets/{id}` returns it (without its data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Secret {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    pub spec: SecretSpec,
}

impl Secret {
    /// The secret as the API may show it: the same, without its data.
    pub fn redacted(&self) -> Secret {
        let mut secret = self.clone();
        secret.spec.data = None;
        secret
    }
}

/// `POST /secrets/create` body; on update only `Labels` may change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SecretSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// The content, base64 on the wire; never sent back by the API.
    #[serde(
        with = "crate::bytes_b64::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Vec<u8>>,
    /// External secret store driver, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<Driver>,
    /// Template engine for the content (`golang`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}

/// Where a referenced secret lands in the container (`/run/secrets/NAME` unless absolute).
/// `UID`/`GID` are strings (`"0"`); `Mode` is the numeric file mode (`292` for 0444).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SecretReferenceFileTarget {
    pub name: String,
    #[serde(rename = "UID")]
    pub uid: String,
    #[serde(rename = "GID")]
    pub gid: String,
    pub mode: u32,
}

/// A container spec's reference to a secret. `File` has no `omitempty` in Go (`null` when
/// unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SecretReference {
    pub file: Option<SecretReferenceFileTarget>,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub secret_name: String,
}

/// `POST /secrets/create` answer (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SecretCreateResponse {
    #[serde(rename = "ID")]
    pub id: String,
}
