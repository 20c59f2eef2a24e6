//! Configs (moby `api/types/swarm/config.go`): named, immutable blobs mounted into containers,
//! and the references a container spec makes to them. Config data is returned by the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Driver, Version};
use crate::wire::null_default;

/// A config, as `GET /configs/{id}` returns it (with its data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Config {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    pub spec: ConfigSpec,
}

/// `POST /configs/create` body; on update only `Labels` may change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ConfigSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    /// The content, base64 on the wire.
    #[serde(with = "crate::bytes_b64", skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<u8>,
    /// Template engine for the content (`golang`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templating: Option<Driver>,
}

/// Where a referenced config lands in the container. `UID`/`GID` are strings (`"0"`); `Mode`
/// is the numeric file mode (`292` for 0444).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ConfigReferenceFileTarget {
    pub name: String,
    #[serde(rename = "UID")]
    pub uid: String,
    #[serde(rename = "GID")]
    pub gid: String,
    pub mode: u32,
}

/// Marks a config used by the runtime itself (e.g. a credential spec), not mounted as a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigReferenceRuntimeTarget {}

/// A container spec's reference to a config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ConfigReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<ConfigReferenceFileTarget>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<ConfigReferenceRuntimeTarget>,
    #[serde(rename = "ConfigID")]
    pub config_id: String,
    pub config_name: String,
}

/// `POST /configs/create` answer (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigCreateResponse {
    #[serde(rename = "ID")]
    pub id: String,
}
