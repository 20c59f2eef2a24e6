//! Pieces every swarm object shares (moby `api/types/swarm/common.go`): the object version,
//! driver references and TLS info. `Meta` and `Annotations` are not types here: like Go's
//! embedded structs they are written out as fields of each object and spec.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::wire::{is_default, null_default};

/// `"Version": {"Index": N}`: the Raft index of the object's last write, used for optimistic
/// concurrency (`?version=N` on updates).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(default, rename_all = "PascalCase")]
pub struct Version {
    #[serde(skip_serializing_if = "is_default")]
    pub index: u64,
}

impl Version {
    pub fn new(index: u64) -> Self {
        Version { index }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.index)
    }
}

/// A driver reference (network, IPAM, logging, secrets backend, templating) with its options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Driver {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub options: BTreeMap<String, String>,
}

/// Which CA certificate is trusted, and who issued a node's certificate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TLSInfo {
    /// The trusted root CA certificate, PEM.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trust_root: String,
    /// The issuer's raw subject (DER), base64 on the wire.
    #[serde(with = "crate::bytes_b64", skip_serializing_if = "Vec::is_empty")]
    pub cert_issuer_subject: Vec<u8>,
    /// The issuer's raw public key (DER), base64 on the wire.
    #[serde(with = "crate::bytes_b64", skip_serializing_if = "Vec::is_empty")]
    pub cert_issuer_public_key: Vec<u8>,
}
