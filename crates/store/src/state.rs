//! The state machine proper: the tables and [`State::apply`].

use crate::command::{Applied, Attachment, Cluster, Command, Member, Request, Response};
use crate::error::{Kind, StoreError};
use crate::recent::RecentRequests;
use crate::table::{Object, Table};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shoal_types::swarm::{
    Config, Endpoint, EndpointSpec, JobStatus, Network, Node, NodeRole, NodeState, PortConfig,
    PublishMode, Reachability, Secret, Service, ServiceMode, ServiceSpec, Task, TaskState,
    UpdateState, UpdateStatus, Version,
};
use std::collections::BTreeMap;

macro_rules! object {
    ($t:ty, $kind:expr) => {
        impl Object for $t {
            const KIND: Kind = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.spec.name
            }
        }
    };
}

object!(Node, Kind::Node);
object!(Service, Kind::Service);
object!(Network, Kind::Network);
object!(Config, Kind::Config);
object!(Secret, Kind::Secret);

impl Object for Task {
    const KIND: Kind = Kind::Task;
    fn id(&self) -> &str {
        &self.id
    }
    fn name(&self) -> &str {
        // Task names are not unique; the name index is not used for tasks.
        ""
    }
}

/// Dynamic published ports come from this range, like Swarm's.
/// The status message of a manager that `swarm init --force-new-cluster` took out of the Raft
/// group.
pub const FORCED_OUT: &str = "removed from the Raft group by --force-new-cluster";

pub const DYNAMIC_PORTS: std::ops::RangeInclusive<u32> = 30000..=32767;

/// A change to the state, for watchers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub action: EventAction,
    pub id: String,
    pub index: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    Create,
    Update,
    Remove,
}

/// Everything the managers replicate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub cluster: Option<Cluster>,
    pub nodes: Table<Node>,
    /// How to reach each node, by node ID.
    pub members: BTreeMap<String, Member>,
    pub services: Table<Service>,
    pub tasks: Table<Task>,
    pub networks: Table<Network>,
    pub configs: Table<Config>,
    pub secrets: Table<Secret>,
    /// Stacks deployed through shoal's stack API, by name (see [`crate::stacks`]).
    #[serde(default)]
    pub stacks: BTreeMap<String, crate::stacks::Stack>,
    /// Addresses held by containers attached from node engines: network ID → address → holder.
    #[serde(default)]
    pub attachments: BTreeMap<String, BTreeMap<String, Attachment>>,
    /// Per network, the last address handed out (allocation goes round from there).
    #[serde(default)]
    pub ip_cursors: BTreeMap<String, u32>,
    /// The requests applied recently and their answers, so that a retried one applies once.
    #[serde(default)]
    pub recent_requests: RecentRequests,
    #[serde(skip)]
    events: Vec<Event>,
}

type Result<T> = std::result::Result<T, StoreError>;

pub(crate) fn not_found(kind: Kind, key: &str) -> StoreError {
    StoreError::NotFound {
        kind,
        key: key.to_string(),
    }
}

fn check_version(kind: Kind, id: &str, current: &Version, sent: u64) -> Result<()> {
    if current.index != sent {
        return Err(StoreError::OutOfSequence {
            kind,
            id: id.to_string(),
            current: current.index,
            sent,
        });
    }
    Ok(())
}

impl State {
    /// Applies one committed command at log `index`. A refused command changes nothing.
    /// A request whose ID was applied recently is not applied again: it gets the answer it
    /// got then.
    pub fn apply(&mut self, index: u64, req: &Request) -> Response {
        if let Some(first) = self.recent_requests.answer(&req.id) {
            return first.clone();
        }
        let at = req.at;
        let events_before = self.events.len();
        let res = self.apply_cmd(index, at, &req.cmd);
        if res.is_err() {
            // Keep the events of commands applied before this one in the same batch.
            self.events.truncate(events_before);
        }
        let res = res.map(|id| Applied { index, id });
        // A no-op changes nothing, applied once or twice: no need to remember it.
        if !req.id.is_empty() && req.cmd != Command::Noop {
            self.recent_requests.remember(&req.id, at, res.clone());
        }
        res
    }

