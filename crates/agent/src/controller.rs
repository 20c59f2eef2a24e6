//! One task's controller: drives the task's observed state forward only, ASSIGNED → ACCEPTED →
//! PREPARING → READY → STARTING → RUNNING → COMPLETE | FAILED, or to REJECTED when it cannot run
//! and SHUTDOWN when the manager asks, reporting each step. It adopts a container the task
//! already has instead of creating a second one. It never restarts a container: a task runs at
//! most once, and the orchestrator replaces it.
//!
//! Every engine call that can last long (pull, wait for exit, retry pauses) races the
//! assignment changing, so a shutdown or removal is never held up behind it.

use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum};
use chrono::Utc;
use shoal_types::mesh::IngressPorts;
use shoal_types::registry::{ImageRef, RegistryAuth};
use shoal_types::swarm::{ContainerSpec, ContainerStatus, PortStatus, TaskState, TaskStatus};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::container::{self, LABEL_NODE_ID, LABEL_TASK_ID};
use crate::engine::EngineError;
use crate::files::TaskFiles;
use crate::health;
use crate::runtime::Runtime;
use crate::{Assignment, TaskReport};

/// What every controller of a node shares.
pub(crate) struct Context {
    /// The node's container runtime: its Docker Engine (a double in tests).
    pub engine: Arc<dyn Runtime>,
    pub files: TaskFiles,
    pub node_id: String,
    pub updates: mpsc::UnboundedSender<TaskReport>,
    /// Loopback ports of running tasks' ingress-mode ports, for the routing mesh.
    pub ingress: IngressPorts,
}

/// The latest assignment of the task; `None` once the task left the assigned set.
pub(crate) type Slot = watch::Receiver<Option<Arc<Assignment>>>;

/// Pauses between retries of an engine that does not answer: never a hot loop.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What happened while waiting on something long.
enum Interrupted {
    /// The assignment changed (desired state, or dropped): re-evaluate.
    Changed,
    /// The agent is shutting down.
    Closed,
}

pub(crate) struct Controller {
    ctx: Arc<Context>,
    task_id: String,
    slot: Slot,
    /// The last observed status known: the manager's at first, then ours.
    status: TaskStatus,
    /// The task's container, once created or adopted.
    container: Option<String>,
    /// Whether the container runs a health check (from its spec or its image).
    has_healthcheck: bool,
    /// The host ports the container got for the task's host-mode published ports.
    ports: PortStatus,
    retry: Duration,
}

impl Controller {
    pub fn new(ctx: Arc<Context>, slot: Slot) -> Option<Controller> {
        let first = slot.borrow().clone()?;
        Some(Controller {
            ctx,
            task_id: first.task.id.clone(),
            status: first.task.status.clone(),
            slot,
            container: None,
            has_healthcheck: false,
            ports: PortStatus::default(),
            retry: RETRY_MIN,
        })
    }

    pub async fn run(mut self) {
        if self.adopt().await.is_err() {
            return;
        }
        loop {
            let current = self.slot.borrow_and_update().clone();
            let Some(assignment) = current else {
                self.remove().await;
                return;
            };
            let desired = assignment.task.desired_state;
            let outcome = if desired >= TaskState::Shutdown {
                match self.shut_down(&assignment).await {
                    Ok(()) if desired >= TaskState::Remove => {
                        self.remove().await;
                        self.idle().await
                    }
                    Ok(()) => self.idle().await,
                    Err(i) => Err(i),
                }
            } else if self.status.state.is_terminal() {
                self.idle().await
            } else {
                self.step(&assignment).await
            };
            if let Err(Interrupted::Closed) = outcome {
                return;
            }
        }
    }

    /// Waits for the assignment to change.
    async fn idle(&mut self) -> Result<(), Interrupted> {
        match self.slot.changed().await {
            Ok(()) => Ok(()),
            Err(_) => Err(Interrupted::Closed),
        }
    }

