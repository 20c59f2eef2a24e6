//! What a node remembers about itself across restarts: `node.json` (who it is, in which
//! cluster, in which role, where its managers are) and, on managers, `keys.json`.
//!
//! `keys.json` holds the data key and the root CA's key wrapped by a key-encryption key,
//! never either key itself. Without autolock the KEK is in `keys.kek`, a file of its own; with autolock no file
//! holds it: the operator does, and a restarted manager stays locked until it is given.
//! A manager's own node secret is derived from the data key, so `node.json` of a manager
//! does not hold it either, and its TLS private key is in `node.json` sealed with the data key:
//! with autolock, a copied disk can neither read the cluster's data nor speak as the manager.
//! A worker's key is in clear (as Swarm's: workers have no autolock).

use crate::ca::RootCa;
use crate::keys::{write_private, DataKey, Kek, KeyError};
use serde::{Deserialize, Serialize};
use shoal_raft::tls::NodeCert;
use shoal_types::swarm::NodeRole;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub node_id: String,
    pub raft_id: u64,
    pub role: NodeRole,
    pub cluster_id: String,
    /// The address the node-to-node server listens on.
    pub listen_addr: String,
    /// The address other nodes reach this one at (`ip:port`).
    pub advertise_addr: String,
    /// Manager addresses last known, for workers to report to.
    pub managers: Vec<String>,
    /// What this node presents with its ID on heartbeats and leave (see `DataKey::node_secret`).
    #[serde(default)]
    pub secret: String,
    /// This node's certificate, private key and the cluster's root CA certificate: what it
    /// presents and checks on every node-to-node connection.
    #[serde(default)]
    pub cert: Option<NodeCert>,
    /// A manager's TLS private key as `node.json` holds it, sealed with the data key (hex);
    /// `cert.key_pem` is empty until it is opened (see [`Files::open_identity`]). Empty in
    /// memory once opened, and always on a worker.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sealed_key: String,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Keys {
    pub data_key: DataKey,
    /// The cluster's root secret: join tokens carry its digest.
    #[serde(default)]
    pub root_digest: String,
    /// The cluster's root CA with its key: managers issue node certificates with it.
    #[serde(default)]
    pub ca: Option<RootCa>,
}

/// What wraps the data key on this manager's disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtRest {
    /// A random KEK kept in `keys.kek` (autolock off).
    KekFile(Kek),
    /// The operator's unlock key, kept by no file (autolock on).
    UnlockKey(Kek),
}

impl AtRest {
    pub fn kek(&self) -> &Kek {
        match self {
            AtRest::KekFile(k) | AtRest::UnlockKey(k) => k,
        }
    }
}

/// `keys.json` as written: the wrapped data key and what is not secret.
#[derive(Clone, Serialize, Deserialize)]
struct KeysFile {
    /// The data key wrapped by the KEK, hex.
    wrapped_data_key: String,
    #[serde(default)]
    root_digest: String,
    /// The root CA (certificate and key, JSON) wrapped by the same KEK, hex: a manager
    /// restarted, or unlocked, issues certificates with it. None in a cluster made before
    /// mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapped_ca: Option<String>,
    /// Whether the KEK is the operator's (autolock): then `keys.kek` is not expected.
    #[serde(default)]
    autolock: bool,
}

/// `keys.json` of an earlier version: the data key in clear. Read once, then rewritten.
#[derive(Deserialize)]
struct LegacyKeysFile {
    data_key: DataKey,
    #[serde(default)]
    root_digest: String,
    #[serde(default)]
    ca: Option<RootCa>,
}

/// A manager's keys as found on disk.
pub enum StoredKeys {
    /// The KEK was at hand (autolock off).
    Open(Keys, AtRest),
    /// The data key waits for the operator's unlock key.
    Locked(LockedKeys),
}