    /// Takes the events recorded by the commands applied since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub(crate) fn event(&mut self, kind: Kind, action: EventAction, id: &str, index: u64) {
        self.events.push(Event {
            kind,
            action,
            id: id.to_string(),
            index,
        });
    }

    pub fn cluster(&self) -> Result<&Cluster> {
        self.cluster.as_ref().ok_or(StoreError::NoCluster)
    }

    /// Names of the services whose spec satisfies `uses`.
    pub(crate) fn services_using(&self, uses: impl Fn(&ServiceSpec) -> bool) -> Vec<String> {
        self.services
            .iter()
            .filter(|s| uses(&s.spec))
            .map(|s| s.spec.name.clone())
            .collect()
    }

    pub fn manager_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.spec.role == NodeRole::Manager)
            .count()
    }

    pub(crate) fn apply_cmd(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        cmd: &Command,
    ) -> Result<Option<String>> {
        let version = Version { index };
        match cmd {
            Command::Noop => Ok(None),
            Command::DeployStack { deploy } => self
                .deploy_stack(index, at, deploy)
                .map(|_| Some(deploy.spec.name.clone())),
            Command::RemoveStack { name } => {
                self.remove_stack(index, at, name).map(|_| Some(name.clone()))
            }
            Command::InitCluster {
                cluster,
                node,
                member,
                ingress,
            } => {
                if self.cluster.is_some() {
                    return Err(StoreError::Conflict(
                        "this node is already part of a swarm".into(),
                    ));
                }
                let mut cluster = (**cluster).clone();
                cluster.info.version = version;
                cluster.info.created_at = at;
                cluster.info.updated_at = at;
                let id = cluster.info.id.clone();
                self.cluster = Some(cluster);
                self.add_node(index, at, node, member)?;
                let mut ingress = (**ingress).clone();
                stamp_new(
                    &mut ingress.version,
                    &mut ingress.created_at,
                    &mut ingress.updated_at,
                    index,
                    at,
                );
                self.event(Kind::Network, EventAction::Create, &ingress.id, index);
                self.networks.insert(ingress);
                self.event(Kind::Cluster, EventAction::Create, &id, index);
                Ok(Some(id))
            }
            Command::AddNode { node, member } => {
                self.cluster()?;
                self.add_node(index, at, node, member)
            }
            Command::UpdateNodeSpec {
                id,
                version: sent,
                spec,
            } => {
                let managers = self.manager_count();
                let node = self
                    .nodes
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Node, id))?;
                check_version(Kind::Node, id, &node.version, *sent)?;
                if node.spec.role == NodeRole::Manager
                    && spec.role == NodeRole::Worker
                    && managers <= 1
                {
                    return Err(StoreError::Conflict(
                        "attempting to demote the last manager of the swarm".into(),
                    ));
                }
                let mut node = node.clone();
                node.spec = spec.clone();
                stamp(&mut node.version, &mut node.updated_at, index, at);
                self.nodes.insert(node);
                self.event(Kind::Node, EventAction::Update, id, index);
                Ok(Some(id.clone()))
            }
            Command::SetNodeStatus {
                id,
                status,
                manager_status,
                description,
            } => {
                let node = self
                    .nodes
                    .get_mut(id)
                    .ok_or_else(|| not_found(Kind::Node, id))?;
                node.status = status.clone();
                node.manager_status = manager_status.clone();
                if let Some(d) = description {
                    node.description = (**d).clone();
                }
                stamp(&mut node.version, &mut node.updated_at, index, at);
                self.event(Kind::Node, EventAction::Update, id, index);
                Ok(Some(id.clone()))
            }
            Command::ForceNewCluster { node_id } => {
                self.cluster()?;
                if self.nodes.get(node_id).is_none() {
                    return Err(not_found(Kind::Node, node_id));
                }
                let others: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|n| {
                        n.id != *node_id
                            && (n.spec.role == NodeRole::Manager || n.manager_status.is_some())
                    })
                    .map(|n| n.id.clone())
                    .collect();
                for id in others {
                    let Some(node) = self.nodes.get(&id) else {
                        continue;
                    };
                    let mut node = node.clone();
                    node.spec.role = NodeRole::Worker;
                    node.manager_status = None;
                    node.status.state = NodeState::Down;
                    node.status.message = FORCED_OUT.into();
                    stamp(&mut node.version, &mut node.updated_at, index, at);
                    self.nodes.insert(node);
                    self.event(Kind::Node, EventAction::Update, &id, index);
                }
                Ok(Some(node_id.clone()))
            }
            Command::RemoveNode { id, force } => {
                let node = self
                    .nodes
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Node, id))?;
                if node.spec.role == NodeRole::Manager || node.manager_status.is_some() {
                    return Err(StoreError::Conflict(format!(
                        "rpc error: node {id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"
                    )));
                }
                if !force && node.status.state != NodeState::Down {
                    return Err(StoreError::Conflict(format!(
                        "node {id} is not down and can't be removed"
                    )));
                }
                self.nodes.remove(id);
                self.members.remove(id);
                // The addresses its engine held for attached containers go with it.
                for held in self.attachments.values_mut() {
                    held.retain(|_, a| a.node_id != *id);
                }
                self.attachments.retain(|_, held| !held.is_empty());
                self.event(Kind::Node, EventAction::Remove, id, index);
                Ok(Some(id.clone()))
            }
            Command::CreateService { service } => {
                self.cluster()?;
                let mut svc = (**service).clone();
                if self.services.name_taken(&svc.spec.name, None) {
                    return Err(StoreError::NameConflict {
                        kind: Kind::Service,
                        name: svc.spec.name.clone(),
                    });
                }
                self.check_references(&svc.spec)?;
                svc.endpoint = self.allocate_endpoint(&svc.id, &svc.spec)?;
                svc.endpoint.virtual_ips = self.allocate_vips(&svc.id, &svc.spec)?;
                if is_job(&svc.spec) {
                    svc.job_status = Some(JobStatus {
                        job_iteration: Version { index },
                        last_execution: Some(at),
                    });
                }
                stamp_new(
                    &mut svc.version,
                    &mut svc.created_at,
                    &mut svc.updated_at,
                    index,
                    at,
                );
                let id = svc.id.clone();
                self.services.insert(svc);
                self.event(Kind::Service, EventAction::Create, &id, index);
                Ok(Some(id))
            }
            Command::UpdateService {
                id,
                version: sent,
                spec,
                rollback,
                rollback_reason,
            } => {
                let svc = self
                    .services
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Service, id))?
                    .clone();
                check_version(Kind::Service, id, &svc.version, *sent)?;
                let new_spec = if *rollback {
                    svc.previous_spec.clone().ok_or_else(|| {
                        StoreError::Invalid(format!("service {id} does not have a previous spec"))
                    })?
                } else {
                    (**spec).clone()
                };
                if new_spec.name != svc.spec.name {
                    return Err(StoreError::Invalid(
                        "renaming services is not supported".into(),
                    ));
                }
                if mode_kind(&new_spec.mode) != mode_kind(&svc.spec.mode) {
                    return Err(StoreError::Invalid(
                        "service mode change is not allowed".into(),
                    ));
                }
                self.check_references(&new_spec)?;
                let mut endpoint = self.allocate_endpoint(id, &new_spec)?;
                endpoint.virtual_ips = self.allocate_vips(id, &new_spec)?;
                let mut svc = svc;
                // A new task template starts a rolling update (or a rollback) that the
                // orchestrator carries out and completes.
                if is_job(&new_spec) {
                    // Every update of a job runs it again, as a new iteration.
                    svc.job_status = Some(JobStatus {
                        job_iteration: Version { index },
                        last_execution: Some(at),
                    });
                } else if *rollback {
                    svc.update_status = Some(UpdateStatus {
                        state: UpdateState::RollbackStarted,
                        started_at: Some(at),
                        completed_at: None,
                        message: rollback_reason
                            .clone()
                            .unwrap_or_else(|| "manually requested rollback".into()),
                    });
                } else if new_spec.task_template != svc.spec.task_template {
                    svc.update_status = Some(UpdateStatus {
                        state: UpdateState::Updating,
                        started_at: Some(at),
                        completed_at: None,
                        message: "update in progress".into(),
                    });
                }
                svc.previous_spec = Some(std::mem::replace(&mut svc.spec, new_spec));
                svc.endpoint = endpoint;
                stamp(&mut svc.version, &mut svc.updated_at, index, at);
                self.services.insert(svc);
                self.event(Kind::Service, EventAction::Update, id, index);
                Ok(Some(id.clone()))
            }
            Command::RemoveService { id } => {
                self.services
                    .remove(id)
                    .ok_or_else(|| not_found(Kind::Service, id))?;
                self.event(Kind::Service, EventAction::Remove, id, index);
                // Its tasks are to be shut down and then forgotten (Swarm's desired state REMOVE).
                let orphans: Vec<String> = self
                    .tasks
                    .iter()
                    .filter(|t| t.service_id == *id && t.desired_state < TaskState::Remove)
                    .map(|t| t.id.clone())
                    .collect();
                for tid in orphans {
                    if let Some(t) = self.tasks.get_mut(&tid) {
                        t.desired_state = TaskState::Remove;
                        stamp(&mut t.version, &mut t.updated_at, index, at);
                    }
                    self.event(Kind::Task, EventAction::Update, &tid, index);
                }
                Ok(Some(id.clone()))
            }
            Command::CreateTasks { tasks } => {
                let mut tasks: Vec<Task> = tasks
                    .iter()
                    .filter(|t| {
                        (t.service_id.is_empty() || self.services.get(&t.service_id).is_some())
                            && self.tasks.get(&t.id).is_none()
                    })
                    .cloned()
                    .collect();
                self.attach_tasks(&mut tasks)?;
                for mut t in tasks {
                    stamp_new(
                        &mut t.version,
                        &mut t.created_at,
                        &mut t.updated_at,
                        index,
                        at,
                    );
                    let tid = t.id.clone();
                    self.tasks.insert(t);
                    self.event(Kind::Task, EventAction::Create, &tid, index);
                }
                Ok(None)
            }
            Command::UpdateTasks { updates } => {
                for u in updates {
                    let Some(t) = self.tasks.get_mut(&u.id) else {
                        continue;
                    };
                    let mut changed = false;
                    if let Some(d) = u.desired_state {
                        if d > t.desired_state {
                            t.desired_state = d;
                            changed = true;
                        }
                    }
                    if let Some(n) = &u.node_id {
                        if t.node_id.is_empty() && t.status.state < TaskState::Assigned {
                            t.node_id = n.clone();
                            changed = true;
                        }
                    }
                    if let Some(st) = &u.status {
                        // The scheduler may restate PENDING with a new reason.
                        if st.state > t.status.state
                            || (st.state == t.status.state && *st != t.status)
                        {
                            t.status = st.clone();
                            changed = true;
                        }
                    }
                    if changed {
                        stamp(&mut t.version, &mut t.updated_at, index, at);
                        self.event(Kind::Task, EventAction::Update, &u.id, index);
                    }
                }
                Ok(None)
            }
            Command::ReportTaskStatus { node_id, reports } => {
                for r in reports {
                    let Some(t) = self.tasks.get_mut(&r.id) else {
                        continue;
                    };
                    if t.node_id != *node_id {
                        continue;
                    }
                    if r.status.state > t.status.state
                        || (r.status.state == t.status.state && r.status != t.status)
                    {
                        t.status = r.status.clone();
                        stamp(&mut t.version, &mut t.updated_at, index, at);
                        self.event(Kind::Task, EventAction::Update, &r.id, index);
                    }
                }
                Ok(None)
            }
            Command::RemoveTasks { ids } => {
                for tid in ids {
                    if self.tasks.remove(tid).is_some() {
                        self.event(Kind::Task, EventAction::Remove, tid, index);
                    }
                }
                Ok(None)
            }
            Command::SetServiceUpdateStatus { id, update_status } => {
                let svc = self
                    .services
                    .get_mut(id)
                    .ok_or_else(|| not_found(Kind::Service, id))?;
                svc.update_status = update_status.clone();
                stamp(&mut svc.version, &mut svc.updated_at, index, at);
                self.event(Kind::Service, EventAction::Update, id, index);
                Ok(Some(id.clone()))
            }
            Command::CreateConfig { config } => {
                self.cluster()?;
                if self.configs.name_taken(&config.spec.name, None) {
                    return Err(StoreError::NameConflict {
                        kind: Kind::Config,
                        name: config.spec.name.clone(),
                    });
                }
                let mut c = (**config).clone();
                stamp_new(
                    &mut c.version,
                    &mut c.created_at,
                    &mut c.updated_at,
                    index,
                    at,
                );
                let id = c.id.clone();
                self.configs.insert(c);
                self.event(Kind::Config, EventAction::Create, &id, index);
                Ok(Some(id))
            }
            Command::UpdateConfig {
                id,
                version: sent,
                spec,
            } => {
                let c = self
                    .configs
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Config, id))?;
                check_version(Kind::Config, id, &c.version, *sent)?;
                if c.spec.name != spec.name || c.spec.data != spec.data {
                    return Err(StoreError::Invalid(
                        "only updates to Labels are allowed".into(),
                    ));
                }
                let mut c = c.clone();
                c.spec.labels = spec.labels.clone();
                stamp(&mut c.version, &mut c.updated_at, index, at);
                self.configs.insert(c);
                self.event(Kind::Config, EventAction::Update, id, index);
                Ok(Some(id.clone()))
            }
            Command::RemoveConfig { id } => {
                let c = self
                    .configs
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Config, id))?;
                let users = self.services_using(|s| {
                    s.task_template
                        .container_spec
                        .as_ref()
                        .is_some_and(|cs| cs.configs.iter().any(|r| r.config_id == *id))
                });
                if !users.is_empty() {
                    return Err(StoreError::InUse {
                        kind: Kind::Config,
                        name: c.spec.name.clone(),
                        services: users,
                    });
                }
                self.configs.remove(id);
                self.event(Kind::Config, EventAction::Remove, id, index);
                Ok(Some(id.clone()))
            }
            Command::CreateSecret { secret } => {
                self.cluster()?;
                if self.secrets.name_taken(&secret.spec.name, None) {
                    return Err(StoreError::NameConflict {
                        kind: Kind::Secret,
                        name: secret.spec.name.clone(),
                    });
                }
                let mut s = (**secret).clone();
                stamp_new(
                    &mut s.version,
                    &mut s.created_at,
                    &mut s.updated_at,
                    index,
                    at,
                );
                let id = s.id.clone();
                self.secrets.insert(s);
                self.event(Kind::Secret, EventAction::Create, &id, index);
                Ok(Some(id))
            }
            Command::UpdateSecret {
                id,
                version: sent,
                spec,
            } => {
                let s = self
                    .secrets
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Secret, id))?;
                check_version(Kind::Secret, id, &s.version, *sent)?;
                if s.spec.name != spec.name || spec.data.as_ref().is_some_and(|d| !d.is_empty()) {
                    return Err(StoreError::Invalid(
                        "only updates to Labels are allowed".into(),
                    ));
                }
                let mut s = s.clone();
                s.spec.labels = spec.labels.clone();
                stamp(&mut s.version, &mut s.updated_at, index, at);
                self.secrets.insert(s);
                self.event(Kind::Secret, EventAction::Update, id, index);
                Ok(Some(id.clone()))
            }
            Command::RemoveSecret { id } => {
                let s = self
                    .secrets
                    .get(id)
                    .ok_or_else(|| not_found(Kind::Secret, id))?;
                let users = self.services_using(|sp| {
                    sp.task_template
                        .container_spec
                        .as_ref()
                        .is_some_and(|cs| cs.secrets.iter().any(|r| r.secret_id == *id))
                });
                if !users.is_empty() {
                    return Err(StoreError::InUse {
                        kind: Kind::Secret,
                        name: s.spec.name.clone(),
                        services: users,
                    });
                }
                self.secrets.remove(id);
                self.event(Kind::Secret, EventAction::Remove, id, index);
                Ok(Some(id.clone()))
            }
            Command::CreateNetwork { network } => self.create_network(index, at, network),
            Command::RemoveNetwork { id } => self.remove_network(index, id),
            Command::AttachContainer {
                network_id,
                node_id,
                addr,
            } => self
                .attach_container(network_id, node_id, addr.as_deref())
                .map(Some),
            Command::DetachContainer {
                network_id,
                node_id,
                addr,
            } => {
                self.detach_container(network_id, node_id, addr);
                Ok(None)
            }
            Command::UpdateCluster {
                version: sent,
                spec,
                join_tokens,
                unlock_key,
            } => {
                let c = self.cluster.as_mut().ok_or(StoreError::NoCluster)?;
                check_version(Kind::Cluster, &c.info.id, &c.info.version, *sent)?;
                c.info.spec = (**spec).clone();
                c.join_tokens = join_tokens.clone();
                c.unlock_key = unlock_key.clone();
                stamp(&mut c.info.version, &mut c.info.updated_at, index, at);
                let id = c.info.id.clone();
                self.event(Kind::Cluster, EventAction::Update, &id, index);
                Ok(Some(id))
            }
        }
    }

    fn add_node(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        node: &Node,
        member: &Member,
    ) -> Result<Option<String>> {
        // Node identity is the cluster's: a join gets a fresh node ID and Raft ID from the
        // leader, and never replaces (nor takes over the secrets of) a node that exists.
        if node.id.is_empty() || self.nodes.get(&node.id).is_some() {
            return Err(StoreError::Conflict(format!(
                "node ID `{}` is already taken: a joining node never replaces another",
                node.id
            )));
        }
        if member.raft_id == 0 || self.members.values().any(|m| m.raft_id == member.raft_id) {
            return Err(StoreError::Conflict(format!(
                "Raft ID {} is already taken: a joining node never replaces another",
                member.raft_id
            )));
        }
        let mut node = node.clone();
        stamp_new(
            &mut node.version,
            &mut node.created_at,
            &mut node.updated_at,
            index,
            at,
        );
        let id = node.id.clone();
        self.nodes.insert(node);
        self.members.insert(id.clone(), member.clone());
        self.event(Kind::Node, EventAction::Create, &id, index);
        Ok(Some(id))
    }

    /// Secrets, configs and networks a service refers to must exist.
    fn check_references(&self, spec: &ServiceSpec) -> Result<()> {
        if let Some(cs) = &spec.task_template.container_spec {
            for r in &cs.secrets {
                if self.secrets.get(&r.secret_id).is_none() {
                    return Err(StoreError::Invalid(format!(
                        "secret not found: {}",
                        if r.secret_name.is_empty() {
                            &r.secret_id
                        } else {
                            &r.secret_name
                        }
                    )));
                }
            }
            for r in &cs.configs {
                if self.configs.get(&r.config_id).is_none() {
                    return Err(StoreError::Invalid(format!(
                        "config not found: {}",
                        if r.config_name.is_empty() {
                            &r.config_id
                        } else {
                            &r.config_name
                        }
                    )));
                }
            }
        }
        for a in spec
            .task_template
            .networks
            .iter()
            .chain(spec.networks.iter())
        {
            let net = self
                .networks
                .get(&a.target)
                .or_else(|| self.networks.by_name(&a.target))
                .ok_or_else(|| StoreError::Invalid(format!("network {} not found", a.target)))?;
            if net.spec.ingress {
                return Err(StoreError::Invalid(format!(
                    "service cannot be explicitly attached to the ingress network \"{}\"",
                    net.spec.name
                )));
            }
        }
        Ok(())
    }

    /// Published ports: ingress ports are unique in the cluster; port 0 gets a free one from
    /// [`DYNAMIC_PORTS`], and a service that is updated keeps the ports it had.
    fn allocate_endpoint(&self, service_id: &str, spec: &ServiceSpec) -> Result<Endpoint> {
        let endpoint_spec = spec.endpoint_spec.clone().unwrap_or_default();
        let mut used: BTreeMap<(String, u32), String> = BTreeMap::new();
        let mut own_dynamic: BTreeMap<(String, u32), u32> = BTreeMap::new();
        for s in self.services.iter() {
            for p in &s.endpoint.ports {
                if p.publish_mode != PublishMode::Ingress || p.published_port == 0 {
                    continue;
                }
                let proto = protocol(p);
                if s.id == service_id {
                    own_dynamic.insert((proto, p.target_port), p.published_port);
                } else {
                    used.insert((proto, p.published_port), s.spec.name.clone());
                }
            }
        }
        let mut ports: Vec<PortConfig> = Vec::new();
        let mut seen: BTreeMap<(String, u32), ()> = BTreeMap::new();
        for p in &endpoint_spec.ports {
            let mut p = p.clone();
            let proto = protocol(&p);
            if p.publish_mode == PublishMode::Ingress && p.published_port == 0 {
                let keep = own_dynamic
                    .get(&(proto.clone(), p.target_port))
                    .copied()
                    .filter(|port| !used.contains_key(&(proto.clone(), *port)));
                let port = keep.or_else(|| {
                    DYNAMIC_PORTS.clone().find(|port| {
                        !used.contains_key(&(proto.clone(), *port))
                            && !seen.contains_key(&(proto.clone(), *port))
                            && !endpoint_spec
                                .ports
                                .iter()
                                .any(|q| q.published_port == *port && protocol(q) == proto)
                    })
                });
                p.published_port = port.ok_or_else(|| {
                    StoreError::Conflict(
                        "no free port left in the dynamic range 30000-32767".into(),
                    )
                })?;
            }
            if p.published_port != 0 {
                let key = (proto.clone(), p.published_port);
                if p.publish_mode == PublishMode::Ingress {
                    if let Some(other) = used.get(&key) {
                        let other_id = self
                            .services
                            .by_name(other)
                            .map(|s| s.id.clone())
                            .unwrap_or_default();
                        return Err(StoreError::Conflict(format!(
                            "port '{}' is already in use by service '{}' ({}) as an ingress port",
                            p.published_port, other, other_id
                        )));
                    }
                }
                if seen.insert(key, ()).is_some() {
                    return Err(StoreError::Invalid(format!(
                        "duplicate published ports provided: {}",
                        p.published_port
                    )));
                }
            }
            ports.push(p);
        }
        Ok(Endpoint {
            spec: EndpointSpec {
                mode: endpoint_spec.mode,
                ports: endpoint_spec.ports.clone(),
            },
            ports,
            virtual_ips: Vec::new(),
        })
    }

    /// Is this node a manager that the leader currently can reach?
    pub fn reachability(&self, node_id: &str) -> Option<Reachability> {
        self.nodes
            .get(node_id)
            .and_then(|n| n.manager_status.as_ref())
            .map(|m| m.reachability)
    }
}

