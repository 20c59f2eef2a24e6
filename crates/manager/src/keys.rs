//! Keys of the cluster that a manager keeps on disk, and the sealing of secret data.
//!
//! Secret data is sealed (XChaCha20-Poly1305) by the manager that receives it, before it is
//! proposed, so the Raft log, the snapshots and the in-memory state only ever hold
//! ciphertext. The data key is shared by the managers (a joining manager receives it).
//!
//! At rest the data key is never written as it is: it is wrapped by a key-encryption key
//! ([`Kek`]). Without autolock the KEK is a random key in a file of its own; with autolock it
//! is the operator's unlock key (`SWMKEY-1-…`), which no file holds (see `identity::Files`).

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
    /// Docker's text for an unlock key that is not `SWMKEY-1-` and base64.
    #[error("invalid key string")]
    UnlockKeyFormat,
    /// The key-encryption key does not open the wrapped data key.
    #[error("swarm could not be unlocked: invalid key provided")]
    WrongKek,
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

/// 32 random bytes: a data key or a key-encryption key.
fn random_key() -> [u8; 32] {
    let mut k = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut k);
    k
}

fn cipher_of(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(Key::from_slice(key))
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
        Self(random_key())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        cipher_of(&self.0)
    }

    /// The key's bytes, for tests that search a disk for them.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
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

    /// The tag of a rotated secret's name: 8 hex digits that tell contents apart without
    /// telling anything of them to someone without the key (a plain hash of a short secret
    /// can be guessed).
    pub fn content_tag(&self, data: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"shoal/rotated-secret\0");
        h.update(self.0);
        h.update(data);
        h.update(self.0);
        h.finalize()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
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
        seal_with(&self.cipher(), MAGIC, plaintext)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        open_with(&self.cipher(), MAGIC, sealed)
    }

    /// A manager's TLS private key as its `node.json` keeps it: opened only where the data
    /// key is, so with autolock only once the operator unlocked the manager.
    pub fn seal_node_key(&self, key_pem: &str) -> Vec<u8> {
        seal_with(&self.cipher(), NODE_KEY_MAGIC, key_pem.as_bytes())
    }

    pub fn open_node_key(&self, sealed: &[u8]) -> Result<String, KeyError> {
        let bytes = open_with(&self.cipher(), NODE_KEY_MAGIC, sealed)?;
        String::from_utf8(bytes).map_err(|_| KeyError::Open)
    }

    /// The unlock key sealed for the replicated state (see [`Kek::seal_for_cluster`]).
    pub fn open_unlock_key(&self, sealed: &[u8]) -> Result<Kek, KeyError> {
        let bytes = self.open(sealed)?;
        let k: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Open)?;
        Ok(Kek(k))
    }
}

/// The Raft log's entries and snapshots are sealed with the data key on every manager's disk
/// (SwarmKit encrypts its Raft log with its DEK).
impl shoal_raft::Sealer for DataKey {
    fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher(), RAFT_MAGIC, plaintext)
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        open_with(&self.cipher(), RAFT_MAGIC, sealed).ok()
    }
}

fn seal_with(cipher: &XChaCha20Poly1305, magic: &[u8; 4], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), plaintext)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(magic.len() + NONCE_LEN + ct.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out
}

