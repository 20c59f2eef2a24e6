//! What the manager answers when it refuses a request. Each variant maps to one HTTP status
//! in the API layer; the text is what the user reads.

use shoal_store::StoreError;

pub const NOT_IN_SWARM: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
/// Docker's answer to every swarm call on a manager that restarted with autolock on.
pub const SWARM_LOCKED: &str = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it.";
/// Docker's answer to `swarm leave` without `--force` on a locked manager.
pub const LEAVE_LOCKED: &str = "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message.";
pub const ALREADY_IN_SWARM: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 409
    #[error("{0}")]
    Conflict(String),
    /// 400
    #[error("{0}")]
    Invalid(String),
    /// 503: not part of a swarm, not a manager, no leader right now.
    #[error("{0}")]
    Unavailable(String),
    /// 401: a wrong unlock key.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: e.g. a wrong join token.
    #[error("{0}")]
    Forbidden(String),
    /// 500: a fault of ours or of the machine (disk), never of the request.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        ApiError::Invalid(msg.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let msg = e.to_string();
        match e {
            StoreError::NotFound { .. } => ApiError::NotFound(msg),
            StoreError::Ambiguous { .. }
            | StoreError::Invalid(_)
            | StoreError::StackRefused { .. } => ApiError::Invalid(msg),
            StoreError::NameConflict { .. }
            | StoreError::OutOfSequence { .. }
            | StoreError::InUse { .. }
            | StoreError::StackNotRemoved { .. }
            | StoreError::Conflict(_) => ApiError::Conflict(msg),
            StoreError::NoCluster => ApiError::Unavailable(NOT_IN_SWARM.into()),
        }
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;
