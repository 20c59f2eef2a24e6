//! Stacks as objects of the state: a stack's source, the rendered specs of what it owns and
//! its last [`KEEP_VERSIONS`] versions, and the one command that deploys all of it or none.
//!
//! A stack owns the networks, configs, secrets and services labelled
//! `com.docker.stack.namespace=NAME` (Docker's convention, so stacks made by `docker stack
//! deploy` are recognised too). A deploy makes the owned objects exactly what the stack says:
//! missing ones are created, changed ones updated (a service's update rolls with its update
//! settings), unchanged ones are not touched, and owned objects that left the stack are
//! removed. Every problem is found before anything changes ([`check`], a pure function of the
//! state and the deploy); what only applying can tell (published-port clashes, address pools)
//! is collected while applying, and then everything is put back as it was.

use crate::command::Command;
use crate::error::{Kind, StoreError};
use crate::state::{EventAction, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shoal_types::stack::{ObjectKind, StackChange, StackSpec, NAMESPACE_LABEL};
use shoal_types::swarm::{Config, Network, Secret, Service, ServiceSpec, Version};
use std::collections::{BTreeMap, BTreeSet};

/// Versions kept per stack.
pub const KEEP_VERSIONS: usize = 10;

/// A stack the managers hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The Raft index of its last write.
    pub version: Version,
    /// Oldest first, at most [`KEEP_VERSIONS`].
    pub versions: Vec<StackVersion>,
}

impl Stack {
    pub fn current(&self) -> Option<&StackVersion> {
        self.versions.last()
    }

    pub fn version(&self, number: u64) -> Option<&StackVersion> {
        self.versions.iter().find(|v| v.number == number)
    }
}

/// One deploy of a stack: what was asked for (secret data sealed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackVersion {
    pub number: u64,
    pub created_at: DateTime<Utc>,
    /// `deploy`, or `rollback to version N`.
    pub note: String,
    pub spec: StackSpec,
}

/// What [`Command::DeployStack`] carries: the stack as stored, and its objects ready to be
/// created (fresh IDs, specs normalised by the control API), in the order of the spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StackDeploy {
    pub spec: StackSpec,
    pub networks: Vec<Network>,
    pub configs: Vec<Config>,
    pub secrets: Vec<Secret>,
    /// Their references to networks, configs and secrets are by name, resolved here.
    pub services: Vec<Service>,
    /// Secrets of the stack that exist with the same data: only a manager holding the data key
    /// can tell, so the proposer decides (their sealed data is the stored one).
    #[serde(default)]
    pub unchanged_secrets: BTreeSet<String>,
    pub note: String,
}

/// Is this object (by its labels) part of stack `stack`?
pub fn owned(labels: &BTreeMap<String, String>, stack: &str) -> bool {
    labels.get(NAMESPACE_LABEL).is_some_and(|s| s == stack)
}

fn at(pos: &str) -> String {
    if pos.is_empty() {
        String::new()
    } else {
        format!("{pos}: ")
    }
}

fn refused(stack: &str, problems: Vec<String>) -> StoreError {
    StoreError::StackRefused {
        stack: stack.to_string(),
        problems,
    }
}

/// The stacks in the state: those stored, and those only labels tell of (made by the docker
/// CLI), with how many services each has.
pub fn stack_names(state: &State) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> =
        state.stacks.keys().map(|k| (k.clone(), 0)).collect();
    for s in state.services.iter() {
        if let Some(ns) = s.spec.labels.get(NAMESPACE_LABEL) {
            *out.entry(ns.clone()).or_default() += 1;
        }
    }
    for ns in state
        .networks
        .iter()
        .filter_map(|n| n.spec.labels.get(NAMESPACE_LABEL))
        .chain(
            state
                .configs
                .iter()
                .filter_map(|c| c.spec.labels.get(NAMESPACE_LABEL)),
        )
        .chain(
            state
                .secrets
                .iter()
                .filter_map(|c| c.spec.labels.get(NAMESPACE_LABEL)),
        )
    {
        out.entry(ns.clone()).or_default();
    }
    out
}