    /// Runs `fut` unless the assignment changes first.
    async fn unless_changed<T>(
        slot: &mut Slot,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Interrupted> {
        tokio::select! {
            out = fut => Ok(out),
            changed = slot.changed() => Err(match changed {
                Ok(()) => Interrupted::Changed,
                Err(_) => Interrupted::Closed,
            }),
        }
    }

    /// Pauses before retrying an engine call, longer each time.
    async fn back_off(&mut self) -> Result<(), Interrupted> {
        let pause = self.retry;
        self.retry = (self.retry * 2).min(RETRY_MAX);
        Self::unless_changed(&mut self.slot, tokio::time::sleep(pause)).await
    }

    /// Sends a status if it moves the task forward.
    fn report(
        &mut self,
        state: TaskState,
        message: &str,
        err: String,
        container_status: Option<ContainerStatus>,
    ) {
        if state <= self.status.state {
            return;
        }
        if state > TaskState::Running {
            // A task that stopped is no backend of the routing mesh any more.
            self.ctx.ingress.remove(&self.task_id);
        }
        self.status = TaskStatus {
            timestamp: Utc::now(),
            state,
            message: message.to_string(),
            err,
            container_status: container_status.or_else(|| self.status.container_status.clone()),
            port_status: self.ports.clone(),
        };
        debug!(task = %self.task_id, state = %state, message, err = %self.status.err, "task status");
        // A dropped receiver only means nobody listens any more.
        let _ = self.ctx.updates.send(TaskReport {
            id: self.task_id.clone(),
            status: self.status.clone(),
        });
    }

    /// Finds a container the task already has and takes its state from it. An engine that does
    /// not answer is retried while the task is believed to be running (its container may well
    /// be); before that, preparing will report it.
    async fn adopt(&mut self) -> Result<(), Interrupted> {
        if self.status.state.is_terminal() {
            return Ok(());
        }
        let found = loop {
            match self.find_container().await {
                Ok(found) => break found,
                Err(e) if self.status.state >= TaskState::Running => {
                    warn!(task = %self.task_id, error = %e, "cannot look for the task's container; retrying");
                    self.back_off().await?;
                }
                Err(_) => return Ok(()),
            }
        };
        self.retry = RETRY_MIN;
        let Some(id) = found else {
            if self.status.state >= TaskState::Running {
                self.report(
                    TaskState::Failed,
                    "started",
                    "task: its container no longer exists".into(),
                    None,
                );
            }
            return Ok(());
        };
        info!(task = %self.task_id, container = %id, "adopting the task's existing container");
        self.container = Some(id.clone());
        match self.ctx.engine.inspect_container(&id).await {
            Ok(inspect) => {
                self.has_healthcheck = health::has_healthcheck(&inspect);
                self.observe_ports(&inspect);
                self.observe(&inspect)
            }
            Err(e) => {
                warn!(task = %self.task_id, error = %e, "cannot inspect the adopted container")
            }
        }
        Ok(())
    }

    /// Notes the host ports the container was given (reported with every later status).
    fn observe_ports(&mut self, inspect: &ContainerInspectResponse) {
        let ports = self
            .slot
            .borrow()
            .as_ref()
            .map(|a| a.ports.clone())
            .unwrap_or_default();
        self.ports = crate::container::port_status(&ports, inspect);
        if !self.status.state.is_terminal() {
            let bound = crate::container::ingress_bindings(&ports, inspect);
            self.ctx.ingress.set(&self.task_id, bound);
        }
    }

    /// Reports what an inspected container says about the task: running, or exited.
    fn observe(&mut self, inspect: &ContainerInspectResponse) {
        let state = inspect.state.clone().unwrap_or_default();
        let cs = container_status(inspect);
        match state.status {
            Some(ContainerStateStatusEnum::RUNNING)
            | Some(ContainerStateStatusEnum::PAUSED)
            | Some(ContainerStateStatusEnum::RESTARTING) => {
                self.report(TaskState::Running, "started", String::new(), Some(cs));
            }
            Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::DEAD) => {
                self.report_exit(cs);
            }
            // Created but never started: starting it continues where the last agent stopped.
            _ => {}
        }
    }

