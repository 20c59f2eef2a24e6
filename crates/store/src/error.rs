//! Why a command was refused. These errors are part of the replicated result of a command, so
//! they are serializable and their text is what the API returns to a user.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of objects the store keeps, as Docker names them in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    Cluster,
    Node,
    Service,
    Task,
    Network,
    Config,
    Secret,
    Stack,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cluster => "swarm",
            Kind::Node => "node",
            Kind::Service => "service",
            Kind::Task => "task",
            Kind::Network => "network",
            Kind::Config => "config",
            Kind::Secret => "secret",
            Kind::Stack => "stack",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist (HTTP 404).
    #[error("{kind} {key} not found")]
    NotFound { kind: Kind, key: String },
    /// An ID prefix matched more than one object (HTTP 400).
    #[error("{kind} {key} is ambiguous ({count} matches found)")]
    Ambiguous {
        kind: Kind,
        key: String,
        count: usize,
    },
    /// Another object of the same kind already has this name (HTTP 409).
    #[error("{kind} with name {name} already exists")]
    NameConflict { kind: Kind, name: String },
    /// The update was computed from an older version of the object (HTTP 409).
    #[error("update out of sequence: {kind} {id} is at version {current}, the update was made from version {sent}")]
    OutOfSequence {
        kind: Kind,
        id: String,
        current: u64,
        sent: u64,
    },
    /// The object is referenced by services and cannot be removed (HTTP 409).
    #[error("{kind} '{name}' is in use by the following service{}: {}", plural(.services), .services.join(", "))]
    InUse {
        kind: Kind,
        name: String,
        services: Vec<String>,
    },
    /// The request conflicts with the current state in another way (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The request is invalid against the current state (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// A stack deploy that was refused as a whole; nothing changed (HTTP 400).
    #[error("stack {stack} was not deployed, nothing changed:{}", lines(.problems))]
    StackRefused {
        stack: String,
        problems: Vec<String>,
    },
    /// A stack that could not be removed as a whole; nothing changed (HTTP 409).
    #[error("stack {stack} was not removed, nothing changed:{}", lines(.problems))]
    StackNotRemoved {
        stack: String,
        problems: Vec<String>,
    },
    /// The cluster is not initialised yet (HTTP 503).
    #[error("the cluster is not initialised")]
    NoCluster,
}

fn lines(problems: &[String]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

fn plural(v: &[String]) -> &'static str {
    if v.len() == 1 {
        ""
    } else {
        "s"
    }
}