/// Everything wrong with deploying `d` on `state`, each with the Compose position of what it
/// is about; empty when the deploy can go ahead. Changes nothing.
pub fn check(state: &State, d: &StackDeploy) -> Vec<String> {
    let stack = d.spec.name.as_str();
    let mut problems = Vec::new();
    if stack.is_empty() {
        problems.push("a stack needs a name".to_string());
    }
    if d.networks.len() != d.spec.networks.len()
        || d.configs.len() != d.spec.configs.len()
        || d.secrets.len() != d.spec.secrets.len()
        || d.services.len() != d.spec.services.len()
    {
        problems.push("the stack's objects do not match its spec".to_string());
        return problems;
    }
    let pos_of = |kind: ObjectKind, name: &str| -> String {
        let pos = match kind {
            ObjectKind::Network => d
                .spec
                .networks
                .iter()
                .find(|n| n.spec.name == name)
                .map(|n| &n.pos),
            ObjectKind::Config => d
                .spec
                .configs
                .iter()
                .find(|n| n.spec.name == name)
                .map(|n| &n.pos),
            ObjectKind::Secret => d
                .spec
                .secrets
                .iter()
                .find(|n| n.spec.name == name)
                .map(|n| &n.pos),
            ObjectKind::Service => d
                .spec
                .services
                .iter()
                .find(|n| n.spec.name == name)
                .map(|n| &n.pos),
        };
        at(pos.map(String::as_str).unwrap_or_default())
    };
    // Names given twice.
    for (kind, names) in [
        (
            ObjectKind::Network,
            d.networks.iter().map(|n| n.spec.name.as_str()).collect(),
        ),
        (
            ObjectKind::Config,
            d.configs.iter().map(|n| n.spec.name.as_str()).collect(),
        ),
        (
            ObjectKind::Secret,
            d.secrets.iter().map(|n| n.spec.name.as_str()).collect(),
        ),
        (
            ObjectKind::Service,
            d.services
                .iter()
                .map(|n| n.spec.name.as_str())
                .collect::<Vec<_>>(),
        ),
    ] {
        let mut seen = BTreeSet::new();
        for n in names {
            if !seen.insert(n) {
                problems.push(format!("{}{kind} {n} is defined twice", pos_of(kind, n)));
            }
        }
    }

    // What the stack needs but does not own.
    let users = |kind: ObjectKind, name: &str| -> Vec<String> {
        d.services
            .iter()
            .filter(|s| refs(&s.spec, kind).contains(name))
            .map(|s| s.spec.name.clone())
            .collect()
    };
    for e in &d.spec.external {
        let exists = match e.kind {
            ObjectKind::Network => state
                .networks
                .by_name(&e.name)
                .or_else(|| state.networks.get(&e.name))
                .is_some(),
            ObjectKind::Config => state.configs.by_name(&e.name).is_some(),
            ObjectKind::Secret => state.secrets.by_name(&e.name).is_some(),
            ObjectKind::Service => true,
        };
        if !exists {
            let used = users(e.kind, &e.name);
            let used = if used.is_empty() {
                String::new()
            } else {
                format!(" (used by {})", used.join(", "))
            };
            let how = match e.kind {
                ObjectKind::Network => format!("docker network create -d overlay {}", e.name),
                ObjectKind::Config => format!("docker config create {} FILE", e.name),
                _ => format!("docker secret create {} FILE", e.name),
            };
            problems.push(format!(
                "{}{} {} is declared as external, but could not be found{used}: create it first (`{how}`)",
                at(&e.pos),
                e.kind,
                e.name
            ));
        }
    }

    // Names taken by objects of another stack (or of none), and what cannot change.
    let foreign = |kind: ObjectKind, name: &str, labels: &BTreeMap<String, String>| {
        (!owned(labels, stack)).then(|| {
            let whose = match labels.get(NAMESPACE_LABEL) {
                Some(other) => format!("stack {other}"),
                None => "no stack".to_string(),
            };
            format!(
                "{}{kind} {name} already exists and belongs to {whose}, not to stack {stack}",
                pos_of(kind, name)
            )
        })
    };
    for n in &d.networks {
        let name = &n.spec.name;
        let Some(current) = state.networks.by_name(name) else {
            continue;
        };
        if let Some(p) = foreign(ObjectKind::Network, name, &current.spec.labels) {
            problems.push(p);
            continue;
        }
        let differs = network_differences(current, n);
        if !differs.is_empty() {
            problems.push(format!(
                "{}network {name}: {} changed; a swarm network cannot be updated: remove the stack (or give the network a new name) to change it",
                pos_of(ObjectKind::Network, name),
                differs.join(", ")
            ));
        }
    }
    for c in &d.configs {
        let name = &c.spec.name;
        let Some(current) = state.configs.by_name(name) else {
            continue;
        };
        if let Some(p) = foreign(ObjectKind::Config, name, &current.spec.labels) {
            problems.push(p);
        } else if current.spec.data != c.spec.data {
            problems.push(format!(
                "{}config {name}: its content changed, and a config cannot change in Swarm: give it a new name (`name: {name}_v2`) so that the services move to it",
                pos_of(ObjectKind::Config, name)
            ));
        }
    }
    for s in &d.secrets {
        let name = &s.spec.name;
        let Some(current) = state.secrets.by_name(name) else {
            continue;
        };
        if let Some(p) = foreign(ObjectKind::Secret, name, &current.spec.labels) {
            problems.push(p);
        } else if !d.unchanged_secrets.contains(name) {
            problems.push(format!(
                "{}secret {name}: its content changed, and a secret cannot change in Swarm: give it a new name (`name: {name}_v2`) so that the services move to it",
                pos_of(ObjectKind::Secret, name)
            ));
        }
    }
    let stack_names = |kind: ObjectKind| -> BTreeSet<&str> {
        match kind {
            ObjectKind::Network => d.networks.iter().map(|n| n.spec.name.as_str()).collect(),
            ObjectKind::Config => d.configs.iter().map(|n| n.spec.name.as_str()).collect(),
            ObjectKind::Secret => d.secrets.iter().map(|n| n.spec.name.as_str()).collect(),
            ObjectKind::Service => d.services.iter().map(|n| n.spec.name.as_str()).collect(),
        }
    };
    let declared_external: BTreeSet<(ObjectKind, &str)> = d
        .spec
        .external
        .iter()
        .map(|e| (e.kind, e.name.as_str()))
        .collect();
    for s in &d.services {
        let name = &s.spec.name;
        if let Some(current) = state.services.by_name(name) {
            if let Some(p) = foreign(ObjectKind::Service, name, &current.spec.labels) {
                problems.push(p);
            } else if crate::state::mode_kind(&current.spec.mode)
                != crate::state::mode_kind(&s.spec.mode)
            {
                problems.push(format!(
                    "{}service {name}: its mode changed (replicated, global, job), which Swarm cannot update: remove the service from the stack, deploy, then add it back",
                    pos_of(ObjectKind::Service, name)
                ));
            }
        }
        for kind in [ObjectKind::Network, ObjectKind::Config, ObjectKind::Secret] {
            let own = stack_names(kind);
            for r in refs(&s.spec, kind) {
                if own.contains(r.as_str()) || declared_external.contains(&(kind, r.as_str())) {
                    continue;
                }
                let exists = match kind {
                    ObjectKind::Network => state
                        .networks
                        .by_name(&r)
                        .or_else(|| state.networks.get(&r))
                        .is_some(),
                    ObjectKind::Config => state.configs.by_name(&r).is_some(),
                    _ => state.secrets.by_name(&r).is_some(),
                };
                if !exists {
                    problems.push(format!(
                        "{}service {name}: {kind} {r} is neither part of the stack nor in the cluster",
                        pos_of(ObjectKind::Service, name)
                    ));
                }
            }
        }
    }

    // Objects that leave the stack must not be in use by services that stay.
    let staying: Vec<&ServiceSpec> = state
        .services
        .iter()
        .filter(|s| !owned(&s.spec.labels, stack))
        .map(|s| &s.spec)
        .collect();
    let in_use = |kind: ObjectKind, id: &str, name: &str| -> Vec<String> {
        staying
            .iter()
            .filter(|s| {
                let r = refs_and_ids(s, kind);
                r.contains(id) || r.contains(name)
            })
            .map(|s| s.name.clone())
            .collect()
    };
    for (kind, id, name) in leaving(state, d) {
        let users = in_use(kind, &id, &name);
        if !users.is_empty() {
            problems.push(format!(
                "{kind} {name} is no longer part of stack {stack}, but services outside the stack use it: {}",
                users.join(", ")
            ));
        }
    }
    problems
}

