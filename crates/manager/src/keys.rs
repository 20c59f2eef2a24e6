//! Keys of the cluster that a manager keeps on disk, and the sealing of secret data.
//!
//! Secret data is sealed (XChaCha20-Poly1305) by the manager that receives it, before it is
//! proposed, so the Raft log, the snapshots and the in-memory state only ever hold
//! ciphertext. The data key is shared by the managers (a joining manager receives it) and
//! kept in `keys.json`, readable by root only.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::path::Path;

const NONCE_LEN: usize = 24;
/// Marks sealed data, so that it is never mistaken for plaintext.
const MAGIC: &[u8; 4] = b"SHS1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("sealed data is damaged or was sealed with another key")]
    Open,
    #[error("a key is 64 hex digits")]
    Malformed,
    #[error("cannot read or write {path}: {msg}")]
    Io { path: String, msg: String },
}

#[derive(Clone, Serialize, Deserialize)]
pub struct DataKey(#[serde(with = "hexkey")] [u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

mod hexkey {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(k: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&k.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::parse_key(&s).map_err(serde::de::Error::custom)
    }
}

/// A key written as 64 hex digits. Works on bytes, never on string slices, so that any
/// text (another node's, a damaged file's) gets an error, not a panic.
fn parse_key(s: &str) -> Result<[u8; 32], KeyError> {
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return Err(KeyError::Malformed);
    }
    let nibble = |c: u8| (c as char).to_digit(16).ok_or(KeyError::Malformed);
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4 | nibble(pair[1])?) as u8;
    }
    Ok(out)
}

impl DataKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut k);
        Self(k)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(&self.0))
    }

    /// A value derived from the key for one purpose (hex SHA-256 of label and key).
    fn derive(&self, label: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(label.as_bytes());
        h.update([0u8]);
        h.update(self.0);
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What managers present to each other on node-to-node calls.
    pub fn manager_credential(&self) -> String {
        self.derive("shoal/manager")
    }

    /// The secret a node presents with its ID (`ID:SECRET`) on heartbeats and leave.
    pub fn node_secret(&self, node_id: &str) -> String {
        self.derive(&format!("shoal/node/{node_id}"))
    }

    /// What a manager presents to the node `node_id` when it calls that node (log streams);
    /// the node checks it with its own secret (see [`node_call_credential`]).
    pub fn node_call_credential(&self, node_id: &str) -> String {
        node_call_credential(&self.node_secret(node_id))
    }

    /// What any node presents to the node `node_id` to open a routing-mesh pipe to one of
    /// its tasks (see [`mesh_credential`]).
    pub fn node_mesh_credential(&self, node_id: &str) -> String {
        mesh_credential(&self.node_secret(node_id))
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let rest = sealed
            .strip_prefix(MAGIC.as_slice())
            .ok_or(KeyError::Open)?;
        if rest.len() < NONCE_LEN {
            return Err(KeyError::Open);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| KeyError::Open)
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename) with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| KeyError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The credential of a manager's call to the node whose secret is `node_secret`. Only the
/// managers (who hold the data key) and that node can compute it: a worker can check calls
/// made to it without being able to speak as a manager to anyone else.
pub fn node_call_credential(node_secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"shoal/manager-to-node");
    h.update([0u8]);
    h.update(node_secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The credential of a routing-mesh pipe to the node whose secret is `node_secret`. The
/// managers hand it to every node with the mesh's routes; it opens pipes to that node's tasks
/// and is worth nothing else (not a manager's call, not the node's own voice).
pub fn mesh_credential(node_secret: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"shoal/mesh-to-node");
    h.update([0u8]);
    h.update(node_secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_with_the_same_key_only() {
        let k = DataKey::generate();
        let sealed = k.seal(b"hunter2");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.open(&sealed).unwrap(), b"hunter2");
        assert!(DataKey::generate().open(&sealed).is_err());
        assert!(k.open(b"hunter2").is_err());
    }

    #[test]
    fn credentials_differ_by_purpose_and_node() {
        let k = DataKey::generate();
        assert_ne!(k.manager_credential(), k.node_secret("a"));
        assert_ne!(k.node_secret("a"), k.node_secret("b"));
        assert_eq!(k.node_secret("a"), k.node_secret("a"));
        assert_eq!(
            k.node_call_credential("a"),
            node_call_credential(&k.node_secret("a"))
        );
        assert_ne!(k.node_call_credential("a"), k.node_secret("a"));
        assert_ne!(k.node_mesh_credential("a"), k.node_call_credential("a"));
        assert_eq!(
            k.node_mesh_credential("a"),
            mesh_credential(&k.node_secret("a"))
        );
        assert_ne!(k.node_call_credential("a"), k.node_call_credential("b"));
        assert_ne!(
            DataKey::generate().manager_credential(),
            k.manager_credential()
        );
    }

    #[test]
    fn a_malformed_key_is_an_error_not_a_panic() {
        // 64 bytes whose pairs straddle a multi-byte character: slicing by index panicked.
        let straddling = format!("a{}", "é".repeat(31)) + "b";
        assert_eq!(straddling.len(), 64);
        for bad in [
            straddling.as_str(),
            "",
            "00",
            &"g".repeat(64),
            &"+f".repeat(32),
            &"0".repeat(65),
        ] {
            let json = serde_json::to_string(bad).unwrap();
            assert!(serde_json::from_str::<DataKey>(&json).is_err(), "{bad:?}");
        }
        let k: DataKey = serde_json::from_str(&format!("\"{}\"", "aB".repeat(32))).unwrap();
        assert_eq!(k.0, [0xab; 32]);
    }

    proptest::proptest! {
        /// Whatever text stands where a key should, decoding it gives a key or an error.
        #[test]
        fn any_text_decodes_to_a_key_or_an_error(s in "\\PC{0,70}|[0-9a-fA-F+-]{62,66}") {
            let json = serde_json::to_string(&s).unwrap();
            let decoded = serde_json::from_str::<DataKey>(&json);
            let hex = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
            proptest::prop_assert_eq!(decoded.is_ok(), hex);
        }

        /// Opening arbitrary bytes gives an error (or, by chance, data), never a panic.
        #[test]
        fn opening_any_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let k = DataKey::generate();
            let mut sealed = MAGIC.to_vec();
            sealed.extend_from_slice(&bytes);
            proptest::prop_assert!(k.open(&sealed).is_err());
            proptest::prop_assert!(k.open(&bytes).is_err());
        }
    }

    #[test]
    fn data_key_round_trips_through_json() {
        let k = DataKey::generate();
        let j = serde_json::to_string(&k).unwrap();
        let k2: DataKey = serde_json::from_str(&j).unwrap();
        assert_eq!(k2.open(&k.seal(b"x")).unwrap(), b"x");
    }
}
