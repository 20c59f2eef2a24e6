//! The orchestrators: from the services and the nodes in the state, the tasks that should
//! exist. One pure function, [`reconcile`], looks at a state and says what to change; the
//! leader runs it whenever something changed and proposes the result through Raft.
//!
//! - Replicated services keep one live task in each slot `1..=replicas`; global services one
//!   on each node that may run it.
//! - A task that ends, or whose node goes down or is drained, is shut down and its slot filled
//!   again as the restart policy allows (condition, delay, attempts within a window).
//! - A task whose spec is not the service's is replaced by a rolling update: `Parallelism`
//!   slots at a time, `Delay` apart, stop-first or start-first, pausing (or rolling back) when
//!   an updated task fails.
//! - Old tasks are kept per slot up to the cluster's `TaskHistoryRetentionLimit`; tasks whose
//!   desired state is REMOVE are forgotten once they stopped.
//!
//! - Jobs run tasks to completion, iteration by iteration (every update starts a new one).

use crate::placement;
use chrono::{DateTime, Duration, Utc};
use shoal_store::{Command, State, TaskUpdate};
use shoal_types::ids::new_id;
use shoal_types::swarm::{
    FailureAction, Node, RestartPolicyCondition, Service, Task, TaskState, TaskStatus,
    UpdateConfig, UpdateOrder, UpdateState, UpdateStatus,
};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Swarm's default restart delay.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::seconds(5);
/// How long Swarm watches updated tasks for failures by default.
pub const DEFAULT_MONITOR: Duration = Duration::seconds(5);
/// Swarm's default number of old tasks kept per slot.
pub const DEFAULT_HISTORY: usize = 5;

/// The most task changes in one command: SwarmKit's `MaxChangesPerTransaction`. A task
/// carries its spec (a few KB at most), so a command stays far below the proposal limit.
pub const TASKS_PER_COMMAND: usize = 200;

/// `items` in chunks of [`TASKS_PER_COMMAND`], in order.
pub(crate) fn in_chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        out.push(items.by_ref().take(TASKS_PER_COMMAND).collect());
    }
    out
}

/// What the orchestrators want changed.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<Task>,
    pub updates: Vec<TaskUpdate>,
    pub remove: Vec<String>,
    pub update_status: Vec<(String, UpdateStatus)>,
    /// Services to roll back to their previous spec (failure action `rollback`), with the
    /// version read and the reason.
    pub rollback: Vec<(String, u64, String)>,
    /// The earliest moment something waiting becomes due (a restart delay, an update delay,
    /// a monitoring period): the leader looks again then.
    pub wake_at: Option<DateTime<Utc>>,
}

impl Plan {
    /// Whether the plan changes nothing (a wake-up time is not a change).
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.updates.is_empty()
            && self.remove.is_empty()
            && self.update_status.is_empty()
            && self.rollback.is_empty()
    }

    /// The plan as Raft commands, in the order they should be proposed. Task changes go
    /// [`TASKS_PER_COMMAND`] at a time, so that a large service never makes a proposal larger
    /// than one may be (`shoal_raft::limits`).
    pub fn into_commands(self, state: &State) -> Vec<Command> {
        let mut cmds = Vec::new();
        for updates in in_chunks(self.updates) {
            cmds.push(Command::UpdateTasks { updates });
        }
        for tasks in in_chunks(self.create) {
            cmds.push(Command::CreateTasks { tasks });
        }
        for ids in in_chunks(self.remove) {
            cmds.push(Command::RemoveTasks { ids });
        }
        for (id, st) in self.update_status {
            cmds.push(Command::SetServiceUpdateStatus {
                id,
                update_status: Some(st),
            });
        }
        for (id, version, reason) in self.rollback {
            if let Some(svc) = state.services.get(&id) {
                cmds.push(Command::UpdateService {
                    registry_auth: shoal_store::AuthChange::Keep,
                    id,
                    version,
                    spec: Box::new(svc.spec.clone()),
                    rollback: true,
                    rollback_reason: Some(reason),
                });
            }
        }
        cmds
    }

    /// Notes that something becomes due at `at`.
    fn wake(&mut self, at: DateTime<Utc>) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn shutdown(&mut self, t: &Task, to: TaskState) {
        self.updates.push(TaskUpdate {
            id: t.id.clone(),
            desired_state: Some(to),
            ..Default::default()
        });
    }
}

/// Where a task belongs: its slot (replicated) or its node (global).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Key {
    Slot(i64),
    Node(String),
}

fn key_of(t: &Task, global: bool) -> Key {
    if global {
        Key::Node(t.node_id.clone())
    } else {
        Key::Slot(t.slot)
    }
}