    fn report_exit(&mut self, cs: ContainerStatus) {
        if cs.exit_code == 0 {
            self.report(TaskState::Complete, "finished", String::new(), Some(cs));
        } else {
            let err = format!("task: non-zero exit ({})", cs.exit_code);
            self.report(TaskState::Failed, "failed", err, Some(cs));
        }
    }

    /// The task's container, by its labels (its name may belong to a renamed service).
    async fn find_container(&self) -> Result<Option<String>, EngineError> {
        let labels = [
            format!("{LABEL_TASK_ID}={}", self.task_id),
            format!("{LABEL_NODE_ID}={}", self.ctx.node_id),
        ];
        let found = self.ctx.engine.list_containers(&labels).await?;
        Ok(found.into_iter().find_map(|c| c.id))
    }

    /// One step forward from the current state.
    async fn step(&mut self, assignment: &Assignment) -> Result<(), Interrupted> {
        match self.status.state {
            TaskState::New | TaskState::Pending | TaskState::Assigned => {
                self.report(TaskState::Accepted, "accepted", String::new(), None);
            }
            TaskState::Accepted => {
                self.report(TaskState::Preparing, "preparing", String::new(), None);
            }
            TaskState::Preparing => {
                if let Err(err) = self.prepare(assignment).await? {
                    self.report(TaskState::Rejected, "preparing", err, None);
                } else {
                    self.report(TaskState::Ready, "prepared", String::new(), None);
                }
            }
            TaskState::Ready | TaskState::Starting => {
                // A task the manager only wants READY (prepared, not started) waits here.
                if assignment.task.desired_state < TaskState::Running {
                    return self.idle().await;
                }
                self.report(TaskState::Starting, "starting", String::new(), None);
                if self.container.is_none() {
                    if let Err(err) = self.prepare(assignment).await? {
                        self.report(TaskState::Rejected, "starting", err, None);
                        return Ok(());
                    }
                }
                let cs = match self.start().await {
                    Ok(cs) => cs,
                    Err(e) => {
                        let err = format!("starting container failed: {e}");
                        self.report(TaskState::Rejected, "starting", err, None);
                        return Ok(());
                    }
                };
                if !self.has_healthcheck {
                    self.report(TaskState::Running, "started", String::new(), Some(cs));
                    return Ok(());
                }
                // With a health check, RUNNING means healthy.
                let engine = self.ctx.engine.clone();
                let health = Self::unless_changed(
                    &mut self.slot,
                    health::watch(engine.as_ref(), &cs.container_id, true),
                )
                .await?;
                match health {
                    Ok(health::Outcome::Healthy) => {
                        self.retry = RETRY_MIN;
                        let cs = self.current_status().await.unwrap_or(cs);
                        self.report(TaskState::Running, "started", String::new(), Some(cs));
                    }
                    Ok(health::Outcome::Unhealthy) => self.fail_unhealthy(assignment).await,
                    Ok(health::Outcome::Exited) => {
                        if let Some(cs) = self.current_status().await {
                            self.report_exit(cs);
                        }
                    }
                    Err(e) => {
                        warn!(task = %self.task_id, error = %e, "cannot watch the container's health; retrying");
                        return self.back_off().await;
                    }
                }
            }
            TaskState::Running => return self.wait().await,
            // Terminal states never get here.
            _ => return self.idle().await,
        }
        Ok(())
    }

