//! Tasks between managers and nodes: the leader's orchestration loop (orchestrators and
//! scheduler), the dispatcher that hands each node its tasks with the configs and secrets
//! they use, and the node's side of both calls.

use super::*;
use crate::internal::{
    AssignmentsReq, AssignmentsResp, TaskStatusReq, PATH_ASSIGNMENTS, PATH_TASK_STATUS,
};
use crate::{orchestrator, scheduler};
use chrono::Utc;
use sha2::{Digest, Sha256};
use shoal_store::{Command, Kind};
use shoal_types::dispatch::{Assignment, FileData, TaskReport};
use shoal_types::swarm::TaskState;

/// How often the leader looks again even when nothing changed (restart delays, update
/// delays): a fifth of the node heartbeat, at most a second.
fn tick(timing: &Timing) -> Duration {
    (timing.node_heartbeat / 5)
        .min(Duration::from_secs(1))
        .max(Duration::from_millis(50))
}

/// How long an assignments call waits for a change before it answers with the same set.
fn long_poll(timing: &Timing) -> Duration {
    (timing.node_heartbeat * 2).min(Duration::from_secs(10))
}

/// Changes the orchestrators and the scheduler look at (configs, secrets and networks do
/// not move tasks).
fn concerns_tasks(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Service | Kind::Task | Kind::Node | Kind::Cluster
    )
}

/// On the leader: runs the orchestrators and the scheduler whenever the state changed, and
/// proposes what they want.
pub(super) async fn orchestrate_loop(manager: std::sync::Weak<Manager>) {
    let (mut events, period) = match manager.upgrade() {
        Some(m) => (m.replica().subscribe(), tick(&m.timing)),
        None => return,
    };
    let mut last_run = Instant::now();
    // When to look again without news: the next tick, or sooner when something is due.
    let mut next = Instant::now() + period;
    loop {
        tokio::select! {
            r = events.recv() => {
                let mut relevant = match r {
                    Ok(e) => concerns_tasks(e.kind),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                };
                // Take everything that is already waiting: one pass covers it.
                loop {
                    match events.try_recv() {
                        Ok(e) => relevant |= concerns_tasks(e.kind),
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => relevant = true,
                        Err(_) => break,
                    }
                }
                if !relevant && last_run.elapsed() < period {
                    continue;
                }
            }
            _ = tokio::time::sleep_until(next) => {}
        }
        let Some(m) = manager.upgrade() else { return };
        last_run = Instant::now();
        next = last_run + period;
        if !m.raft.is_leader() {
            continue;
        }
        let cmds = {
            let state = m.replica().read();
            if state.cluster.is_none() {
                continue;
            }
            let now = Utc::now();
            let plan = orchestrator::reconcile(&state, now);
            if let Some(due) = plan.wake_at {
                let wait = (due - now).to_std().unwrap_or_default();
                next = next.min(Instant::now() + wait + Duration::from_millis(1));
            }
            plan.into_commands(&state)
        };
        let mut failed = false;
        for cmd in cmds {
            if let Err(e) = m.propose(cmd).await {
                tracing::debug!("orchestrator: {e}");
                failed = true;
            }
        }
        let updates = {
            let state = m.replica().read();
            scheduler::schedule(&state, Utc::now())
        };
        for updates in orchestrator::in_chunks(updates) {
            if let Err(e) = m.propose(Command::UpdateTasks { updates }).await {
                tracing::debug!("scheduler: {e}");
                failed = true;
            }
        }
        if failed {
            tokio::time::sleep(period).await;
        }
    }
}

impl Manager {
    /// The tasks of `node_id`, with what they need, and the digest of that set.
    pub(super) fn assignments(&self, node_id: &str) -> AssignmentsResp {
        let state = self.replica().read();
        let mut hasher = Sha256::new();
        let mut assignments = Vec::new();
        let mut tasks: Vec<&shoal_types::swarm::Task> = state
            .tasks
            .iter()
            .filter(|t| t.node_id == node_id && t.status.state >= TaskState::Assigned)
            .collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        let default_log_driver = state
            .cluster()
            .ok()
            .and_then(|c| c.info.spec.task_defaults.log_driver.clone())
            .filter(|d| !d.name.is_empty());
        for t in tasks {
            hasher.update(t.id.as_bytes());
            hasher.update(t.version.index.to_le_bytes());
            let runs =
                t.desired_state <= TaskState::Running && t.status.state <= TaskState::Running;
            let mut configs = Vec::new();
            let mut secrets = Vec::new();
            if let (true, Some(c)) = (runs, &t.spec.container_spec) {
                for r in &c.configs {
                    if let Some(cfg) = state.configs.get(&r.config_id) {
                        hasher.update(cfg.id.as_bytes());
                        hasher.update(cfg.version.index.to_le_bytes());
                        configs.push(FileData {
                            id: cfg.id.clone(),
                            name: cfg.spec.name.clone(),
                            data: cfg.spec.data.clone(),
                        });
                    }
                }
                for r in &c.secrets {
                    let Some(sec) = state.secrets.get(&r.secret_id) else {
                        continue;
                    };
                    hasher.update(sec.id.as_bytes());
                    hasher.update(sec.version.index.to_le_bytes());
                    let sealed = sec.spec.data.as_deref().unwrap_or_default();
                    match self.keys.data_key.open(sealed) {
                        Ok(data) => secrets.push(FileData {
                            id: sec.id.clone(),
                            name: sec.spec.name.clone(),
                            data,
                        }),
                        Err(e) => tracing::error!("cannot open secret {}: {e}", sec.id),
                    }
                }
            }
            let service = state.services.get(&t.service_id);
            let service_name = service.map(|s| s.spec.name.clone()).unwrap_or_default();
            let ports = service
                .map(|s| s.endpoint.ports.clone())
                .unwrap_or_default();
            let mut task = t.clone();
            // A service that names no log driver gets the cluster's default
            // (`TaskDefaults.LogDriver`), as SwarmKit gives it to the task it makes.
            if task.spec.log_driver.is_none() {
                task.spec.log_driver = default_log_driver.clone();
            }
            // The service's registry credentials travel, like secrets, only for tasks that
            // are to run.
            let registry_auth = if runs {
                self.registry_auth_of(&state, &t.service_id)
            } else {
                None
            };
            if let Some(auth) = state.registry_auth.get(&t.service_id) {
                hasher.update(&auth.spec);
            }
            assignments.push(Assignment {
                task,
                service_name,
                configs,
                secrets,
                ports,
                registry_auth,
            });
        }
        AssignmentsResp {
            digest: hex::encode(hasher.finalize()),
            assignments,
        }
    }