/// A task the orchestrator still wants to run.
fn live(t: &Task) -> bool {
    t.desired_state <= TaskState::Running
}

/// A task that stopped running (or never will).
fn ended(t: &Task) -> bool {
    t.status.state > TaskState::Running
}

fn usable(nodes: &HashMap<&str, &Node>, id: &str) -> bool {
    nodes
        .get(id)
        .is_some_and(|n| placement::unavailable(n).is_none())
}

/// A task was shut down on purpose and is still on its way down on a node that answers.
fn stopping(t: &Task, nodes: &HashMap<&str, &Node>) -> bool {
    !live(t) && !ended(t) && !t.node_id.is_empty() && usable(nodes, &t.node_id)
}

/// A task that ended without being asked to: it failed, completed, was rejected, or its node
/// went away.
fn ended_by_itself(t: &Task, nodes: &HashMap<&str, &Node>) -> bool {
    match t.status.state {
        TaskState::Complete | TaskState::Failed | TaskState::Rejected | TaskState::Orphaned => true,
        TaskState::Shutdown | TaskState::Remove => false,
        _ => !t.node_id.is_empty() && !usable(nodes, &t.node_id),
    }
}

fn still_live(t: &Task, stopped: &HashSet<&str>) -> bool {
    live(t) && !stopped.contains(t.id.as_str())
}

fn ns(d: Option<i64>, default: Duration) -> Duration {
    match d {
        Some(n) if n > 0 => Duration::nanoseconds(n),
        Some(_) => Duration::zero(),
        None => default,
    }
}

/// What the orchestrators want changed in `state`, as of `now`.
pub fn reconcile(state: &State, now: DateTime<Utc>) -> Plan {
    let mut plan = Plan::default();
    let nodes: HashMap<&str, &Node> = state.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let history = state
        .cluster
        .as_ref()
        .and_then(|c| c.info.spec.orchestration.task_history_retention_limit)
        .map(|l| l.max(0) as usize)
        .unwrap_or(DEFAULT_HISTORY);

    let mut by_service: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in state.tasks.iter() {
        // Tasks to remove: forgotten once they are down, never ran, or their node is gone.
        if t.desired_state >= TaskState::Remove {
            if ended(t)
                || t.status.state < TaskState::Assigned
                || t.node_id.is_empty()
                || !usable(&nodes, &t.node_id)
            {
                plan.remove.push(t.id.clone());
            }
            continue;
        }
        if state.services.get(&t.service_id).is_none() {
            plan.shutdown(t, TaskState::Remove);
            continue;
        }
        by_service.entry(t.service_id.as_str()).or_default().push(t);
    }

    for svc in state.services.iter() {
        let tasks = by_service.remove(svc.id.as_str()).unwrap_or_default();
        service(svc, &tasks, &nodes, history, now, &mut plan);
    }
    plan
}