/// The objects owned by the stack that are not in `d`: (kind, ID, name).
fn leaving(state: &State, d: &StackDeploy) -> Vec<(ObjectKind, String, String)> {
    let stack = d.spec.name.as_str();
    let keep = |kind: ObjectKind, name: &str| match kind {
        ObjectKind::Network => d.networks.iter().any(|n| n.spec.name == name),
        ObjectKind::Config => d.configs.iter().any(|n| n.spec.name == name),
        ObjectKind::Secret => d.secrets.iter().any(|n| n.spec.name == name),
        ObjectKind::Service => d.services.iter().any(|n| n.spec.name == name),
    };
    owned_objects(state, stack)
        .into_iter()
        .filter(|(kind, _, name)| !keep(*kind, name))
        .collect()
}

/// Every object labelled with the stack's namespace, services first, networks last (the order
/// they can be removed in): (kind, ID, name).
pub fn owned_objects(state: &State, stack: &str) -> Vec<(ObjectKind, String, String)> {
    let mut out = Vec::new();
    out.extend(
        state
            .services
            .iter()
            .filter(|s| owned(&s.spec.labels, stack))
            .map(|s| (ObjectKind::Service, s.id.clone(), s.spec.name.clone())),
    );
    out.extend(
        state
            .configs
            .iter()
            .filter(|s| owned(&s.spec.labels, stack))
            .map(|s| (ObjectKind::Config, s.id.clone(), s.spec.name.clone())),
    );
    out.extend(
        state
            .secrets
            .iter()
            .filter(|s| owned(&s.spec.labels, stack))
            .map(|s| (ObjectKind::Secret, s.id.clone(), s.spec.name.clone())),
    );
    out.extend(
        state
            .networks
            .iter()
            .filter(|s| owned(&s.spec.labels, stack))
            .map(|s| (ObjectKind::Network, s.id.clone(), s.spec.name.clone())),
    );
    out
}