    /// Answers once the node's set differs from the one it has, or after `wait`.
    pub(super) async fn assignments_changed(
        &self,
        req: &AssignmentsReq,
        wait: Duration,
    ) -> AssignmentsResp {
        let kinds = [Kind::Task, Kind::Config, Kind::Secret];
        self.when_changed(
            &req.digest,
            &kinds,
            wait,
            |m| m.assignments(&req.node_id),
            |r| &r.digest,
        )
        .await
    }

    /// A long poll: computes `current` until its digest differs from `digest` (or `wait`
    /// passed), looking again whenever the replica applies a change to one of `kinds`.
    pub(super) async fn when_changed<T>(
        &self,
        digest: &str,
        kinds: &[Kind],
        wait: Duration,
        current: impl Fn(&Self) -> T,
        digest_of: impl Fn(&T) -> &String,
    ) -> T {
        let deadline = tokio::time::Instant::now() + wait;
        // Subscribed before the first look, so no change can slip between the two.
        let mut events = self.replica().subscribe();
        loop {
            let resp = current(self);
            if digest_of(&resp) != digest {
                return resp;
            }
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Err(_) => return resp,
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return resp,
                    Ok(Err(_)) => break,
                    Ok(Ok(e)) if kinds.contains(&e.kind) => break,
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
}

impl Daemon {
    /// `/internal/assignments` from a node.
    pub async fn internal_assignments(&self, req: AssignmentsReq) -> Result<AssignmentsResp> {
        let m = self.manager()?;
        Ok(m.assignments_changed(&req, long_poll(&self.cfg.timing))
            .await)
    }

    /// `/internal/task-status` from a node.
    pub async fn internal_task_status(&self, req: TaskStatusReq) -> Result<()> {
        let m = self.manager()?;
        m.propose(Command::ReportTaskStatus {
            node_id: req.node_id,
            reports: req.reports,
        })
        .await?;
        Ok(())
    }

    /// This node's ID while it is part of a swarm.
    pub fn node_id(&self) -> Option<String> {
        match self.role() {
            Role::Manager(m) => Some(m.identity.node_id.clone()),
            Role::Worker(w) => Some(
                w.identity
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .node_id
                    .clone(),
            ),
            // Its agent keeps the tasks it runs while the manager waits to be unlocked.
            Role::Locked(l) => Some(l.identity.node_id.clone()),
            Role::Inactive => None,
        }
    }

    /// The node's side of the dispatcher: this node's tasks, once they differ from the set
    /// with `digest` (or after a long-poll period).
    pub async fn fetch_assignments(&self, digest: &str) -> Result<AssignmentsResp> {
        let wait = long_poll(&self.cfg.timing);
        match self.role() {
            Role::Manager(m) => {
                let req = AssignmentsReq {
                    node_id: m.identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                Ok(m.assignments_changed(&req, wait).await)
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = AssignmentsReq {
                    node_id: identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                self.call_managers(
                    &identity.managers,
                    PATH_ASSIGNMENTS,
                    &req,
                    wait + CALL_TIMEOUT,
                )
                .await
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    /// Sends what the agent observed to the managers.
    pub async fn report_status(&self, reports: Vec<TaskReport>) -> Result<()> {
        match self.role() {
            Role::Manager(m) => {
                let node_id = m.identity.node_id.clone();
                m.propose(Command::ReportTaskStatus { node_id, reports })
                    .await?;
                Ok(())
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = TaskStatusReq {
                    node_id: identity.node_id.clone(),
                    reports,
                };
                self.call_managers::<_, ()>(
                    &identity.managers,
                    PATH_TASK_STATUS,
                    &req,
                    CALL_TIMEOUT,
                )
                .await
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    /// Calls the first manager that answers.
    pub(super) async fn call_managers<Req, Resp>(
        &self,
        managers: &[String],
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
    {
        let mut last = ApiError::Unavailable("no manager is known to this node".into());
        for addr in managers {
            match self
                .transport
                .post::<_, Resp>(addr, path, req, timeout)
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) => last = from_transport(e),
            }
        }
        Err(last)
    }
}