fn service(
    svc: &Service,
    tasks: &[&Task],
    nodes: &HashMap<&str, &Node>,
    history: usize,
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    let mode = &svc.spec.mode;
    if mode.replicated_job.is_some() || mode.global_job.is_some() {
        job(svc, tasks, nodes, history, now, plan);
        return;
    }
    let global = mode.global.is_some();
    let template = &svc.spec.task_template;

    // The keys that should hold a live task.
    let wanted: Vec<Key> = if global {
        eligible_nodes(svc, nodes)
    } else {
        let replicas = mode
            .replicated
            .as_ref()
            .and_then(|r| r.replicas)
            .unwrap_or(1);
        (1..=replicas as i64).map(Key::Slot).collect()
    };

    // Every task of the service by key, newest first.
    let mut slots: BTreeMap<Key, Vec<&Task>> = BTreeMap::new();
    for t in tasks {
        slots.entry(key_of(t, global)).or_default().push(t);
    }
    for list in slots.values_mut() {
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    }

    // Live tasks that must stop: ended, on a node that is gone, drained or down, or in a key
    // that is no longer wanted.
    let mut stopped: HashSet<&str> = HashSet::new();
    for (key, list) in &slots {
        let is_wanted = wanted.contains(key);
        for t in list.iter().filter(|t| live(t)) {
            let node_lost = !t.node_id.is_empty() && !usable(nodes, &t.node_id);
            if !is_wanted {
                plan.shutdown(t, TaskState::Remove);
                stopped.insert(&t.id);
            } else if ended(t) || node_lost {
                plan.shutdown(t, TaskState::Shutdown);
                stopped.insert(&t.id);
            }
        }
    }

    // The rolling update: which keys hold a live task with an old spec.
    // Without an update config, Swarm's defaults: one task at a time, stop-first, pause on
    // failure.
    let swarm_default = UpdateConfig {
        parallelism: 1,
        ..Default::default()
    };
    let update = svc
        .spec
        .update_config
        .clone()
        .unwrap_or(swarm_default.clone());
    let status = svc.update_status.as_ref();
    let rolling_back = status.is_some_and(|s| {
        matches!(
            s.state,
            UpdateState::RollbackStarted | UpdateState::RollbackPaused
        )
    });
    let update_cfg = if rolling_back {
        svc.spec.rollback_config.clone().unwrap_or(swarm_default)
    } else {
        update.clone()
    };
    let paused = status
        .is_some_and(|s| matches!(s.state, UpdateState::Paused | UpdateState::RollbackPaused));
    let started_at = status.and_then(|s| s.started_at);
    let in_update = |t: &Task| started_at.is_some_and(|s| t.created_at >= s);

    let mut outdated_keys: Vec<&Key> = Vec::new();
    let mut in_flight = 0usize;
    let mut last_step: Option<DateTime<Utc>> = None;
    let mut replaced: Vec<&Task> = Vec::new();
    for (key, list) in &slots {
        let current: Vec<&&Task> = list
            .iter()
            .filter(|t| still_live(t, &stopped) && t.spec == *template)
            .collect();
        let old: Vec<&&Task> = list
            .iter()
            .filter(|t| still_live(t, &stopped) && t.spec != *template)
            .collect();
        let running_current = current.iter().any(|t| t.status.state == TaskState::Running);
        for t in &current {
            if in_update(t) {
                // When the managers learned that it runs (not the agent's clock): the
                // monitoring period starts when clients can see the task running.
                let at = if t.status.state == TaskState::Running {
                    t.updated_at.max(t.status.timestamp)
                } else {
                    now
                };
                last_step = Some(last_step.map_or(at, |l| l.max(at)));
            }
        }
        let refilling = current.is_empty()
            && old.is_empty()
            && list
                .first()
                .is_some_and(|t| t.spec != *template && !ended_by_itself(t, nodes));
        if (!current.is_empty() && !running_current)
            || list
                .iter()
                .any(|t| stopping(t, nodes) && t.spec != *template)
            || refilling
        {
            in_flight += 1;
        }
        if !old.is_empty() {
            if running_current {
                // Start-first: the new task runs, the old one can go.
                replaced.extend(old.into_iter().copied());
            } else if current.is_empty() && wanted.contains(key) {
                outdated_keys.push(key);
            }
        }
    }
    for t in replaced {
        plan.shutdown(t, TaskState::Shutdown);
        stopped.insert(&t.id);
    }

    // Updated tasks that failed during this update.
    let failed: Vec<&&Task> = slots
        .values()
        .flatten()
        .filter(|t| t.spec == *template && in_update(t))
        .filter(|t| matches!(t.status.state, TaskState::Failed | TaskState::Rejected))
        .collect();
    let updated = slots
        .values()
        .flatten()
        .filter(|t| t.spec == *template && in_update(t))
        .count()
        .max(1);
    let updating = status.is_some_and(|s| {
        matches!(
            s.state,
            UpdateState::Updating | UpdateState::RollbackStarted
        )
    });
    let too_many_failures = updating
        && !failed.is_empty()
        && (failed.len() as f64 / updated as f64) > update_cfg.max_failure_ratio as f64;
    let mut halt = paused;
    if too_many_failures {
        let task = &failed[0].id;
        match update_cfg.failure_action {
            FailureAction::Continue => {}
            FailureAction::Pause => {
                halt = true;
                let state = if rolling_back {
                    UpdateState::RollbackPaused
                } else {
                    UpdateState::Paused
                };
                plan.update_status.push((
                    svc.id.clone(),
                    UpdateStatus {
                        state,
                        started_at,
                        completed_at: None,
                        message: format!(
                            "update paused due to failure or early termination of task {task}"
                        ),
                    },
                ));
            }
            FailureAction::Rollback if !rolling_back && svc.previous_spec.is_some() => {
                halt = true;
                plan.rollback.push((
                    svc.id.clone(),
                    svc.version.index,
                    format!(
                        "update rolled back due to failure or early termination of task {task}"
                    ),
                ));
            }
            FailureAction::Rollback => halt = true,
        }
    }

    // Replace old-spec tasks, `Parallelism` keys at a time, `Delay` apart.
    let parallelism = match update_cfg.parallelism {
        0 => usize::MAX,
        p => p as usize,
    };
    let delay = Duration::nanoseconds(update_cfg.delay.max(0));
    // A batch starts when the previous one runs and `Delay` has passed since.
    let may_step = in_flight == 0 && last_step.is_none_or(|l| now >= l + delay);
    if let Some(l) = last_step.filter(|l| in_flight == 0 && now < *l + delay) {
        if !outdated_keys.is_empty() {
            plan.wake(l + delay);
        }
    }
    let mut started_now = 0usize;
    if !halt && may_step {
        for key in &outdated_keys {
            if in_flight + started_now >= parallelism {
                break;
            }
            let list = &slots[*key];
            started_now += 1;
            match update_cfg.order {
                UpdateOrder::StopFirst => {
                    for t in list.iter().filter(|t| still_live(t, &stopped)) {
                        plan.shutdown(t, TaskState::Shutdown);
                    }
                }
                UpdateOrder::StartFirst => {
                    plan.create.push(new_task(svc, key, now));
                }
            }
        }
    }
    let update_started: Vec<&Key> = outdated_keys
        .iter()
        .take(if halt || !may_step { 0 } else { started_now })
        .copied()
        .collect();

    // Fill keys that hold no live task, as the restart policy allows.
    let restart = template.restart_policy.clone().unwrap_or_default();
    let restart_delay = ns(restart.delay, DEFAULT_RESTART_DELAY);
    for key in &wanted {
        let list = slots.get(key).map(Vec::as_slice).unwrap_or(&[]);
        if list.iter().any(|t| still_live(t, &stopped)) || update_started.contains(&key) {
            continue;
        }
        if list.iter().any(|t| stopping(t, nodes)) {
            continue;
        }
        if let Some(last) = list.first() {
            if ended_by_itself(last, nodes) {
                let allowed = match restart.condition {
                    RestartPolicyCondition::None => false,
                    RestartPolicyCondition::OnFailure => last.status.state != TaskState::Complete,
                    RestartPolicyCondition::Any => true,
                };
                if !allowed {
                    continue;
                }
                let ended_at = if ended(last) {
                    last.status.timestamp
                } else {
                    last.updated_at
                };
                if now < ended_at + restart_delay {
                    plan.wake(ended_at + restart_delay);
                    continue;
                }
                if let Some(max) = restart.max_attempts.filter(|m| *m > 0) {
                    let window = ns(restart.window, Duration::zero());
                    let attempts = list
                        .iter()
                        .filter(|t| ended_by_itself(t, nodes))
                        .filter(|t| window.is_zero() || t.created_at >= now - window)
                        .count();
                    if attempts as u64 > max {
                        continue;
                    }
                }
            }
        }
        plan.create.push(new_task(svc, key, now));
    }

    // The update is over once no live task has an old spec, nothing is in flight, and the
    // last updated task has run for the monitoring period (the CLI relies on that: it reads
    // "completed" as converged).
    let monitor = match update_cfg.monitor {
        m if m > 0 => Duration::nanoseconds(m),
        _ => DEFAULT_MONITOR,
    };
    let monitored = last_step.is_none_or(|l| now >= l + monitor);
    if let Some(l) = last_step.filter(|l| updating && now < *l + monitor) {
        plan.wake(l + monitor);
    }
    if updating && !too_many_failures && outdated_keys.is_empty() && in_flight == 0 && monitored {
        let (state, message) = if rolling_back {
            (UpdateState::RollbackCompleted, "rollback completed")
        } else {
            (UpdateState::Completed, "update completed")
        };
        plan.update_status.push((
            svc.id.clone(),
            UpdateStatus {
                state,
                started_at,
                completed_at: Some(now),
                message: message.into(),
            },
        ));
    }

    // History: beyond the retention limit, old tasks of each key are forgotten.
    for list in slots.values() {
        let old: Vec<&&Task> = list
            .iter()
            .filter(|t| !live(t) && (ended(t) || !usable(nodes, &t.node_id)))
            .collect();
        for t in old.iter().skip(history) {
            plan.remove.push(t.id.clone());
        }
    }
}