/// The wrapped data key (and root CA) of a locked manager.
#[derive(Clone)]
pub struct LockedKeys {
    wrapped: Vec<u8>,
    root_digest: String,
    wrapped_ca: Option<Vec<u8>>,
}

impl LockedKeys {
    /// Opens the data key and the root CA with the operator's unlock key.
    pub fn unlock(&self, kek: &Kek) -> Result<Keys, KeyError> {
        let data_key = kek.unwrap(&self.wrapped)?;
        let ca = match &self.wrapped_ca {
            Some(w) => {
                Some(serde_json::from_slice(&kek.unwrap_secret(w)?).map_err(|_| KeyError::Open)?)
            }
            None => None,
        };
        Ok(Keys {
            data_key,
            root_digest: self.root_digest.clone(),
            ca,
        })
    }
}

pub struct Files {
    dir: PathBuf,
    /// The data key while this manager holds it open (its keys were opened or saved): it
    /// seals and opens the manager's TLS key in `node.json`.
    data_key: Mutex<Option<DataKey>>,
}

impl Files {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            data_key: Mutex::new(None),
        }
    }

    fn remember(&self, data_key: Option<&DataKey>) {
        *self.data_key.lock().unwrap_or_else(|e| e.into_inner()) = data_key.cloned();
    }

    fn remembered(&self) -> Option<DataKey> {
        self.data_key
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn node(&self) -> PathBuf {
        self.dir.join("node.json")
    }

    fn keys(&self) -> PathBuf {
        self.dir.join("keys.json")
    }

    fn kek(&self) -> PathBuf {
        self.dir.join("keys.kek")
    }

    pub fn raft_db(&self) -> PathBuf {
        self.dir.join("raft.redb")
    }

    /// Reads `node.json`. A manager's TLS key is opened when this manager's keys are (see
    /// [`Files::load_keys`]); before, it stays sealed.
    pub fn load_identity(&self) -> Result<Option<Identity>, String> {
        let Some(id) = read_json::<Identity>(&self.node())? else {
            return Ok(None);
        };
        match self.remembered() {
            Some(k) if !id.sealed_key.is_empty() => self.open_identity(id, &k).map(Some),
            _ => Ok(Some(id)),
        }
    }

    /// Opens a manager's TLS key with the data key (a manager started, or unlocked), and
    /// remembers the data key for the writes of `node.json` that follow.
    pub fn open_identity(&self, mut id: Identity, data_key: &DataKey) -> Result<Identity, String> {
        self.remember(Some(data_key));
        if id.sealed_key.is_empty() {
            return Ok(id);
        }
        let damaged = |what: &str| format!("{} is damaged: {what}", self.node().display());
        let sealed =
            hex::decode(&id.sealed_key).map_err(|_| damaged("the sealed key is not hex"))?;
        let key = data_key
            .open_node_key(&sealed)
            .map_err(|_| damaged("its TLS key does not open with this manager's data key"))?;
        let cert = id
            .cert
            .as_mut()
            .ok_or_else(|| damaged("a sealed key without a certificate"))?;
        cert.key_pem = key;
        id.sealed_key.clear();
        Ok(id)
    }

    /// Writes `node.json`. A manager's secret is left out: it follows from the data key,
    /// which is wrapped at rest (with autolock, a copied disk must not speak for the node);
    /// its TLS key is sealed with the data key.
    pub fn save_identity(&self, id: &Identity) -> Result<(), String> {
        let mut id = id.clone();
        if id.role == NodeRole::Manager {
            id.secret.clear();
            if let (Some(cert), Some(k)) = (id.cert.as_mut(), self.remembered()) {
                if !cert.key_pem.is_empty() {
                    id.sealed_key = hex::encode(k.seal_node_key(&cert.key_pem));
                    cert.key_pem.clear();
                }
            }
        }
        let bytes = serde_json::to_vec_pretty(&id).map_err(|e| e.to_string())?;
        write_private(&self.node(), &bytes).map_err(|e| e.to_string())
    }

    /// Reads this manager's keys: opened when the KEK is on disk, locked otherwise. A
    /// `keys.json` of an earlier version (data key in clear) is wrapped at once.
    pub fn load_keys(&self) -> Result<Option<StoredKeys>, String> {
        let path = self.keys();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let damaged = |e: &dyn std::fmt::Display| format!("{} is damaged: {e}", path.display());
        if let Ok(legacy) = serde_json::from_slice::<LegacyKeysFile>(&bytes) {
            let keys = Keys {
                data_key: legacy.data_key,
                root_digest: legacy.root_digest,
                ca: legacy.ca,
            };
            let at_rest = AtRest::KekFile(Kek::generate());
            self.save_keys(&keys, &at_rest)?;
            self.remember(Some(&keys.data_key));
            return Ok(Some(StoredKeys::Open(keys, at_rest)));
        }
        let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| damaged(&e))?;
        let locked = LockedKeys {
            wrapped: hex::decode(&file.wrapped_data_key)
                .map_err(|_| damaged(&"the wrapped data key is not hex"))?,
            root_digest: file.root_digest,
            wrapped_ca: file
                .wrapped_ca
                .map(|w| hex::decode(w).map_err(|_| damaged(&"the wrapped root CA is not hex")))
                .transpose()?,
        };
        if file.autolock {
            self.remember(None);
            return Ok(Some(StoredKeys::Locked(locked)));
        }
        let kek = match std::fs::read_to_string(self.kek()) {
            Ok(text) => Kek::from_hex(&text)
                .map_err(|e| format!("{} is damaged: {e}", self.kek().display()))?,
            // A KEK file lost (or never written, a crash mid-change): the operator's key
            // is the only way in.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.remember(None);
                return Ok(Some(StoredKeys::Locked(locked)));
            }
            Err(e) => return Err(format!("cannot read {}: {e}", self.kek().display())),
        };
        match locked.unlock(&kek) {
            Ok(keys) => {
                self.remember(Some(&keys.data_key));
                Ok(Some(StoredKeys::Open(keys, AtRest::KekFile(kek))))
            }
            // The KEK file is from before a change to autolock that did not finish.
            Err(_) => {
                self.remember(None);
                Ok(Some(StoredKeys::Locked(locked)))
            }
        }
    }

    /// Writes the data key and the root CA wrapped as `at_rest` says. The KEK file is written before a
    /// `keys.json` that needs it and removed only after one that does not: a crash in between
    /// leaves a manager that opens, or one that asks for the unlock key, never one that
    /// cannot be opened at all.
    pub fn save_keys(&self, k: &Keys, at_rest: &AtRest) -> Result<(), String> {
        let wrapped_ca = match &k.ca {
            Some(ca) => {
                let json = serde_json::to_vec(ca).map_err(|e| e.to_string())?;
                Some(hex::encode(at_rest.kek().wrap_secret(&json)))
            }
            None => None,
        };
        let file = KeysFile {
            wrapped_data_key: hex::encode(at_rest.kek().wrap(&k.data_key)),
            root_digest: k.root_digest.clone(),
            wrapped_ca,
            autolock: matches!(at_rest, AtRest::UnlockKey(_)),
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| e.to_string())?;
        if let AtRest::KekFile(kek) = at_rest {
            write_private(&self.kek(), kek.to_hex().as_bytes()).map_err(|e| e.to_string())?;
        }
        write_private(&self.keys(), &bytes).map_err(|e| e.to_string())?;
        self.remember(Some(&k.data_key));
        if let AtRest::UnlockKey(_) = at_rest {
            remove_if_present(&self.kek())?;
        }
        Ok(())
    }

    /// Forgets a manager's keys (a demoted manager).
    pub fn remove_keys(&self) -> Result<(), String> {
        self.remember(None);
        remove_if_present(&self.keys())?;
        remove_if_present(&self.kek())
    }

    /// Forgets the cluster: identity, keys and the Raft database.
    pub fn wipe(&self) -> Result<(), String> {
        self.remember(None);
        for p in [self.node(), self.keys(), self.kek(), self.raft_db()] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", p.display())),
            }
        }
        Ok(())
    }
}

