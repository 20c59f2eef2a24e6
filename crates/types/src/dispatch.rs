//! What the managers and a node's agent say to each other about tasks: the tasks a node is
//! given (`/internal/assignments`) and the statuses it reports (`/internal/task-status`). One
//! definition for the dispatcher that sends them, the agent that runs them and the Raft command
//! that records the reports.

use crate::registry::RegistryAuth;
use crate::swarm::{PortConfig, Task, TaskStatus};
use serde::{Deserialize, Serialize};

/// One task for a node, with what it needs from the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// `task.spec.container_spec` is the container; `task.desired_state` is what the managers
    /// want; `task.status` is the last observed status they know of.
    pub task: Task,
    /// Used in the container's name and labels.
    pub service_name: String,
    /// Data of the configs `task.spec.container_spec.configs` references, matched by ID.
    pub configs: Vec<FileData>,
    /// Plaintext data of the referenced secrets, matched by ID; sent only for tasks that are
    /// to run.
    pub secrets: Vec<FileData>,
    /// The service's published ports; those in `host` mode are bound on the node.
    #[serde(default)]
    pub ports: Vec<PortConfig>,
    /// The service's registry credentials (`--with-registry-auth`), for pulling its image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth: Option<RegistryAuth>,
}

/// The content of a config or secret. `Debug` never shows the data: it may be a secret's.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileData {
    pub id: String,
    pub name: String,
    #[serde(with = "crate::bytes_b64")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for FileData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileData")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("data", &format_args!("<{} bytes>", self.data.len()))
            .finish()
    }
}

/// One task's observed status, from the agent that runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub id: String,
    pub status: TaskStatus,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_data_travels_as_base64_and_never_shows_in_debug() {
        let f = FileData {
            id: "c1".into(),
            name: "db-password".into(),
            data: b"s3cr3t".to_vec(),
        };
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            json,
            r#"{"id":"c1","name":"db-password","data":"czNjcjN0"}"#
        );
        assert_eq!(serde_json::from_str::<FileData>(&json).unwrap(), f);
        assert!(!format!("{f:?}").contains("s3cr3t"));
        assert!(!format!("{f:?}").contains("czNjcjN0"));
    }

    #[test]
    fn an_assignment_without_ports_or_credentials_decodes() {
        let a: Assignment = serde_json::from_str(
            r#"{"task":{"ID":"t1"},"service_name":"web","configs":[],"secrets":[]}"#,
        )
        .unwrap();
        assert_eq!(a.task.id, "t1");
        assert!(a.ports.is_empty() && a.registry_auth.is_none());
        assert!(!serde_json::to_string(&a).unwrap().contains("registry_auth"));
    }
}