/// The nodes a global service (or global job) runs on, as keys.
fn eligible_nodes(svc: &Service, nodes: &HashMap<&str, &Node>) -> Vec<Key> {
    let constraints: &[String] = svc
        .spec
        .task_template
        .placement
        .as_ref()
        .map(|p| p.constraints.as_slice())
        .unwrap_or(&[]);
    let mut ids: Vec<&str> = nodes
        .values()
        .filter(|n| placement::unavailable(n).is_none())
        .filter(|n| placement::satisfies(n, constraints))
        .map(|n| n.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.into_iter()
        .map(|id| Key::Node(id.to_string()))
        .collect()
}

/// Jobs run their tasks to completion: a replicated job until `TotalCompletions` tasks
/// completed, at most `MaxConcurrent` at a time; a global job once on each eligible node.
/// Every update of the service is a new iteration: tasks of earlier ones are stopped.
fn job(
    svc: &Service,
    tasks: &[&Task],
    nodes: &HashMap<&str, &Node>,
    history: usize,
    now: DateTime<Utc>,
    plan: &mut Plan,
) {
    let global = svc.spec.mode.global_job.is_some();
    let iteration = svc
        .job_status
        .as_ref()
        .map(|j| j.job_iteration.index)
        .unwrap_or(svc.version.index);
    let (current, old): (Vec<&Task>, Vec<&Task>) = tasks
        .iter()
        .partition(|t| t.job_iteration.as_ref().map(|v| v.index) == Some(iteration));
    let mut old_ended: Vec<&Task> = Vec::new();
    for t in old {
        if live(t) {
            plan.shutdown(t, TaskState::Shutdown);
        } else {
            old_ended.push(t);
        }
    }
    old_ended.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    for t in old_ended.iter().skip(history) {
        plan.remove.push(t.id.clone());
    }

    let restart = svc
        .spec
        .task_template
        .restart_policy
        .clone()
        .unwrap_or_default();
    let restart_delay = ns(restart.delay, DEFAULT_RESTART_DELAY);
    let eligible = if global {
        eligible_nodes(svc, nodes)
    } else {
        Vec::new()
    };
    let mut keys: BTreeMap<Key, Vec<&Task>> = BTreeMap::new();
    for t in current {
        keys.entry(key_of(t, global)).or_default().push(t);
    }
    let (mut done, mut running) = (0u64, 0u64);
    for (key, list) in keys.iter_mut() {
        list.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        if list.iter().any(|t| t.status.state == TaskState::Complete) {
            done += 1;
            continue;
        }
        let last = list[0];
        let node_ok = last.node_id.is_empty() || usable(nodes, &last.node_id);
        if live(last) && !ended(last) && node_ok {
            running += 1;
            continue;
        }
        if live(last) {
            plan.shutdown(last, TaskState::Shutdown);
        }
        // Failed (or lost with its node): run it again if the restart policy allows.
        let again = restart.condition != RestartPolicyCondition::None
            && restart
                .max_attempts
                .is_none_or(|m| m == 0 || (list.len() as u64) <= m);
        if !again {
            done += 1;
            continue;
        }
        running += 1;
        let ended_at = if ended(last) {
            last.status.timestamp
        } else {
            last.updated_at
        };
        if now < ended_at + restart_delay {
            plan.wake(ended_at + restart_delay);
        }
        if now >= ended_at + restart_delay && (!global || eligible.contains(key)) {
            plan.create.push(job_task(svc, key, iteration, now));
        }
    }
    if global {
        for key in eligible {
            if !keys.contains_key(&key) {
                plan.create.push(job_task(svc, &key, iteration, now));
            }
        }
        return;
    }
    let spec = svc.spec.mode.replicated_job.clone().unwrap_or_default();
    let concurrent = spec.max_concurrent.unwrap_or(1).max(1);
    let total = spec.total_completions.unwrap_or(concurrent);
    // A job's slots count from 0, as Swarm's (the docker CLI's job progress relies on it).
    let mut next_slot = keys
        .keys()
        .filter_map(|k| match k {
            Key::Slot(s) => Some(*s + 1),
            Key::Node(_) => None,
        })
        .max()
        .unwrap_or(0);
    while done + running < total && running < concurrent {
        running += 1;
        plan.create
            .push(job_task(svc, &Key::Slot(next_slot), iteration, now));
        next_slot += 1;
    }
}

fn job_task(svc: &Service, key: &Key, iteration: u64, now: DateTime<Utc>) -> Task {
    let mut t = new_task(svc, key, now);
    // A job's tasks run to completion; they keep desired RUNNING (Swarm says COMPLETE) so that
    // the scheduler, dispatcher and agents treat them like any task.
    t.job_iteration = Some(shoal_types::swarm::Version { index: iteration });
    t
}

fn new_task(svc: &Service, key: &Key, now: DateTime<Utc>) -> Task {
    let (slot, node_id) = match key {
        Key::Slot(s) => (*s, String::new()),
        Key::Node(n) => (0, n.clone()),
    };
    Task {
        id: new_id(),
        spec: svc.spec.task_template.clone(),
        service_id: svc.id.clone(),
        slot,
        node_id,
        status: TaskStatus {
            timestamp: now,
            state: TaskState::New,
            message: "created".into(),
            ..Default::default()
        },
        desired_state: TaskState::Running,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
