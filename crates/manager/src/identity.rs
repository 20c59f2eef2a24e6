//! What a node remembers about itself across restarts: `node.json` (who it is, in which
//! cluster, in which role, where its managers are) and, on managers, `keys.json`.

use crate::ca::RootCa;
use crate::keys::{write_private, DataKey};
use serde::{Deserialize, Serialize};
use shoal_raft::tls::NodeCert;
use shoal_types::swarm::NodeRole;
use std::path::{Path, PathBuf};

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

pub struct Files {
    dir: PathBuf,
}

impl Files {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
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

    pub fn raft_db(&self) -> PathBuf {
        self.dir.join("raft.redb")
    }

    pub fn load_identity(&self) -> Result<Option<Identity>, String> {
        read_json(&self.node())
    }

    pub fn save_identity(&self, id: &Identity) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(id).map_err(|e| e.to_string())?;
        write_private(&self.node(), &bytes).map_err(|e| e.to_string())
    }

    pub fn load_keys(&self) -> Result<Option<Keys>, String> {
        read_json(&self.keys())
    }

    pub fn save_keys(&self, k: &Keys) -> Result<(), String> {
        let bytes = serde_json::to_vec(k).map_err(|e| e.to_string())?;
        write_private(&self.keys(), &bytes).map_err(|e| e.to_string())
    }

    /// Forgets the cluster: identity, keys and the Raft database.
    pub fn wipe(&self) -> Result<(), String> {
        for p in [self.node(), self.keys(), self.raft_db()] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {}: {e}", p.display())),
            }
        }
        Ok(())
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
