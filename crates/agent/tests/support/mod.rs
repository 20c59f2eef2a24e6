//! Shared fixtures of the agent's integration tests: the real local Docker Engine, a tiny test
//! image built once (`shoal-test/busybox:latest`, FROM scratch with a static busybox), and a
//! [`Node`] that runs an agent under a node ID of its own, so tests can run in parallel and
//! clean up only their own containers.

#![allow(dead_code)]

pub mod registry;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use bollard::{ClientVersion, Docker};
use futures::StreamExt;
use shoal_agent::{Agent, AgentConfig, Assignment, TaskReport};
use shoal_types::swarm::{ContainerSpec, Task, TaskSpec, TaskState, TaskStatus};
use tokio::sync::mpsc::UnboundedReceiver;

pub const IMAGE: &str = "shoal-test/busybox:latest";
pub const SOCKET: &str = "/var/run/docker.sock";

/// How long a task may take to reach a state before a test gives up.
pub const TIMEOUT: Duration = Duration::from_secs(60);

pub fn docker() -> Docker {
    Docker::connect_with_unix(
        SOCKET,
        120,
        &ClientVersion {
            major_version: 1,
            minor_version: 41,
        },
    )
    .unwrap_or_else(|e| panic!("these tests need the Docker Engine at {SOCKET}: {e}"))
}

/// Fails the test, saying so, when dockerd does not answer.
pub async fn require_engine() -> Docker {
    let docker = docker();
    if let Err(e) = docker.ping().await {
        panic!(
            "the Docker Engine at {SOCKET} is not reachable ({e}); these tests run tasks on a \
             real dockerd: start it (e.g. `dockerd &`) and run them again"
        );
    }
    docker
}

