//! What the agent needs of a container runtime, as a trait: the controllers and the worker
//! drive tasks through [`Runtime`], so the task state machine can be exercised without an
//! engine. [`Engine`] (the local Docker Engine) is the runtime of every node; the tests of this
//! crate also use a double that keeps containers in memory (`runtime::fake`).

use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, EndpointSettings, ImageInspect,
};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use shoal_types::registry::RegistryAuth;
use shoal_types::swarm::{Network, NetworkAttachment};

use crate::engine::{Engine, EngineError};
use crate::networks::PendingHold;

/// A container runtime as the agent uses it. Every call says which object failed and why in
/// its [`EngineError`]; `NotFound` is for an object that does not exist.
pub trait Runtime: Send + Sync {
    /// The image as the runtime has it.
    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageInspect, EngineError>>;
    /// Pulls one image reference, with the service's registry credentials if any.
    fn pull_image<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
    /// Containers (running or not) carrying every `key=value` label given.
    fn list_containers<'a>(
        &'a self,
        labels: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ContainerSummary>, EngineError>>;
    /// Creates a container and returns its ID.
    fn create_container<'a>(
        &'a self,
        name: &'a str,
        body: ContainerCreateBody,
    ) -> BoxFuture<'a, Result<String, EngineError>>;
    /// Makes sure the runtime has the local network for cluster network `n`; its name.
    fn ensure_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<String, EngineError>>;
    /// Connects a created container to one more network, with its settings.
    fn connect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        settings: EndpointSettings,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;
    fn inspect_container<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ContainerInspectResponse, EngineError>>;
    /// Stops the container (its stop signal, then a kill after `grace`); not an error when it
    /// is not running.
    fn stop_container<'a>(
        &'a self,
        id: &'a str,
        grace: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), EngineError>>;
    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;
    /// Returns once the container is not running.
    fn wait_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>>;
    /// The container's health changes and exit from now on, as event actions.
    fn container_events(
        &self,
        id: &str,
    ) -> Result<BoxStream<'static, Result<String, EngineError>>, EngineError>;
    /// Marks the task's addresses as about to be taken by its container, until dropped.
    fn hold_addresses(&self, attachments: &[NetworkAttachment]) -> PendingHold;
}

impl Runtime for Engine {
    fn inspect_image<'a>(
        &'a self,
        image: &'a str,
    ) -> BoxFuture<'a, Result<ImageInspect, EngineError>> {
        Box::pin(Engine::inspect_image(self, image))
    }

    fn pull_image<'a>(
        &'a self,
        image: &'a str,
        auth: Option<&'a RegistryAuth>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::pull_image(self, image, auth))
    }

    fn list_containers<'a>(
        &'a self,
        labels: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<ContainerSummary>, EngineError>> {
        Box::pin(Engine::list_containers(self, labels))
    }

    fn create_container<'a>(
        &'a self,
        name: &'a str,
        body: ContainerCreateBody,
    ) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(Engine::create_container(self, name, body))
    }

    fn ensure_network<'a>(&'a self, n: &'a Network) -> BoxFuture<'a, Result<String, EngineError>> {
        Box::pin(Engine::ensure_network(self, n))
    }

    fn connect_network<'a>(
        &'a self,
        network: &'a str,
        container: &'a str,
        settings: EndpointSettings,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::connect_network(self, network, container, settings))
    }

    fn start_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::start_container(self, id))
    }

    fn inspect_container<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<ContainerInspectResponse, EngineError>> {
        Box::pin(Engine::inspect_container(self, id))
    }

    fn stop_container<'a>(
        &'a self,
        id: &'a str,
        grace: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::stop_container(self, id, grace))
    }

    fn remove_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::remove_container(self, id))
    }

    fn wait_container<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(Engine::wait_container(self, id))
    }

    fn container_events(
        &self,
        id: &str,
    ) -> Result<BoxStream<'static, Result<String, EngineError>>, EngineError> {
        Engine::container_events(self, id)
    }

    fn hold_addresses(&self, attachments: &[NetworkAttachment]) -> PendingHold {
        Engine::hold_addresses(self, attachments)
    }
}

#[cfg(test)]
pub(crate) mod fake;

/// The task state machine on the in-memory runtime: every path a task takes, without an engine.
#[cfg(test)]
mod tests {
    use super::fake::FakeRuntime;
    use crate::{Agent, AgentConfig, Assignment, TaskReport};
    use shoal_types::mesh::IngressPorts;
    use shoal_types::swarm::{ContainerSpec, Task, TaskSpec, TaskState, TaskStatus};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::mpsc::UnboundedReceiver;

    struct Node {
        agent: Agent,
        reports: UnboundedReceiver<TaskReport>,
        runtime: Arc<FakeRuntime>,
        _dirs: (tempfile::TempDir, tempfile::TempDir),
    }

    fn node(runtime: FakeRuntime) -> Node {
        let (state, secrets) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let cfg = AgentConfig {
            node_id: "n1".into(),
            engine_socket: "/nonexistent/docker.sock".into(),
            state_dir: state.path().to_path_buf(),
            secrets_dir: secrets.path().to_path_buf(),
            network_driver: "shoal".into(),
            pending_addresses: Default::default(),
        };
        let runtime = Arc::new(runtime);
        let (agent, reports) = Agent::start_on(runtime.clone(), cfg, IngressPorts::default());
        Node {
            agent,
            reports,
            runtime,
            _dirs: (state, secrets),
        }
    }