fn remove_if_present(p: &Path) -> Result<(), String> {
    match std::fs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", p.display())),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| format!("{} is damaged: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys {
            data_key: DataKey::generate(),
            root_digest: "digest".into(),
            ca: Some(RootCa::generate().unwrap()),
        }
    }

    fn contains(dir: &Path, needle: &[u8]) -> bool {
        let hex = hex::encode(needle);
        std::fs::read_dir(dir).unwrap().any(|e| {
            let b = std::fs::read(e.unwrap().path()).unwrap_or_default();
            b.windows(needle.len()).any(|w| w == needle)
                || b.windows(hex.len()).any(|w| w == hex.as_bytes())
        })
    }

    /// Whether any file of `dir` holds a line of the root CA's private key, PEM.
    fn holds_ca_key(dir: &Path, k: &Keys) -> bool {
        let pem = k.ca.as_ref().unwrap().expose_key_pem();
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 16)
            .any(|l| contains(dir, l.as_bytes()))
    }

    /// The same root CA, key and all.
    fn same_ca(a: &Keys, b: &Keys) -> bool {
        let (a, b) = (a.ca.as_ref().unwrap(), b.ca.as_ref().unwrap());
        a.cert_pem == b.cert_pem && a.expose_key_pem() == b.expose_key_pem()
    }

    #[test]
    fn without_autolock_the_keys_open_from_the_kek_file() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let k = keys();
        let at_rest = AtRest::KekFile(Kek::generate());
        files.save_keys(&k, &at_rest).unwrap();
        assert!(!contains(dir.path(), k.data_key.expose_bytes()));
        assert!(!holds_ca_key(dir.path(), &k));
        match files.load_keys().unwrap() {
            Some(StoredKeys::Open(got, how)) => {
                assert_eq!(got.data_key.expose_bytes(), k.data_key.expose_bytes());
                assert!(same_ca(&got, &k));
                assert_eq!(how, at_rest);
            }
            _ => panic!("expected open keys"),
        }
        // Without its KEK file, keys.json alone opens nothing.
        std::fs::remove_file(dir.path().join("keys.kek")).unwrap();
        assert!(matches!(
            files.load_keys().unwrap(),
            Some(StoredKeys::Locked(_))
        ));
    }

    #[test]
    fn with_autolock_nothing_on_disk_opens_the_data_key() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let k = keys();
        files
            .save_keys(&k, &AtRest::KekFile(Kek::generate()))
            .unwrap();
        let unlock = Kek::generate();
        files
            .save_keys(&k, &AtRest::UnlockKey(unlock.clone()))
            .unwrap();
        assert!(!dir.path().join("keys.kek").exists());
        assert!(!contains(dir.path(), k.data_key.expose_bytes()));
        assert!(!contains(dir.path(), unlock.expose_bytes()));
        assert!(!holds_ca_key(dir.path(), &k));
        let Some(StoredKeys::Locked(locked)) = files.load_keys().unwrap() else {
            panic!("expected locked keys");
        };
        assert!(matches!(
            locked.unlock(&Kek::generate()),
            Err(KeyError::WrongKek)
        ));
        let got = locked.unlock(&unlock).unwrap();
        assert_eq!(got.data_key.expose_bytes(), k.data_key.expose_bytes());
        assert_eq!(got.root_digest, "digest");
        assert!(same_ca(&got, &k));
    }

    #[test]
    fn keys_of_a_cluster_without_a_root_ca_still_open() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let mut k = keys();
        k.ca = None;
        files
            .save_keys(&k, &AtRest::KekFile(Kek::generate()))
            .unwrap();
        let Some(StoredKeys::Open(got, _)) = files.load_keys().unwrap() else {
            panic!("expected open keys");
        };
        assert!(got.ca.is_none());
    }

    #[test]
    fn a_plaintext_keys_file_of_an_earlier_version_is_wrapped_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let k = keys();
        // As written before keys at rest (the root CA's key in clear too, as mutual TLS had it).
        let legacy = serde_json::to_vec(&k).unwrap();
        std::fs::write(dir.path().join("keys.json"), legacy).unwrap();
        assert!(holds_ca_key(dir.path(), &k));
        let Some(StoredKeys::Open(got, _)) = files.load_keys().unwrap() else {
            panic!("expected open keys");
        };
        assert_eq!(got.data_key.expose_bytes(), k.data_key.expose_bytes());
        assert!(same_ca(&got, &k));
        assert!(!contains(dir.path(), k.data_key.expose_bytes()));
        assert!(!holds_ca_key(dir.path(), &k));
    }

    fn manager_identity(secret: &str, cert: Option<NodeCert>) -> Identity {
        Identity {
            node_id: "n".into(),
            raft_id: 1,
            role: NodeRole::Manager,
            cluster_id: "c".into(),
            listen_addr: "a".into(),
            advertise_addr: "a".into(),
            managers: vec![],
            secret: secret.into(),
            cert,
            sealed_key: String::new(),
        }
    }

    #[test]
    fn a_managers_node_file_holds_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let mut id = manager_identity("s3cr3t-value", None);
        files.save_identity(&id).unwrap();
        assert!(!contains(dir.path(), b"s3cr3t-value"));
        id.role = NodeRole::Worker;
        files.save_identity(&id).unwrap();
        assert_eq!(
            files.load_identity().unwrap().unwrap().secret,
            "s3cr3t-value"
        );
    }

    #[test]
    fn a_managers_tls_key_is_sealed_with_the_data_key_and_a_workers_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path());
        let k = keys();
        let key_pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let body = key_pem.lines().find(|l| !l.starts_with("-----")).unwrap();
        let mut id = manager_identity(
            "",
            Some(NodeCert {
                ca_pem: "root".into(),
                cert_pem: "mine".into(),
                key_pem: key_pem.clone(),
            }),
        );
        let unlock = Kek::generate();
        files
            .save_keys(&k, &AtRest::UnlockKey(unlock.clone()))
            .unwrap();
        files.save_identity(&id).unwrap();
        assert!(!contains(dir.path(), body.as_bytes()), "the key in clear");
        assert_eq!(
            files.load_identity().unwrap().unwrap(),
            id,
            "opened while held"
        );

        // Restarted: sealed until the keys open, and only with the unlock key.
        let files = Files::new(dir.path());
        let stored = files.load_identity().unwrap().unwrap();
        assert!(stored.cert.as_ref().unwrap().key_pem.is_empty());
        assert!(!stored.sealed_key.is_empty());
        let Some(StoredKeys::Locked(locked)) = files.load_keys().unwrap() else {
            panic!("expected locked keys");
        };
        assert!(locked.unlock(&Kek::generate()).is_err());
        let opened = locked.unlock(&unlock).unwrap();
        assert_eq!(
            files
                .open_identity(stored.clone(), &opened.data_key)
                .unwrap(),
            id
        );
        let other = keys();
        assert!(Files::new(dir.path())
            .open_identity(stored, &other.data_key)
            .is_err());

        // Demoted: a worker keeps its key in clear, as Swarm's workers do.
        files.remove_keys().unwrap();
        id.role = NodeRole::Worker;
        files.save_identity(&id).unwrap();
        assert!(contains(dir.path(), body.as_bytes()));
        assert_eq!(Files::new(dir.path()).load_identity().unwrap().unwrap(), id);
    }
}