    /// Image, files, container. The inner error is the task's `Err`.
    async fn prepare(
        &mut self,
        assignment: &Assignment,
    ) -> Result<Result<(), String>, Interrupted> {
        if self.container.is_some() {
            return Ok(Ok(()));
        }
        let Some(spec) = &assignment.task.spec.container_spec else {
            return Ok(Err(
                "task has no container spec: only container tasks can run here".into(),
            ));
        };
        if spec.image.is_empty() {
            return Ok(Err("task's container spec has no image".into()));
        }
        let image = match self
            .ensure_image(&spec.image, assignment.registry_auth.as_ref())
            .await?
        {
            Ok(image) => image,
            Err(err) => return Ok(Err(err)),
        };
        let run_spec;
        let spec = if image == spec.image {
            spec
        } else {
            run_spec = ContainerSpec {
                image,
                ..spec.clone()
            };
            &run_spec
        };
        let mounts = match self.ctx.files.write(
            &self.task_id,
            spec,
            &assignment.configs,
            &assignment.secrets,
        ) {
            Ok(mounts) => mounts,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let name = container::container_name(
            &assignment.task,
            &assignment.service_name,
            &self.ctx.node_id,
        );
        let mut networks = Vec::new();
        for a in &assignment.task.networks_attachments {
            match self.ctx.engine.ensure_network(&a.network).await {
                Ok(n) => networks.push(n),
                Err(e) => {
                    return Ok(Err(format!(
                        "network {} on this node's engine: {e}",
                        a.network.spec.name
                    )))
                }
            }
        }
        let labels = container::container_labels(assignment, &self.ctx.node_id, &name);
        let body = container::create_body(assignment, spec, labels, &mounts, &networks);
        let id = match self.ctx.engine.create_container(&name, body).await {
            Ok(id) => id,
            Err(e) => return Ok(Err(format!("creating container {name}: {e}"))),
        };
        info!(task = %self.task_id, container = %id, name = %name, "created the task's container");
        self.container = Some(id.clone());
        // The first network was joined at create; the engine (API 1.41) takes the others
        // one at a time.
        for (a, network) in assignment
            .task
            .networks_attachments
            .iter()
            .zip(&networks)
            .skip(1)
        {
            let settings = crate::networks::endpoint_settings(a);
            if let Err(e) = self
                .ctx
                .engine
                .connect_network(network, &id, settings)
                .await
            {
                return Ok(Err(format!(
                    "connecting container {name} to network {}: {e}",
                    a.network.spec.name
                )));
            }
        }
        Ok(Ok(()))
    }

    /// The local image first (the usual case, and the only one without a registry); else a
    /// pull, with the service's registry credentials. Answers the reference the container is
    /// created from: the spec's, or the image's ID for a pin of a local image's ID (see
    /// [`pinned_local_image`]).
    async fn ensure_image(
        &mut self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<Result<String, String>, Interrupted> {
        let engine = self.ctx.engine.clone();
        let missing = match engine.inspect_image(image).await {
            Ok(_) => return Ok(Ok(image.to_string())),
            Err(e @ EngineError::NotFound { .. }) => e,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if let Some(id) = pinned_local_image(engine.as_ref(), image).await {
            info!(task = %self.task_id, image, id, "running the pinned local image by its ID");
            return Ok(Ok(id));
        }
        info!(task = %self.task_id, image, "image not present locally; pulling it");
        match Self::unless_changed(&mut self.slot, engine.pull_image(image, auth)).await? {
            Ok(()) => Ok(Ok(image.to_string())),
            Err(pull) => {
                debug!(task = %self.task_id, image, error = %missing, "local image lookup");
                Ok(Err(format!(
                    "No such image: {} (pulling it failed: {pull})",
                    with_default_tag(image)
                )))
            }
        }
    }

    async fn start(&mut self) -> Result<ContainerStatus, EngineError> {
        let id = self.container.clone().unwrap_or_default();
        let inspect = self.ctx.engine.inspect_container(&id).await?;
        let running = inspect
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false);
        if !running {
            // The engine asks the node's IPAM for the task's addresses while it starts the
            // container: they are granted at once, whatever the network view says yet.
            let attachments = self
                .slot
                .borrow()
                .as_ref()
                .map(|a| a.task.networks_attachments.clone())
                .unwrap_or_default();
            let _pending = self.ctx.engine.hold_addresses(&attachments);
            self.ctx.engine.start_container(&id).await?;
        }
        let inspect = self.ctx.engine.inspect_container(&id).await?;
        self.has_healthcheck = health::has_healthcheck(&inspect);
        self.observe_ports(&inspect);
        Ok(container_status(&inspect))
    }

    /// Waits for the running container to exit, then reports how it ended.
    async fn wait(&mut self) -> Result<(), Interrupted> {
        let Some(id) = self.container.clone() else {
            self.report(
                TaskState::Failed,
                "started",
                "task: its container no longer exists".into(),
                None,
            );
            return Ok(());
        };
        let engine = self.ctx.engine.clone();
        if self.has_healthcheck {
            let assignment = self.slot.borrow().clone();
            match Self::unless_changed(&mut self.slot, health::watch(engine.as_ref(), &id, false))
                .await?
            {
                Ok(health::Outcome::Unhealthy) => {
                    if let Some(a) = assignment {
                        self.fail_unhealthy(&a).await;
                    }
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    warn!(task = %self.task_id, container = %id, error = %e, "watching the container failed; retrying");
                    return self.back_off().await;
                }
            }
        } else if let Err(e) =
            Self::unless_changed(&mut self.slot, engine.wait_container(&id)).await?
        {
            if !e.is_not_found() {
                warn!(task = %self.task_id, container = %id, error = %e, "waiting for the container failed; retrying");
                return self.back_off().await;
            }
        }
        match engine.inspect_container(&id).await {
            Ok(inspect) => {
                self.retry = RETRY_MIN;
                let running = inspect
                    .state
                    .as_ref()
                    .and_then(|s| s.running)
                    .unwrap_or(false);
                if !running {
                    self.report_exit(container_status(&inspect));
                }
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                self.report(
                    TaskState::Failed,
                    "started",
                    format!("task: container {id} was removed"),
                    None,
                );
                Ok(())
            }
            Err(e) => {
                warn!(task = %self.task_id, container = %id, error = %e, "cannot inspect the container; retrying");
                self.back_off().await
            }
        }
    }

    /// The container turned unhealthy: stop it, as Swarm does, and fail the task.
    async fn fail_unhealthy(&mut self, assignment: &Assignment) {
        if let Some(id) = self.container.clone() {
            let grace = assignment
                .task
                .spec
                .container_spec
                .as_ref()
                .map(container::stop_grace);
            if let Err(e) = self.ctx.engine.stop_container(&id, grace).await {
                warn!(task = %self.task_id, container = %id, error = %e, "cannot stop the unhealthy container");
            }
        }
        let cs = self.current_status().await;
        self.report(TaskState::Failed, "failed", health::UNHEALTHY.into(), cs);
    }

    async fn current_status(&self) -> Option<ContainerStatus> {
        let id = self.container.as_deref()?;
        let inspect = self.ctx.engine.inspect_container(id).await.ok()?;
        Some(container_status(&inspect))
    }

    /// Stops the container (its stop signal, then a kill after the grace period) and reports
    /// SHUTDOWN. A task already finished stays as it ended.
    async fn shut_down(&mut self, assignment: &Assignment) -> Result<(), Interrupted> {
        if self.status.state.is_terminal() {
            return Ok(());
        }
        let mut cs = None;
        if let Some(id) = self.container.clone() {
            let grace = assignment
                .task
                .spec
                .container_spec
                .as_ref()
                .map(container::stop_grace);
            let engine = self.ctx.engine.clone();
            match Self::unless_changed(&mut self.slot, engine.stop_container(&id, grace)).await? {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    warn!(task = %self.task_id, container = %id, error = %e, "stopping the container failed; retrying");
                    self.back_off().await?;
                    // The caller re-evaluates and tries again.
                    return Err(Interrupted::Changed);
                }
            }
            self.retry = RETRY_MIN;
            if let Ok(inspect) = engine.inspect_container(&id).await {
                cs = Some(container_status(&inspect));
            }
        }
        self.report(TaskState::Shutdown, "shutdown", String::new(), cs);
        Ok(())
    }

    /// Stops and removes the task's containers and files. Failures are left to the worker's
    /// sweep, which removes whatever belongs to no assigned task.
    async fn remove(&mut self) {
        self.ctx.ingress.remove(&self.task_id);
        let ids = match self.find_container_ids().await {
            Ok(ids) => ids,
            Err(e) => {
                warn!(task = %self.task_id, error = %e, "cannot list the task's containers to remove them");
                self.container.clone().into_iter().collect()
            }
        };
        let grace = self.grace();
        for id in ids {
            remove_container(&self.ctx, &id, grace).await;
        }
        self.container = None;
        if let Err(e) = self.ctx.files.remove(&self.task_id) {
            warn!(task = %self.task_id, error = %e, "cannot remove the task's files");
        }
    }

    fn grace(&self) -> Option<Duration> {
        self.slot
            .borrow()
            .as_ref()
            .and_then(|a| a.task.spec.container_spec.as_ref())
            .map(container::stop_grace)
    }

    async fn find_container_ids(&self) -> Result<Vec<String>, EngineError> {
        let labels = [
            format!("{LABEL_TASK_ID}={}", self.task_id),
            format!("{LABEL_NODE_ID}={}", self.ctx.node_id),
        ];
        let found = self.ctx.engine.list_containers(&labels).await?;
        Ok(found.into_iter().filter_map(|c| c.id).collect())
    }
}

/// Stops a container gracefully (after `grace`, or its own stop timeout), then removes it
/// with its anonymous volumes.
pub(crate) async fn remove_container(ctx: &Context, id: &str, grace: Option<Duration>) {
    if let Err(e) = ctx.engine.stop_container(id, grace).await {
        if !e.is_not_found() {
            debug!(container = %id, error = %e, "stopping before removal failed");
        }
    }
    match ctx.engine.remove_container(id).await {
        Ok(()) => info!(container = %id, "removed container"),
        Err(e) => warn!(container = %id, error = %e, "cannot remove container"),
    }
}

fn container_status(inspect: &ContainerInspectResponse) -> ContainerStatus {
    let state = inspect.state.as_ref();
    ContainerStatus {
        container_id: inspect.id.clone().unwrap_or_default(),
        pid: state.and_then(|s| s.pid).unwrap_or(0),
        exit_code: state.and_then(|s| s.exit_code).unwrap_or(0),
    }
}

/// `name` → `name:latest`, as the engine spells a reference without tag or digest.
fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// A pin `name[:tag]@sha256:D` that the engine does not resolve by name, of an image the
/// engine has with ID `sha256:D` and tagged with that repository: that image's ID. The
/// managers pin locally built images to their ID (`GET /distribution`), which engines do not
/// resolve as a name; running the image of that ID runs exactly the pinned image. An image of
/// that ID under other names only is not taken for it.
async fn pinned_local_image(engine: &dyn Runtime, image: &str) -> Option<String> {
    let reference = ImageRef::parse(image).ok()?;
    let id = reference.digest.clone()?;
    let inspect = engine.inspect_image(&id).await.ok()?;
    if inspect.id.as_deref() != Some(id.as_str()) {
        return None;
    }
    let mut names = inspect
        .repo_tags
        .iter()
        .flatten()
        .chain(inspect.repo_digests.iter().flatten());
    names.any(|n| reference.is_repository_of(n)).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untagged_image_is_named_with_latest() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("host:5000/a/b"), "host:5000/a/b:latest");
        assert_eq!(with_default_tag("busybox:1"), "busybox:1");
    }
}