/// The names (or IDs) a service spec refers to, of one kind.
fn refs(spec: &ServiceSpec, kind: ObjectKind) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    match kind {
        ObjectKind::Network => {
            for a in spec.task_template.networks.iter().chain(spec.networks.iter()) {
                out.insert(a.target.clone());
            }
        }
        ObjectKind::Config => {
            if let Some(cs) = &spec.task_template.container_spec {
                out.extend(cs.configs.iter().map(|r| {
                    if r.config_name.is_empty() {
                        r.config_id.clone()
                    } else {
                        r.config_name.clone()
                    }
                }));
            }
        }
        ObjectKind::Secret => {
            if let Some(cs) = &spec.task_template.container_spec {
                out.extend(cs.secrets.iter().map(|r| {
                    if r.secret_name.is_empty() {
                        r.secret_id.clone()
                    } else {
                        r.secret_name.clone()
                    }
                }));
            }
        }
        ObjectKind::Service => {}
    }
    out
}

/// Names and IDs a stored service spec refers to, of one kind.
fn refs_and_ids(spec: &ServiceSpec, kind: ObjectKind) -> BTreeSet<String> {
    let mut out = refs(spec, kind);
    if let Some(cs) = &spec.task_template.container_spec {
        match kind {
            ObjectKind::Config => out.extend(cs.configs.iter().map(|r| r.config_id.clone())),
            ObjectKind::Secret => out.extend(cs.secrets.iter().map(|r| r.secret_id.clone())),
            _ => {}
        }
    }
    out
}

/// What differs between a network and the one a stack asks for, among what a stack can say.
fn network_differences(current: &Network, wanted: &Network) -> Vec<&'static str> {
    let mut out = Vec::new();
    if current.spec.internal != wanted.spec.internal {
        out.push("internal");
    }
    if current.spec.attachable != wanted.spec.attachable {
        out.push("attachable");
    }
    let opts = |n: &Network| {
        n.spec
            .driver_configuration
            .as_ref()
            .map(|d| (d.name.clone(), d.options.clone()))
            .unwrap_or_default()
    };
    let (cur_driver, cur_opts) = opts(current);
    let (new_driver, new_opts) = opts(wanted);
    if cur_driver != new_driver && !(cur_driver.is_empty() || new_driver.is_empty()) {
        out.push("driver");
    }
    if cur_opts != new_opts {
        out.push("driver_opts");
    }
    out
}