    fn task(id: &str, image: &str, desired: TaskState) -> Assignment {
        Assignment {
            task: Task {
                id: id.into(),
                service_id: "svc-web".into(),
                slot: 1,
                node_id: "n1".into(),
                desired_state: desired,
                status: TaskStatus {
                    state: TaskState::Assigned,
                    ..Default::default()
                },
                spec: TaskSpec {
                    container_spec: Some(ContainerSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            },
            service_name: "web".into(),
            configs: vec![],
            secrets: vec![],
            ports: vec![],
            registry_auth: None,
        }
    }

    impl Node {
        /// The reports of `id` until one reaches `state`; panics after a while.
        async fn until(&mut self, id: &str, state: TaskState) -> Vec<TaskStatus> {
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let r = tokio::time::timeout_at(deadline, self.reports.recv())
                    .await
                    .unwrap_or_else(|_| panic!("{id} never reached {state:?}: {seen:#?}"))
                    .expect("reports");
                if r.id != id {
                    continue;
                }
                let done = r.status.state == state;
                seen.push(r.status);
                if done {
                    return seen;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_task_runs_through_every_state_and_a_zero_exit_completes_it() {
        let mut n = node(FakeRuntime::default().with_image("web:1"));
        n.agent
            .assign(vec![task("t1", "web:1", TaskState::Running)])
            .await;
        let seen = n.until("t1", TaskState::Running).await;
        let states: Vec<TaskState> = seen.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                TaskState::Accepted,
                TaskState::Preparing,
                TaskState::Ready,
                TaskState::Starting,
                TaskState::Running
            ]
        );
        let running = seen.last().unwrap();
        let cs = running.container_status.as_ref().unwrap();
        assert_eq!(cs.pid, 4242);
        let c = &n.runtime.containers()[0];
        assert_eq!(c.name, "web.1.t1");
        assert_eq!(c.labels["com.docker.swarm.task.id"], "t1");
        // The process ends with 0: COMPLETE, and the container stays until the task goes.
        n.runtime.exit(&cs.container_id, 0);
        n.until("t1", TaskState::Complete).await;
        assert_eq!(n.runtime.containers().len(), 1);
        n.agent.assign(vec![]).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !n.runtime.containers().is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{:?}",
                n.runtime.calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        n.agent.shutdown().await;
    }

    #[tokio::test]
    async fn a_non_zero_exit_fails_the_task_with_its_code() {
        let mut n = node(FakeRuntime::default().with_exit("job:1", 3));
        n.agent
            .assign(vec![task("t2", "job:1", TaskState::Running)])
            .await;
        let seen = n.until("t2", TaskState::Failed).await;
        assert_eq!(seen.last().unwrap().err, "task: non-zero exit (3)");
        n.agent.shutdown().await;
    }

    #[tokio::test]
    async fn a_missing_image_is_pulled_and_one_that_cannot_be_is_rejected() {
        let mut n = node(FakeRuntime::default().with_pullable("web:2"));
        n.agent
            .assign(vec![
                task("t3", "web:2", TaskState::Running),
                task("t4", "ghost:9", TaskState::Running),
            ])
            .await;
        n.until("t3", TaskState::Running).await;
        let seen = n.until("t4", TaskState::Rejected).await;
        let err = &seen.last().unwrap().err;
        assert!(err.contains("No such image: ghost:9"), "{err}");
        assert!(err.contains("pull access denied"), "{err}");
        let calls = n.runtime.calls();
        assert!(calls.contains(&"pull web:2".to_string()), "{calls:?}");
        n.agent.shutdown().await;
    }

    #[tokio::test]
    async fn with_a_health_check_running_waits_for_healthy_and_unhealthy_fails_the_task() {
        use bollard::models::HealthStatusEnum;
        let mut n = node(FakeRuntime::default().with_healthcheck("api:1"));
        n.agent
            .assign(vec![task("t6", "api:1", TaskState::Running)])
            .await;
        let seen = n.until("t6", TaskState::Starting).await;
        assert_eq!(seen.last().unwrap().state, TaskState::Starting);
        // Started but not healthy yet: no RUNNING.
        let early = tokio::time::timeout(Duration::from_millis(300), n.reports.recv()).await;
        assert!(early.is_err(), "{early:?}");
        let id = n.runtime.container_ids().remove(0);
        n.runtime.set_health(&id, HealthStatusEnum::HEALTHY);
        n.until("t6", TaskState::Running).await;
        // Unhealthy later: the container is stopped and the task FAILED, as Swarm does.
        n.runtime.set_health(&id, HealthStatusEnum::UNHEALTHY);
        let seen = n.until("t6", TaskState::Failed).await;
        assert_eq!(seen.last().unwrap().err, "container unhealthy");
        assert!(!n.runtime.containers()[0].running);
        assert!(n.runtime.calls().contains(&format!("stop {id}")));
        n.agent.shutdown().await;
    }

    #[tokio::test]
    async fn a_task_desired_shutdown_stops_its_container() {
        let mut n = node(FakeRuntime::default().with_image("web:1"));
        n.agent
            .assign(vec![task("t5", "web:1", TaskState::Running)])
            .await;
        n.until("t5", TaskState::Running).await;
        n.agent
            .assign(vec![task("t5", "web:1", TaskState::Shutdown)])
            .await;
        n.until("t5", TaskState::Shutdown).await;
        let c = &n.runtime.containers()[0];
        assert!(!c.running);
        assert!(n.runtime.calls().iter().any(|c| c.starts_with("stop ")));
        n.agent.shutdown().await;
    }
}