fn open_with(
    cipher: &XChaCha20Poly1305,
    magic: &[u8; 4],
    sealed: &[u8],
) -> Result<Vec<u8>, KeyError> {
    let rest = sealed
        .strip_prefix(magic.as_slice())
        .ok_or(KeyError::Open)?;
    if rest.len() < NONCE_LEN {
        return Err(KeyError::Open);
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    cipher
        .decrypt(XNonce::from_slice(nonce), ct)
        .map_err(|_| KeyError::Open)
}

/// Marks a manager's TLS key sealed with the data key, so that it is never taken for another
/// sealed value.
const NODE_KEY_MAGIC: &[u8; 4] = b"SHNK";
/// Marks a value of the Raft database (an entry, a snapshot) sealed with the data key.
const RAFT_MAGIC: &[u8; 4] = b"SHRL";
/// Marks a wrapped data key.
const WRAP_MAGIC: &[u8; 4] = b"SHW1";
/// Marks another secret wrapped by a KEK (the root CA's key), so that it is never taken for a
/// data key, nor the reverse.
const WRAP_SECRET_MAGIC: &[u8; 4] = b"SHWS";
/// Docker's prefix of a human-readable unlock key.
const UNLOCK_PREFIX: &str = "SWMKEY-1-";

/// A key-encryption key: what wraps the data key at rest. With autolock it is the operator's
/// unlock key; without, a random key kept in a file apart from the wrapped data key.
#[derive(Clone, PartialEq, Eq)]
pub struct Kek([u8; 32]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    pub fn generate() -> Self {
        Self(random_key())
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        cipher_of(&self.0)
    }

    /// Docker's human-readable form: `SWMKEY-1-` and the key in base64 without padding.
    pub fn unlock_key(&self) -> String {
        use base64::Engine;
        format!(
            "{UNLOCK_PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.0)
        )
    }

    /// Reads an unlock key as `docker swarm unlock` sends it (older Docker padded the base64;
    /// both are taken).
    pub fn from_unlock_key(text: &str) -> Result<Self, KeyError> {
        use base64::Engine;
        let b64 = text
            .trim()
            .strip_prefix(UNLOCK_PREFIX)
            .ok_or(KeyError::UnlockKeyFormat)?;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| KeyError::UnlockKeyFormat)?;
        // A key of another length is well-formed text but cannot be ours: it opens nothing.
        let k: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongKek)?;
        Ok(Self(k))
    }

    /// Written as 64 hex digits (the KEK file when autolock is off).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        parse_key(text.trim()).map(Self)
    }

    /// The data key, wrapped for the disk.
    pub fn wrap(&self, key: &DataKey) -> Vec<u8> {
        seal_with(&self.cipher(), WRAP_MAGIC, &key.0)
    }

    /// The data key out of what [`Kek::wrap`] wrote; any other KEK gets [`KeyError::WrongKek`].
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let bytes =
            open_with(&self.cipher(), WRAP_MAGIC, wrapped).map_err(|_| KeyError::WrongKek)?;
        let k: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongKek)?;
        Ok(DataKey(k))
    }

    /// Another secret of the manager's (the root CA's key), wrapped for the disk like the
    /// data key.
    pub fn wrap_secret(&self, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.cipher(), WRAP_SECRET_MAGIC, plaintext)
    }

    /// What [`Kek::wrap_secret`] wrapped; any other KEK gets [`KeyError::WrongKek`].
    pub fn unwrap_secret(&self, wrapped: &[u8]) -> Result<Vec<u8>, KeyError> {
        open_with(&self.cipher(), WRAP_SECRET_MAGIC, wrapped).map_err(|_| KeyError::WrongKek)
    }

    /// This key sealed with the data key, as the replicated state carries it: every manager
    /// learns the unlock key from the state (to re-wrap its own copy of the data key, and to
    /// show it with `docker swarm unlock-key`), and no log or snapshot holds it in clear.
    pub fn seal_for_cluster(&self, data_key: &DataKey) -> Vec<u8> {
        data_key.seal(&self.0)
    }

    /// The key's bytes, for tests that search a disk for them.
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
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

        /// A Raft value or a node key that does not open is refused, never a panic.
        #[test]
        fn opening_any_raft_value_or_node_key_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            use shoal_raft::Sealer;
            let k = DataKey::generate();
            let mut sealed = RAFT_MAGIC.to_vec();
            sealed.extend_from_slice(&bytes);
            proptest::prop_assert!(Sealer::open(&k, &sealed).is_none());
            let mut sealed = NODE_KEY_MAGIC.to_vec();
            sealed.extend_from_slice(&bytes);
            proptest::prop_assert!(k.open_node_key(&sealed).is_err());
        }
    }

    #[test]
    fn raft_values_and_node_keys_open_only_as_what_they_were_sealed_as() {
        use shoal_raft::Sealer;
        let k = DataKey::generate();
        let raft = Sealer::seal(&k, b"{\"entry\":1}");
        assert_eq!(Sealer::open(&k, &raft).unwrap(), b"{\"entry\":1}");
        assert!(Sealer::open(&DataKey::generate(), &raft).is_none());
        let node_key = k.seal_node_key("KEY");
        assert_eq!(k.open_node_key(&node_key).unwrap(), "KEY");
        // Each magic marks one kind: a sealed secret is neither, nor the reverse.
        assert!(Sealer::open(&k, &node_key).is_none());
        assert!(k.open_node_key(&raft).is_err());
        assert!(k.open(&raft).is_err());
        assert!(Sealer::open(&k, &k.seal(b"secret")).is_none());
    }

    #[test]
    fn a_wrapped_data_key_opens_with_its_kek_only() {
        let dek = DataKey::generate();
        let kek = Kek::generate();
        let wrapped = kek.wrap(&dek);
        assert!(!wrapped.windows(32).any(|w| w == dek.0));
        let back = kek.unwrap(&wrapped).unwrap();
        assert_eq!(back.0, dek.0);
        assert!(matches!(
            Kek::generate().unwrap(&wrapped),
            Err(KeyError::WrongKek)
        ));
        // Secret data sealed with the data key is not a wrapped key, and the reverse.
        assert!(kek.unwrap(&dek.seal(&kek.0)).is_err());
        assert!(dek.open(&wrapped).is_err());
    }

    #[test]
    fn a_wrapped_secret_opens_with_its_kek_only_and_is_no_data_key() {
        let kek = Kek::generate();
        let wrapped = kek.wrap_secret(b"-----BEGIN PRIVATE KEY-----");
        assert!(!wrapped.windows(11).any(|w| w == b"BEGIN PRIVA"));
        assert_eq!(
            kek.unwrap_secret(&wrapped).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(matches!(
            Kek::generate().unwrap_secret(&wrapped),
            Err(KeyError::WrongKek)
        ));
        let dek = DataKey::generate();
        assert!(kek.unwrap(&kek.wrap_secret(&dek.0)).is_err());
        assert!(kek.unwrap_secret(&kek.wrap(&dek)).is_err());
    }

    #[test]
    fn unlock_keys_have_dockers_form_and_read_back() {
        let kek = Kek::generate();
        let text = kek.unlock_key();
        assert!(text.starts_with("SWMKEY-1-"), "{text}");
        assert_eq!(text.len(), "SWMKEY-1-".len() + 43);
        assert!(!text.ends_with('='));
        assert_eq!(Kek::from_unlock_key(&text).unwrap(), kek);
        assert_eq!(Kek::from_unlock_key(&format!(" {text}=\n")).unwrap(), kek);
        for bad in ["", "SWMKEY-1-", "SWMKEY-2-abc", "hello", "SWMKEY-1-!!!!"] {
            assert!(Kek::from_unlock_key(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            Kek::from_unlock_key("SWMKEY-1-YWJj"),
            Err(KeyError::WrongKek)
        ));
        assert_eq!(Kek::from_hex(&kek.to_hex()).unwrap(), kek);
    }

    #[test]
    fn the_unlock_key_travels_sealed_with_the_data_key() {
        let dek = DataKey::generate();
        let kek = Kek::generate();
        let sealed = kek.seal_for_cluster(&dek);
        assert!(!sealed.windows(32).any(|w| w == kek.0));
        assert_eq!(dek.open_unlock_key(&sealed).unwrap(), kek);
        assert!(DataKey::generate().open_unlock_key(&sealed).is_err());
    }

    #[test]
    fn data_key_round_trips_through_json() {
        let k = DataKey::generate();
        let j = serde_json::to_string(&k).unwrap();
        let k2: DataKey = serde_json::from_str(&j).unwrap();
        assert_eq!(k2.open(&k.seal(b"x")).unwrap(), b"x");
    }
}