/// The spec paths (`TaskTemplate.ContainerSpec.Image`) where two JSON values differ.
pub fn changed_paths(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        &p,
                        out,
                    );
                }
            }
            _ if a == b => {}
            _ => out.push(path.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(a, b, "", &mut out);
    out
}

/// What a stack deploy may change, kept so that a refused one can be put back.
struct Checkpoint {
    services: crate::table::Table<Service>,
    tasks: crate::table::Table<shoal_types::swarm::Task>,
    networks: crate::table::Table<Network>,
    configs: crate::table::Table<Config>,
    secrets: crate::table::Table<Secret>,
    ip_cursors: BTreeMap<String, u32>,
}

impl State {
    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            services: self.services.clone(),
            tasks: self.tasks.clone(),
            networks: self.networks.clone(),
            configs: self.configs.clone(),
            secrets: self.secrets.clone(),
            ip_cursors: self.ip_cursors.clone(),
        }
    }

    fn restore(&mut self, c: Checkpoint) {
        self.services = c.services;
        self.tasks = c.tasks;
        self.networks = c.networks;
        self.configs = c.configs;
        self.secrets = c.secrets;
        self.ip_cursors = c.ip_cursors;
    }

    /// Deploys a whole stack at `index`: every owned object as the stack says, or, when
    /// anything is wrong, nothing at all and every problem listed. Returns what changed.
    pub fn deploy_stack(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        d: &StackDeploy,
    ) -> Result<Vec<StackChange>, StoreError> {
        self.cluster()?;
        let stack = d.spec.name.clone();
        let problems = check(self, d);
        if !problems.is_empty() {
            return Err(refused(&stack, problems));
        }
        let checkpoint = self.checkpoint();
        let mut problems = Vec::new();
        let changes = self.deploy_objects(index, at, d, &mut problems);
        if !problems.is_empty() {
            self.restore(checkpoint);
            return Err(refused(&stack, problems));
        }
        let changed = changes.iter().any(|c| c.action != "unchanged");
        let entry = self.stacks.entry(stack.clone()).or_insert_with(|| Stack {
            name: stack.clone(),
            created_at: at,
            ..Default::default()
        });
        let same_spec = entry.current().is_some_and(|v| v.spec == d.spec);
        if changed || !same_spec {
            let number = entry.current().map_or(1, |v| v.number + 1);
            entry.versions.push(StackVersion {
                number,
                created_at: at,
                note: d.note.clone(),
                spec: d.spec.clone(),
            });
            let extra = entry.versions.len().saturating_sub(KEEP_VERSIONS);
            entry.versions.drain(..extra);
            entry.updated_at = at;
            entry.version = Version { index };
            let action = if number == 1 {
                EventAction::Create
            } else {
                EventAction::Update
            };
            self.event(Kind::Stack, action, &stack, index);
        }
        Ok(changes)
    }

    fn deploy_objects(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        d: &StackDeploy,
        problems: &mut Vec<String>,
    ) -> Vec<StackChange> {
        let stack = d.spec.name.as_str();
        let mut changes = Vec::new();
        let change = |action: &str, kind: ObjectKind, name: &str| StackChange {
            action: action.into(),
            kind,
            name: name.into(),
            paths: Vec::new(),
        };
        let mut fail = |pos: &str, kind: ObjectKind, name: &str, e: StoreError| {
            problems.push(format!("{}{kind} {name}: {e}", at_pos(pos)));
        };
        for (n, item) in d.networks.iter().zip(&d.spec.networks) {
            let name = &n.spec.name;
            if self.networks.by_name(name).is_some() {
                changes.push(change("unchanged", ObjectKind::Network, name));
                continue;
            }
            match self.create_network(index, at, n) {
                Ok(_) => changes.push(change("create", ObjectKind::Network, name)),
                Err(e) => fail(&item.pos, ObjectKind::Network, name, e),
            }
        }
        for (c, item) in d.configs.iter().zip(&d.spec.configs) {
            let name = &c.spec.name;
            let cmd = match self.configs.by_name(name) {
                Some(cur) if cur.spec.labels == c.spec.labels => {
                    changes.push(change("unchanged", ObjectKind::Config, name));
                    continue;
                }
                Some(cur) => Command::UpdateConfig {
                    id: cur.id.clone(),
                    version: cur.version.index,
                    spec: Box::new(c.spec.clone()),
                },
                None => Command::CreateConfig {
                    config: Box::new(c.clone()),
                },
            };
            let action = action_of(&cmd);
            match self.apply_cmd(index, at, &cmd) {
                Ok(_) => changes.push(change(action, ObjectKind::Config, name)),
                Err(e) => fail(&item.pos, ObjectKind::Config, name, e),
            }
        }
        for (s, item) in d.secrets.iter().zip(&d.spec.secrets) {
            let name = &s.spec.name;
            let cmd = match self.secrets.by_name(name) {
                Some(cur) if cur.spec.labels == s.spec.labels => {
                    changes.push(change("unchanged", ObjectKind::Secret, name));
                    continue;
                }
                Some(cur) => {
                    let mut spec = s.spec.clone();
                    spec.data = None;
                    Command::UpdateSecret {
                        id: cur.id.clone(),
                        version: cur.version.index,
                        spec: Box::new(spec),
                    }
                }
                None => Command::CreateSecret {
                    secret: Box::new(s.clone()),
                },
            };
            let action = action_of(&cmd);
            match self.apply_cmd(index, at, &cmd) {
                Ok(_) => changes.push(change(action, ObjectKind::Secret, name)),
                Err(e) => fail(&item.pos, ObjectKind::Secret, name, e),
            }
        }
        for (s, item) in d.services.iter().zip(&d.spec.services) {
            let name = &s.spec.name;
            let mut spec = s.spec.clone();
            if let Err(e) = self.resolve_stack_refs(&mut spec) {
                fail(&item.pos, ObjectKind::Service, name, e);
                continue;
            }
            let (cmd, paths) = match self.services.by_name(name) {
                Some(cur) => {
                    // As the docker CLI does: a deploy never forces an update by itself.
                    spec.task_template.force_update = cur.spec.task_template.force_update;
                    if cur.spec == spec {
                        changes.push(change("unchanged", ObjectKind::Service, name));
                        continue;
                    }
                    let paths = changed_paths(
                        &serde_json::to_value(&cur.spec).unwrap_or_default(),
                        &serde_json::to_value(&spec).unwrap_or_default(),
                    );
                    (
                        Command::UpdateService {
                            id: cur.id.clone(),
                            version: cur.version.index,
                            spec: Box::new(spec),
                            rollback: false,
                            rollback_reason: None,
                        },
                        paths,
                    )
                }
                None => (
                    Command::CreateService {
                        service: Box::new(Service {
                            spec,
                            ..s.clone()
                        }),
                    },
                    Vec::new(),
                ),
            };
            let action = action_of(&cmd);
            match self.apply_cmd(index, at, &cmd) {
                Ok(_) => changes.push(StackChange {
                    paths,
                    ..change(action, ObjectKind::Service, name)
                }),
                Err(e) => fail(&item.pos, ObjectKind::Service, name, e),
            }
        }
        for (kind, id, name) in leaving(self, d) {
            match self.remove_object(index, at, kind, &id) {
                Ok(()) => changes.push(change("remove", kind, &name)),
                Err(e) => fail("", kind, &name, e),
            }
        }
        let _ = stack;
        changes
    }

    fn remove_object(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        kind: ObjectKind,
        id: &str,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        let cmd = match kind {
            ObjectKind::Service => Command::RemoveService { id },
            ObjectKind::Config => Command::RemoveConfig { id },
            ObjectKind::Secret => Command::RemoveSecret { id },
            ObjectKind::Network => Command::RemoveNetwork { id },
        };
        self.apply_cmd(index, at, &cmd).map(|_| ())
    }

    /// A stack's service names its networks, configs and secrets; the state refers by ID.
    fn resolve_stack_refs(&self, spec: &mut ServiceSpec) -> Result<(), StoreError> {
        for a in spec
            .task_template
            .networks
            .iter_mut()
            .chain(spec.networks.iter_mut())
        {
            let n = self
                .networks
                .by_name(&a.target)
                .or_else(|| self.networks.get(&a.target))
                .ok_or_else(|| StoreError::Invalid(format!("network {} not found", a.target)))?;
            a.target = n.id.clone();
        }
        if let Some(cs) = &mut spec.task_template.container_spec {
            for r in &mut cs.secrets {
                let s = self
                    .secrets
                    .by_name(&r.secret_name)
                    .or_else(|| self.secrets.get(&r.secret_id))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("secret not found: {}", r.secret_name))
                    })?;
                r.secret_id = s.id.clone();
                r.secret_name = s.spec.name.clone();
            }
            for r in &mut cs.configs {
                let c = self
                    .configs
                    .by_name(&r.config_name)
                    .or_else(|| self.configs.get(&r.config_id))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("config not found: {}", r.config_name))
                    })?;
                r.config_id = c.id.clone();
                r.config_name = c.spec.name.clone();
            }
        }
        Ok(())
    }

    /// Removes every object of the stack and its versions, or nothing.
    pub fn remove_stack(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        stack: &str,
    ) -> Result<Vec<StackChange>, StoreError> {
        let objects = owned_objects(self, stack);
        if objects.is_empty() && !self.stacks.contains_key(stack) {
            return Err(StoreError::NotFound {
                kind: Kind::Stack,
                key: stack.to_string(),
            });
        }
        let checkpoint = self.checkpoint();
        let mut problems = Vec::new();
        let mut changes = Vec::new();
        for (kind, id, name) in objects {
            match self.remove_object(index, at, kind, &id) {
                Ok(()) => changes.push(StackChange {
                    action: "remove".into(),
                    kind,
                    name,
                    paths: Vec::new(),
                }),
                Err(e) => problems.push(format!("{kind} {name}: {e}")),
            }
        }
        if !problems.is_empty() {
            self.restore(checkpoint);
            return Err(StoreError::StackNotRemoved {
                stack: stack.to_string(),
                problems,
            });
        }
        if self.stacks.remove(stack).is_some() {
            self.event(Kind::Stack, EventAction::Remove, stack, index);
        }
        Ok(changes)
    }
}

