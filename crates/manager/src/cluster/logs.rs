//! Where the logs of a service or a task are: which tasks a `logs` request covers, on which
//! nodes they ran, and the call that streams one task's log from the node that ran it.
//!
//! The manager that serves the request merges the streams (the API crate, which also does the
//! HTTP); the nodes read their engines (the agent crate). Nothing here reads an engine or
//! shapes what the client sees.

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shoal_raft::transport::ByteStream;
use shoal_types::swarm::TaskState;

/// The node's route that streams the log of one of its tasks.
pub const PATH_LOGS: &str = "/internal/logs";

/// How long a node may take to start answering a log request.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a `logs` request names: a service or a task, by ID, name or ID prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSelector {
    Service(String),
    Task(String),
}

/// One task whose log a request covers, and where it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub task_id: String,
    pub service_id: String,
    pub node_id: String,
    /// The node-to-node address of the task's node; `None` when it is this node.
    pub addr: Option<String>,
}

/// The tasks a request covers at one moment.
#[derive(Debug, Clone)]
pub struct LogPlan {
    /// The selector with full IDs, for planning again when tasks change (`follow`).
    pub selector: LogSelector,
    /// The container has a TTY: its log is one raw stream, not stdout and stderr.
    pub tty: bool,
    pub sources: Vec<LogSource>,
    /// Why some tasks cannot be read, in Swarm's words ("node X is not available").
    pub problems: Vec<String>,
}

/// `/internal/logs`: a manager asks the node that ran a task for the task's log. The answer
/// is Docker's multiplexed stream; each frame holds one line as the engine gives it with
/// timestamps (`TIMESTAMP SP message`), and a frame of stream 3 an error that ended it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogsReq {
    /// The node the manager means; another node refuses the request.
    pub node_id: String,
    pub task_id: String,
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tail: Option<u64>,
}

impl Manager {
    /// The tasks whose logs `selector` covers: a service's tasks that were started and have a
    /// node (Swarm leaves out tasks that have not run yet), or the one task named. An unknown
    /// service or task is Docker's 404 ("service X not found").
    pub fn log_plan(&self, selector: &LogSelector) -> Result<LogPlan> {
        let state = self.replica().read();
        let (selector, tty, tasks) = match selector {
            LogSelector::Service(key) => {
                let s = state.services.resolve(key)?;
                let tty = s
                    .spec
                    .task_template
                    .container_spec
                    .as_ref()
                    .is_some_and(|c| c.tty);
                let mut tasks: Vec<&shoal_types::swarm::Task> = state
                    .tasks
                    .iter()
                    .filter(|t| t.service_id == s.id && t.status.state >= TaskState::Running)
                    .collect();
                tasks.sort_by_key(|t| (t.slot, t.created_at, t.id.clone()));
                (LogSelector::Service(s.id.clone()), tty, tasks)
            }
            LogSelector::Task(key) => {
                let t = state.tasks.resolve(key)?;
                let tty = t.spec.container_spec.as_ref().is_some_and(|c| c.tty);
                (LogSelector::Task(t.id.clone()), tty, vec![t])
            }
        };
        let mut sources = Vec::new();
        let mut problems = Vec::new();
        for t in tasks {
            if t.node_id.is_empty() {
                problems.push(format!("task {} has not been scheduled", t.id));
                continue;
            }
            let down = state
                .nodes
                .get(&t.node_id)
                .is_none_or(|n| n.status.state == NodeState::Down);
            let addr = if t.node_id == self.identity.node_id {
                None
            } else if down {
                // Known to be gone: no need to wait for a connection to fail.
                problems.push(not_available(&t.node_id));
                continue;
            } else {
                match state.members.get(&t.node_id) {
                    Some(m) => Some(m.addr.clone()),
                    None => {
                        problems.push(not_available(&t.node_id));
                        continue;
                    }
                }
            };
            sources.push(LogSource {
                task_id: t.id.clone(),
                service_id: t.service_id.clone(),
                node_id: t.node_id.clone(),
                addr,
            });
        }
        Ok(LogPlan {
            selector,
            tty,
            sources,
            problems,
        })
    }

    /// Opens the log of a task that ran on another node. The node answers 404 when the task
    /// has no container (any more); a node that does not answer is "not available", as Swarm
    /// says it.
    pub async fn node_logs(&self, source: &LogSource, req: &LogsReq) -> Result<ByteStream> {
        let Some(addr) = source.addr.as_deref() else {
            return Err(ApiError::Internal(format!(
                "task {} ran on this node: read its log from the local engine",
                source.task_id
            )));
        };
        let bearer = self.keys.data_key.node_call_credential(&source.node_id);
        self.transport
            .post_stream(addr, PATH_LOGS, req, Some(&bearer), OPEN_TIMEOUT)
            .await
            .map_err(|e| match e {
                TransportError::Remote { .. } => from_transport(e),
                other => {
                    tracing::warn!("logs of task {}: {other}", source.task_id);
                    ApiError::Unavailable(not_available(&source.node_id))
                }
            })
    }
}

fn not_available(node_id: &str) -> String {
    format!("node {node_id} is not available")
}