fn protocol(p: &PortConfig) -> String {
    serde_json::to_value(p.protocol)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "tcp".into())
}

pub(crate) fn mode_kind(m: &ServiceMode) -> u8 {
    if m.global.is_some() {
        1
    } else if m.replicated_job.is_some() {
        2
    } else if m.global_job.is_some() {
        3
    } else {
        0
    }
}

fn is_job(spec: &ServiceSpec) -> bool {
    spec.mode.replicated_job.is_some() || spec.mode.global_job.is_some()
}

fn stamp(version: &mut Version, updated_at: &mut DateTime<Utc>, index: u64, at: DateTime<Utc>) {
    version.index = index;
    *updated_at = at;
}

pub(crate) fn stamp_new(
    version: &mut Version,
    created_at: &mut DateTime<Utc>,
    updated_at: &mut DateTime<Utc>,
    index: u64,
    at: DateTime<Utc>,
) {
    version.index = index;
    *created_at = at;
    *updated_at = at;
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{
        ContainerSpec, PortConfig, SecretReference, SecretSpec, ServiceSpec, TaskSpec,
    };

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn run(state: &mut State, index: u64, cmd: Command) -> Response {
        state.apply(
            index,
            &Request {
                at: at(),
                cmd,
                id: String::new(),
            },
        )
    }

    fn cluster() -> State {
        let mut s = State::default();
        let cmd = Command::InitCluster {
            cluster: Box::default(),
            node: Box::new(Node {
                id: "n1".into(),
                spec: shoal_types::swarm::NodeSpec {
                    role: NodeRole::Manager,
                    ..Default::default()
                },
                ..Default::default()
            }),
            member: Member {
                raft_id: 1,
                addr: "127.0.0.1:2377".into(),
            },
            ingress: Box::new(Network {
                id: "ingress".into(),
                spec: shoal_types::swarm::NetworkSpec {
                    name: "ingress".into(),
                    ingress: true,
                    ..Default::default()
                },
                ..Default::default()
            }),
        };
        run(&mut s, 1, cmd).unwrap();
        s
    }

    fn service(id: &str, name: &str, ports: &[(u32, u32)]) -> Command {
        Command::CreateService {
            service: Box::new(Service {
                id: id.into(),
                spec: ServiceSpec {
                    name: name.into(),
                    task_template: TaskSpec {
                        container_spec: Some(ContainerSpec {
                            image: "busybox".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    endpoint_spec: Some(EndpointSpec {
                        ports: ports
                            .iter()
                            .map(|(t, p)| PortConfig {
                                target_port: *t,
                                published_port: *p,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_retried_request_applies_once_and_gets_the_first_answer() {
        let mut s = cluster();
        let create = Request {
            id: "req-1".into(),
            ..Request::now(service("a", "web", &[]))
        };
        s.take_events();
        let first = s.apply(2, &create);
        assert_eq!(first.as_ref().map(|a| a.index), Ok(2));
        assert!(!s.take_events().is_empty());
        // The same request again (its answer was lost): no second effect, no conflict.
        let again = s.apply(3, &create);
        assert_eq!(again, first);
        assert!(s.take_events().is_empty());
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.services.get("a").unwrap().version.index, 2);
        // A new request with the same content is a new write: refused as a duplicate name.
        let other = s.apply(4, &Request::now(service("b", "web", &[])));
        assert!(
            matches!(other, Err(StoreError::NameConflict { .. })),
            "{other:?}"
        );
        // A refused request is answered the same way when retried.
        let refused = Request {
            id: "req-2".into(),
            ..Request::now(service("c", "web", &[]))
        };
        let first = s.apply(5, &refused);
        assert!(first.is_err());
        s.services.remove("a");
        assert_eq!(
            s.apply(6, &refused),
            first,
            "not applied again, even if it would pass now"
        );
        assert!(s.services.get("c").is_none());
    }

    #[test]
    fn managers_that_installed_a_snapshot_still_know_the_recent_requests() {
        let mut s = cluster();
        let create = Request {
            id: "req-1".into(),
            ..Request::now(service("a", "web", &[]))
        };
        let first = s.apply(2, &create);
        let mut installed: State =
            serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
        assert_eq!(installed.apply(3, &create), first);
        assert_eq!(installed.services.len(), 1);
    }

    #[test]
    fn a_join_never_replaces_an_existing_node_or_raft_member() {
        let mut s = cluster();
        let join = |id: &str, raft_id: u64| Command::AddNode {
            node: Box::new(Node {
                id: id.into(),
                spec: shoal_types::swarm::NodeSpec {
                    role: NodeRole::Worker,
                    ..Default::default()
                },
                ..Default::default()
            }),
            member: Member {
                raft_id,
                addr: "127.0.0.9:2377".into(),
            },
        };
        let err = run(&mut s, 2, join("n1", 7)).unwrap_err();
        assert!(
            err.to_string().contains("node ID `n1` is already taken"),
            "{err}"
        );
        let err = run(&mut s, 3, join("n2", 1)).unwrap_err();
        assert!(
            err.to_string().contains("Raft ID 1 is already taken"),
            "{err}"
        );
        let n1 = s.nodes.get("n1").unwrap();
        assert_eq!(n1.spec.role, NodeRole::Manager);
        assert_eq!(s.members.get("n1").unwrap().addr, "127.0.0.1:2377");
        run(&mut s, 4, join("n2", 2)).unwrap();
        assert_eq!(s.nodes.get("n2").unwrap().spec.role, NodeRole::Worker);
    }

    #[test]
    fn forcing_a_new_cluster_leaves_one_manager_and_keeps_the_other_nodes_down() {
        let mut s = cluster();
        let join = |id: &str, raft_id: u64, role: NodeRole| Command::AddNode {
            node: Box::new(Node {
                id: id.into(),
                spec: shoal_types::swarm::NodeSpec {
                    role,
                    ..Default::default()
                },
                status: shoal_types::swarm::NodeStatus {
                    state: NodeState::Ready,
                    ..Default::default()
                },
                manager_status: (role == NodeRole::Manager).then(Default::default),
                ..Default::default()
            }),
            member: Member {
                raft_id,
                addr: format!("127.0.0.{raft_id}:2377"),
            },
        };
        run(&mut s, 2, join("n2", 2, NodeRole::Manager)).unwrap();
        run(&mut s, 3, join("n3", 3, NodeRole::Manager)).unwrap();
        run(&mut s, 4, join("w", 4, NodeRole::Worker)).unwrap();
        assert_eq!(s.manager_count(), 3);
        s.take_events();
        let force = |id: &str| Command::ForceNewCluster { node_id: id.into() };
        assert!(run(&mut s, 5, force("nope")).is_err());
        run(&mut s, 6, force("n1")).unwrap();
        assert_eq!(s.manager_count(), 1);
        for id in ["n2", "n3"] {
            let n = s.nodes.get(id).unwrap();
            assert_eq!(n.spec.role, NodeRole::Worker, "{id}");
            assert!(n.manager_status.is_none(), "{id}");
            assert_eq!(n.status.state, NodeState::Down, "{id}");
            assert_eq!(n.version.index, 6);
        }
        // Nodes and how to reach them are kept; the worker and the survivor are untouched.
        assert_eq!(s.nodes.len(), 4);
        assert_eq!(s.members.len(), 4);
        assert_eq!(s.nodes.get("w").unwrap().status.state, NodeState::Ready);
        assert_eq!(s.nodes.get("n1").unwrap().spec.role, NodeRole::Manager);
        assert_eq!(s.take_events().len(), 2);
        // The last manager still cannot be demoted, and the others can be removed.
        run(
            &mut s,
            7,
            Command::RemoveNode {
                id: "n2".into(),
                force: false,
            },
        )
        .unwrap();
    }

    #[test]
    fn a_second_service_with_the_same_name_is_refused_and_changes_nothing() {
        let mut s = cluster();
        run(&mut s, 2, service("a", "web", &[])).unwrap();
        s.take_events();
        let err = run(&mut s, 3, service("b", "web", &[])).unwrap_err();
        assert_eq!(err.to_string(), "service with name web already exists");
        assert_eq!(s.services.len(), 1);
        assert!(s.take_events().is_empty());
    }

    #[test]
    fn versions_are_log_indexes_and_stale_updates_are_out_of_sequence() {
        let mut s = cluster();
        run(&mut s, 7, service("a", "web", &[])).unwrap();
        assert_eq!(s.services.get("a").unwrap().version.index, 7);
        let spec = s.services.get("a").unwrap().spec.clone();
        let update = |version| Command::UpdateService {
            rollback_reason: None,
            id: "a".into(),
            version,
            spec: Box::new(spec.clone()),
            rollback: false,
        };
        run(&mut s, 9, update(7)).unwrap();
        let svc = s.services.get("a").unwrap();
        assert_eq!(svc.version.index, 9);
        assert!(svc.previous_spec.is_some());
        let err = run(&mut s, 10, update(7)).unwrap_err();
        assert!(
            err.to_string().starts_with("update out of sequence"),
            "{err}"
        );
    }

    #[test]
    fn removing_a_secret_in_use_names_the_services() {
        let mut s = cluster();
        let secret = Command::CreateSecret {
            secret: Box::new(Secret {
                id: "s1".into(),
                spec: SecretSpec {
                    name: "db-pass".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        };
        run(&mut s, 2, secret).unwrap();
        let mut cmd = service("a", "api", &[]);
        if let Command::CreateService { service } = &mut cmd {
            if let Some(cs) = service.spec.task_template.container_spec.as_mut() {
                cs.secrets.push(SecretReference {
                    secret_id: "s1".into(),
                    secret_name: "db-pass".into(),
                    ..Default::default()
                });
            }
        }
        run(&mut s, 3, cmd).unwrap();
        let err = run(&mut s, 4, Command::RemoveSecret { id: "s1".into() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret 'db-pass' is in use by the following service: api"
        );
        run(&mut s, 5, Command::RemoveService { id: "a".into() }).unwrap();
        run(&mut s, 6, Command::RemoveSecret { id: "s1".into() }).unwrap();
    }

    #[test]
    fn published_ports_are_unique_and_dynamic_ones_come_from_the_swarm_range() {
        let mut s = cluster();
        run(&mut s, 2, service("a", "web", &[(80, 8080), (81, 0)])).unwrap();
        let ports = &s.services.get("a").unwrap().endpoint.ports;
        assert_eq!(ports[0].published_port, 8080);
        assert_eq!(ports[1].published_port, 30000);
        let err = run(&mut s, 3, service("b", "other", &[(80, 8080)])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("port '8080' is already in use by service 'web'"),
            "{err}"
        );
        run(&mut s, 4, service("c", "third", &[(80, 0)])).unwrap();
        assert_eq!(
            s.services.get("c").unwrap().endpoint.ports[0].published_port,
            30001
        );
        let err = run(
            &mut s,
            5,
            Command::RemoveNetwork {
                id: "ingress".into(),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("depends on it"), "{err}");
    }

    #[test]
    fn the_state_survives_a_snapshot_round_trip_with_its_name_index() {
        let mut s = cluster();
        run(&mut s, 2, service("a", "web", &[(80, 8080)])).unwrap();
        let bytes = serde_json::to_vec(&s).unwrap();
        let mut back: State = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.services.resolve("web").unwrap().id, "a");
        assert!(run(&mut back, 3, service("b", "web", &[])).is_err());
        assert_eq!(back.members.get("n1").unwrap().raft_id, 1);
    }

    #[test]
    fn ids_resolve_by_full_id_name_or_unique_prefix() {
        let mut s = cluster();
        run(&mut s, 2, service("abc1", "one", &[])).unwrap();
        run(&mut s, 3, service("abd2", "two", &[])).unwrap();
        assert_eq!(s.services.resolve("abc").unwrap().spec.name, "one");
        assert_eq!(s.services.resolve("two").unwrap().id, "abd2");
        assert!(matches!(
            s.services.resolve("ab"),
            Err(StoreError::Ambiguous { count: 2, .. })
        ));
        assert!(matches!(
            s.services.resolve("zz"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