fn at_pos(pos: &str) -> String {
    at(pos)
}

fn action_of(cmd: &Command) -> &'static str {
    match cmd {
        Command::CreateService { .. }
        | Command::CreateConfig { .. }
        | Command::CreateSecret { .. } => "create",
        _ => "update",
    }
}

/// What `stack history` shows of a stored stack (no data of configs or secrets).
pub fn info(stack: &Stack) -> shoal_types::stack::StackInfo {
    use shoal_types::stack::{StackInfo, StackVersionInfo};
    StackInfo {
        name: stack.name.clone(),
        version: stack.current().map(|v| v.number).unwrap_or_default(),
        versions: stack
            .versions
            .iter()
            .map(|v| StackVersionInfo {
                version: v.number,
                created_at: v.created_at,
                note: v.note.clone(),
                services: v.spec.services.iter().map(|s| s.spec.name.clone()).collect(),
                networks: v.spec.networks.iter().map(|s| s.spec.name.clone()).collect(),
                configs: v.spec.configs.iter().map(|s| s.spec.name.clone()).collect(),
                secrets: v.spec.secrets.iter().map(|s| s.spec.name.clone()).collect(),
                files: v.spec.source.files.iter().map(|f| f.name.clone()).collect(),
            })
            .collect(),
    }
}

/// `GET /shoal/v1/stacks`: every stack, stored or only labelled.
pub fn summaries(state: &State) -> Vec<shoal_types::stack::StackSummary> {
    stack_names(state)
        .into_iter()
        .map(|(name, services)| {
            let stored = state.stacks.get(&name);
            shoal_types::stack::StackSummary {
                version: stored
                    .and_then(|s| s.current().map(|v| v.number))
                    .unwrap_or_default(),
                updated_at: stored.map(|s| s.updated_at),
                name,
                services,
            }
        })
        .collect()
}