/// Builds the test image unless the engine has it, with the project's script (which the
/// other crates' tests and `.ci/run` use too; it serializes concurrent builds).
pub fn ensure_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-images.sh");
        let out = Command::new(script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            out.status.success(),
            "building {IMAGE} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// An agent under a node ID of its own, with its own state and secrets directories. Dropping
/// it removes every container labelled with its node ID.
pub struct Node {
    pub node_id: String,
    pub cfg: AgentConfig,
    pub agent: Agent,
    pub updates: UnboundedReceiver<TaskReport>,
    pub docker: Docker,
    /// Every status received, per task.
    pub seen: BTreeMap<String, Vec<TaskStatus>>,
    _state: tempfile::TempDir,
    _secrets: tempfile::TempDir,
}

impl Node {
    pub async fn start(test: &str) -> Node {
        // The script starts the engine when none runs, then builds the image.
        ensure_image();
        let docker = require_engine().await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let node_id = format!("test-{test}-{}-{nanos}", std::process::id());
        let state = tempfile::tempdir().expect("state dir");
        // Secrets belong on tmpfs, as in production.
        let secrets = tempfile::Builder::new()
            .prefix("shoal-test-secrets-")
            .tempdir_in(shm())
            .expect("secrets dir");
        let cfg = AgentConfig {
            node_id: node_id.clone(),
            engine_socket: PathBuf::from(SOCKET),
            state_dir: state.path().to_path_buf(),
            secrets_dir: secrets.path().to_path_buf(),
            network_driver: shoal_agent::networks::DRIVER.to_string(),
            pending_addresses: Default::default(),
        };
        let (agent, updates) = Agent::start(cfg.clone());
        Node {
            node_id,
            cfg,
            agent,
            updates,
            docker,
            seen: BTreeMap::new(),
            _state: state,
            _secrets: secrets,
        }
    }

    /// Shuts the agent down (containers keep running) and starts a new one on the same node.
    pub async fn restart_agent(&mut self) {
        self.agent.shutdown().await;
        let (agent, updates) = Agent::start(self.cfg.clone());
        self.agent = agent;
        self.updates = updates;
    }

    /// A task of service `service` in `slot`, running `args` in the test image.
    pub fn task(&self, service: &str, slot: i64, args: &[&str]) -> Assignment {
        assignment(&self.node_id, service, slot, args)
    }

    /// Receives statuses until `task_id`'s satisfies `done`; panics with all seen on timeout.
    pub async fn wait_for(
        &mut self,
        task_id: &str,
        what: &str,
        done: impl Fn(&TaskStatus) -> bool,
    ) -> TaskStatus {
        if let Some(s) = self
            .seen
            .get(task_id)
            .and_then(|v| v.iter().find(|s| done(s)))
        {
            return s.clone();
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.updates.recv()).await;
            match next {
                Ok(Some(update)) => {
                    let hit = update.id == task_id && done(&update.status);
                    self.seen
                        .entry(update.id.clone())
                        .or_default()
                        .push(update.status.clone());
                    if hit {
                        return update.status;
                    }
                }
                Ok(None) => panic!("the agent's status channel closed while waiting for {what}"),
                Err(_) => panic!(
                    "task {task_id} did not reach {what} within {TIMEOUT:?}; seen: {:#?}",
                    self.seen.get(task_id)
                ),
            }
        }
    }

    pub async fn wait_for_state(&mut self, task_id: &str, state: TaskState) -> TaskStatus {
        self.wait_for(task_id, state.as_str(), |s| s.state == state)
            .await
    }

    /// Collects statuses that arrive within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<TaskReport> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(update)) = tokio::time::timeout_at(deadline, self.updates.recv()).await {
            self.seen
                .entry(update.id.clone())
                .or_default()
                .push(update.status.clone());
            out.push(update);
        }
        out
    }

    /// This node's containers, running or not.
    pub async fn containers(&self) -> Vec<ContainerSummary> {
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("com.docker.swarm.node.id={}", self.node_id)],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .expect("list containers")
    }

    /// Polls this node's containers until `done` holds; panics with them on timeout.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[ContainerSummary]) -> bool,
    ) -> Vec<ContainerSummary> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let containers = self.containers().await;
            if done(&containers) {
                return containers;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {TIMEOUT:?}; containers: {containers:#?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn inspect(&self, id: &str) -> ContainerInspectResponse {
        self.docker
            .inspect_container(id, None)
            .await
            .unwrap_or_else(|e| panic!("inspect container {id}: {e}"))
    }

    /// Stdout and stderr of a container, as one string.
    pub async fn logs(&self, id: &str) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let mut out = String::new();
        let mut stream = self.docker.logs(id, Some(options));
        while let Some(chunk) = stream.next().await {
            out.push_str(&chunk.expect("read logs").to_string());
        }
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Synchronous on purpose: runs even when a test panicked inside the runtime.
        let filter = format!("label=com.docker.swarm.node.id={}", self.node_id);
        let Ok(out) = Command::new("docker")
            .args(["ps", "-aq", "--filter", &filter])
            .output()
        else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v"])
                .args(&ids)
                .output();
        }
    }
}

/// Polls `done` until it holds; panics naming `what` on timeout.
pub async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Where tmpfs is: `/dev/shm` on Linux.
fn shm() -> &'static Path {
    Path::new("/dev/shm")
}

/// A task assigned to `node_id`, desired RUNNING, observed ASSIGNED, as the manager sends it.
pub fn assignment(node_id: &str, service: &str, slot: i64, args: &[&str]) -> Assignment {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let id = format!("task{nanos:x}");
    Assignment {
        task: Task {
            id,
            service_id: format!("svc-{service}"),
            slot,
            node_id: node_id.to_string(),
            desired_state: TaskState::Running,
            status: TaskStatus {
                state: TaskState::Assigned,
                message: "scheduler assigned task to node".into(),
                ..Default::default()
            },
            spec: TaskSpec {
                container_spec: Some(ContainerSpec {
                    image: IMAGE.into(),
                    args: args.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
        service_name: service.to_string(),
        configs: vec![],
        secrets: vec![],
        ports: vec![],
        registry_auth: None,
    }
}
