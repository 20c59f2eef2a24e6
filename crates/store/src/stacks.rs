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
use shoal_types::stack::{ObjectKind, StackChange, StackSpec, NAMESPACE_LABEL, ROTATED_FROM_LABEL};
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
    /// `--with-registry-auth`: the credentials of each service (by name), sealed with the data
    /// key (empty: none, which clears what the service had). Services not named keep theirs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registry_auth: BTreeMap<String, SealedAuth>,
}

/// Sealed registry credentials (`Debug` shows no bytes).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SealedAuth(#[serde(with = "shoal_types::bytes_b64")] pub Vec<u8>);

impl std::fmt::Debug for SealedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedAuth(..)")
    }
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
    let mut out: BTreeMap<String, usize> = state.stacks.keys().map(|k| (k.clone(), 0)).collect();
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
                "{}config {name}: its content changed, and Swarm refuses that (only updates to Labels are allowed): give it a new name (`name: {name}_v2`) so that the services move to it, or deploy with --rotate",
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
                "{}secret {name}: its content changed, and Swarm refuses that (only updates to Labels are allowed): give it a new name (`name: {name}_v2`) so that the services move to it, or deploy with --rotate",
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
            } else if crate::services::mode_kind(&current.spec.mode)
                != crate::services::mode_kind(&s.spec.mode)
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

/// Compose's `depends_on: {NAME: {restart: true}}`: a service restarts (its force-update
/// counter moves) when the deploy updates one of the dependencies it marked so.
fn restarts_with(spec: &ServiceSpec, updated: &BTreeSet<String>) -> bool {
    spec.labels
        .get(shoal_types::depends::LABEL)
        .and_then(|l| shoal_types::depends::decode(l).ok())
        .is_some_and(|deps| {
            deps.iter()
                .any(|d| d.restart && updated.contains(&d.service))
        })
}

/// A config or secret that left the stack (typically rotated out) stays while a service's
/// previous spec refers to it: `docker service rollback`, or an update that fails and rolls
/// back, needs it. A later deploy removes it once nothing refers to it (see docs/decisions.md,
/// "Rotation on the managers").
fn kept_for_rollback(state: &State, kind: ObjectKind, id: &str) -> bool {
    if !matches!(kind, ObjectKind::Config | ObjectKind::Secret) {
        return false;
    }
    state.services.iter().any(|s| {
        s.previous_spec
            .as_ref()
            .is_some_and(|p| refs_and_ids(p, kind).contains(id))
    })
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
            for a in spec
                .task_template
                .networks
                .iter()
                .chain(spec.networks.iter())
            {
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

/// The lines that say how two specs (as JSON) differ, one per changed leaf:
/// `~ TaskTemplate.ContainerSpec.Image: "a" -> "b"`.
pub fn changed_paths(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    json_diff("", a, b, &mut out);
    out
}

/// True for what the API treats as "not set": null, `{}`, `[]`, `""`.
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.values().all(is_unset),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One line per changed leaf: `~ PATH: OLD -> NEW`, `+ PATH: NEW`, `- PATH: OLD`. Unset
/// values (null, empty) count as absent.
pub fn json_diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (is_unset(old), is_unset(new)) {
        (true, true) => return,
        (true, false) => {
            out.push(format!("+ {path}: {}", compact(new)));
            return;
        }
        (false, true) => {
            out.push(format!("- {path}: {}", compact(old)));
            return;
        }
        (false, false) => {}
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                json_diff(
                    &join(path, key),
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => json_diff(&p, x, y, out),
                    (Some(x), None) => out.push(format!("- {p}: {}", compact(x))),
                    (None, Some(y)) => out.push(format!("+ {p}: {}", compact(y))),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => out.push(format!("~ {path}: {} -> {}", compact(a), compact(b))),
        _ => {}
    }
}

/// What a stack deploy may change, kept so that a refused one can be put back.
struct Checkpoint {
    services: crate::table::Table<Service>,
    tasks: crate::table::Table<shoal_types::swarm::Task>,
    networks: crate::table::Table<Network>,
    configs: crate::table::Table<Config>,
    secrets: crate::table::Table<Secret>,
    ip_cursors: BTreeMap<String, u32>,
    registry_auth: BTreeMap<String, crate::services::ServiceAuth>,
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
            registry_auth: self.registry_auth.clone(),
        }
    }

    fn restore(&mut self, c: Checkpoint) {
        self.services = c.services;
        self.tasks = c.tasks;
        self.networks = c.networks;
        self.configs = c.configs;
        self.secrets = c.secrets;
        self.ip_cursors = c.ip_cursors;
        self.registry_auth = c.registry_auth;
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
        let mut changes = Vec::new();
        let change = |action: &str, kind: ObjectKind, name: &str| StackChange {
            action: action.into(),
            kind,
            name: name.into(),
            ..Default::default()
        };
        // A config or secret created under a rotated name says which one it replaces.
        let created = |kind: ObjectKind, name: &str, labels: &BTreeMap<String, String>| match labels
            .get(ROTATED_FROM_LABEL)
        {
            Some(from) => StackChange {
                rotated_from: from.clone(),
                ..change("rotate", kind, name)
            },
            None => change("create", kind, name),
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
            let done = match action_of(&cmd) {
                "create" => created(ObjectKind::Config, name, &c.spec.labels),
                action => change(action, ObjectKind::Config, name),
            };
            match self.apply_cmd(index, at, &cmd) {
                Ok(_) => changes.push(done),
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
            let done = match action_of(&cmd) {
                "create" => created(ObjectKind::Secret, name, &s.spec.labels),
                action => change(action, ObjectKind::Secret, name),
            };
            match self.apply_cmd(index, at, &cmd) {
                Ok(_) => changes.push(done),
                Err(e) => fail(&item.pos, ObjectKind::Secret, name, e),
            }
        }
        // The services' specs as they will be stored, and which existing ones change.
        let wanted: Vec<Result<ServiceSpec, StoreError>> = d
            .services
            .iter()
            .map(|s| {
                let mut spec = s.spec.clone();
                self.resolve_stack_refs(&mut spec).map(|()| {
                    if let Some(cur) = self.services.by_name(&s.spec.name) {
                        // As the docker CLI does: a deploy never forces an update by itself.
                        spec.task_template.force_update = cur.spec.task_template.force_update;
                    }
                    spec
                })
            })
            .collect();
        let updated: BTreeSet<String> = wanted
            .iter()
            .filter_map(|w| {
                let spec = w.as_ref().ok()?;
                let cur = self.services.by_name(&spec.name)?;
                (cur.spec != *spec).then(|| spec.name.clone())
            })
            .collect();
        for ((s, item), spec) in d.services.iter().zip(&d.spec.services).zip(wanted) {
            let name = &s.spec.name;
            let mut spec = match spec {
                Ok(spec) => spec,
                Err(e) => {
                    fail(&item.pos, ObjectKind::Service, name, e);
                    continue;
                }
            };
            let auth = d.registry_auth.get(name);
            let (cmd, paths) = match self.services.by_name(name) {
                Some(cur) => {
                    if restarts_with(&spec, &updated) {
                        spec.task_template.force_update += 1;
                    }
                    if cur.spec == spec {
                        // New credentials alone replace no task (Swarm's rule too).
                        if let Some(sealed) = auth {
                            let id = cur.id.clone();
                            self.set_service_auth(&id, &sealed.0);
                        }
                        changes.push(change("unchanged", ObjectKind::Service, name));
                        continue;
                    }
                    let paths = changed_paths(
                        &serde_json::to_value(&cur.spec).unwrap_or_default(),
                        &serde_json::to_value(&spec).unwrap_or_default(),
                    );
                    (
                        Command::UpdateService {
                            registry_auth: auth.map_or(crate::AuthChange::Keep, |a| {
                                crate::AuthChange::Set(a.0.clone())
                            }),
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
                        registry_auth: auth.map(|a| a.0.clone()).unwrap_or_default(),
                        service: Box::new(Service { spec, ..s.clone() }),
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
            if kept_for_rollback(self, kind, &id) {
                continue;
            }
            match self.remove_object(index, at, kind, &id) {
                Ok(()) => changes.push(change("remove", kind, &name)),
                Err(e) => fail("", kind, &name, e),
            }
        }
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
                    ..Default::default()
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
                services: v
                    .spec
                    .services
                    .iter()
                    .map(|s| s.spec.name.clone())
                    .collect(),
                networks: v
                    .spec
                    .networks
                    .iter()
                    .map(|s| s.spec.name.clone())
                    .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Member, Request};
    use shoal_types::stack::{ExternalObject, StackItem};
    use shoal_types::swarm::{
        ConfigSpec, ContainerSpec, Driver, EndpointSpec, NetworkAttachmentConfig, NetworkSpec,
        Node, NodeRole, PortConfig, SecretReference, TaskSpec,
    };

    fn at0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn run(state: &mut State, index: u64, cmd: Command) -> crate::Response {
        state.apply(
            index,
            &Request {
                at: at0(),
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
                spec: NetworkSpec {
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

    fn labels(stack: &str) -> BTreeMap<String, String> {
        [(NAMESPACE_LABEL.to_string(), stack.to_string())].into()
    }

    /// Builds a deploy the way the control API does: `services` are (short name, image,
    /// published port, secrets used).
    struct Builder {
        d: StackDeploy,
        n: u32,
    }

    impl Builder {
        fn new(stack: &str) -> Self {
            let mut b = Builder {
                d: StackDeploy {
                    note: "deploy".into(),
                    ..Default::default()
                },
                n: 0,
            };
            b.d.spec.name = stack.into();
            b.network("default");
            b
        }
        fn id(&mut self) -> String {
            self.n += 1;
            format!("{}-{}", self.d.spec.name, self.n)
        }
        fn stack(&self) -> String {
            self.d.spec.name.clone()
        }
        fn network(&mut self, short: &str) -> &mut Self {
            let name = format!("{}_{short}", self.stack());
            let id = self.id();
            self.d.spec.networks.push(StackItem {
                spec: shoal_types::network::NetworkCreateRequest {
                    name: name.clone(),
                    labels: labels(&self.stack()),
                    ..Default::default()
                },
                pos: "stack.yml:20:3".to_string(),
            });
            self.d.networks.push(Network {
                id,
                spec: NetworkSpec {
                    name,
                    labels: labels(&self.stack()),
                    driver_configuration: Some(Driver {
                        name: "overlay".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            });
            self
        }
        fn config(&mut self, short: &str, data: &str) -> &mut Self {
            let spec = ConfigSpec {
                name: format!("{}_{short}", self.stack()),
                labels: labels(&self.stack()),
                data: data.as_bytes().to_vec(),
                ..Default::default()
            };
            let id = self.id();
            self.d.spec.configs.push(StackItem {
                spec: spec.clone(),
                pos: "stack.yml:30:3".into(),
            });
            self.d.configs.push(Config {
                id,
                spec,
                ..Default::default()
            });
            self
        }
        fn external_secret(&mut self, name: &str) -> &mut Self {
            self.d.spec.external.push(ExternalObject {
                kind: ObjectKind::Secret,
                name: name.into(),
                pos: "stack.yml:41:3".into(),
            });
            self
        }
        fn service(&mut self, short: &str, image: &str, port: u32, secrets: &[&str]) -> &mut Self {
            let stack = self.stack();
            let spec = ServiceSpec {
                name: format!("{stack}_{short}"),
                labels: labels(&stack),
                task_template: TaskSpec {
                    container_spec: Some(ContainerSpec {
                        image: image.into(),
                        secrets: secrets
                            .iter()
                            .map(|s| SecretReference {
                                secret_name: s.to_string(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }),
                    networks: vec![NetworkAttachmentConfig {
                        target: format!("{stack}_default"),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                endpoint_spec: (port != 0).then(|| EndpointSpec {
                    ports: vec![PortConfig {
                        target_port: 80,
                        published_port: port,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            };
            let id = self.id();
            self.d.spec.services.push(StackItem {
                spec: spec.clone(),
                pos: format!("stack.yml:{}:3", 3 + self.d.services.len()),
            });
            self.d.services.push(Service {
                id,
                spec,
                ..Default::default()
            });
            self
        }
        fn build(&mut self) -> Command {
            Command::DeployStack {
                deploy: Box::new(self.d.clone()),
            }
        }
    }

    fn stack_errors(res: crate::Response) -> Vec<String> {
        match res {
            Err(StoreError::StackRefused { problems, .. }) => problems,
            other => panic!("expected a refused stack, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_external_secret_refuses_the_whole_stack_with_its_position() {
        let mut s = cluster();
        s.take_events();
        let before = serde_json::to_value(&s).unwrap();
        let cmd = Builder::new("todo")
            .config("app", "x=1")
            .external_secret("db-password")
            .service("web", "nginx:1", 0, &["db-password"])
            .build();
        let problems = stack_errors(run(&mut s, 2, cmd));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0],
            "stack.yml:41:3: secret db-password is declared as external, but could not be found (used by todo_web): create it first (`docker secret create db-password FILE`)"
        );
        // Nothing left behind: no network, no config, no service, no stack.
        assert_eq!(serde_json::to_value(&s).unwrap(), before);
        assert!(s.take_events().is_empty());
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let mut s = cluster();
        run(
            &mut s,
            2,
            Command::CreateConfig {
                config: Box::new(Config {
                    id: "c0".into(),
                    spec: ConfigSpec {
                        name: "todo_app".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
            },
        )
        .unwrap();
        let cmd = Builder::new("todo")
            .config("app", "x=1")
            .external_secret("missing")
            .service("web", "nginx:1", 0, &["missing", "undeclared"])
            .build();
        let problems = stack_errors(run(&mut s, 3, cmd));
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("secret missing is declared as external"));
        assert_eq!(
            problems[1],
            "stack.yml:30:3: config todo_app already exists and belongs to no stack, not to stack todo"
        );
        assert_eq!(
            problems[2],
            "stack.yml:3:3: service todo_web: secret undeclared is neither part of the stack nor in the cluster"
        );
    }

    #[test]
    fn a_clash_found_while_applying_puts_everything_back() {
        let mut s = cluster();
        run(
            &mut s,
            2,
            Builder::new("one")
                .service("web", "nginx:1", 8080, &[])
                .build(),
        )
        .unwrap();
        s.take_events();
        let before = serde_json::to_value(&s).unwrap();
        let cmd = Builder::new("two")
            .config("app", "x=1")
            .service("api", "nginx:1", 0, &[])
            .service("web", "nginx:1", 8080, &[])
            .build();
        let problems = stack_errors(run(&mut s, 3, cmd));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("stack.yml:4:3: service two_web: port '8080' is already in use by service 'one_web'"),
            "{problems:?}"
        );
        assert_eq!(serde_json::to_value(&s).unwrap(), before);
        assert!(s.take_events().is_empty());
    }

    /// A stack whose web service reads config `config` (named as the managers' rotation
    /// names it, from `s_app`) and depends on db with `dep_label`.
    fn rotated(image: &str, config: &str, data: &str, dep_label: &str) -> StackDeploy {
        let mut b = Builder::new("s");
        b.config("app", data)
            .service("db", image, 0, &[])
            .service("web", "nginx:1", 0, &[]);
        let c = b.d.configs.last_mut().unwrap();
        // Fresh IDs as the control API gives them.
        c.id = format!("id-{config}");
        if config != "s_app" {
            c.spec.name = config.into();
            c.spec
                .labels
                .insert(ROTATED_FROM_LABEL.into(), "s_app".into());
        }
        for spec in [
            &mut b.d.services.last_mut().unwrap().spec,
            &mut b.d.spec.services.last_mut().unwrap().spec,
        ] {
            spec.task_template
                .container_spec
                .as_mut()
                .unwrap()
                .configs
                .push(shoal_types::swarm::ConfigReference {
                    config_name: config.into(),
                    ..Default::default()
                });
            if !dep_label.is_empty() {
                spec.labels
                    .insert(shoal_types::depends::LABEL.into(), dep_label.into());
            }
        }
        b.d.clone()
    }

    fn deploy(s: &mut State, index: u64, d: StackDeploy) -> Vec<StackChange> {
        s.deploy_stack(index, at0(), &d).unwrap()
    }

    #[test]
    fn a_rotated_out_config_stays_while_a_previous_spec_refers_to_it() {
        let mut s = cluster();
        deploy(&mut s, 2, rotated("db:1", "s_app", "x=1", ""));
        let changes = deploy(&mut s, 3, rotated("db:1", "s_app-2", "x=2", ""));
        let rotate = changes.iter().find(|c| c.action == "rotate").unwrap();
        assert_eq!(
            (rotate.name.as_str(), rotate.rotated_from.as_str()),
            ("s_app-2", "s_app")
        );
        assert!(
            s.configs.by_name("s_app").is_some(),
            "web's previous spec still reads it"
        );
        assert!(!changes.iter().any(|c| c.action == "remove"), "{changes:?}");

        let changes = deploy(&mut s, 4, rotated("db:1", "s_app-3", "x=3", ""));
        assert!(s.configs.by_name("s_app").is_none());
        assert!(s.configs.by_name("s_app-2").is_some());
        assert!(changes
            .iter()
            .any(|c| c.action == "remove" && c.name == "s_app"));
        // Removing the stack removes what it kept.
        run(&mut s, 5, Command::RemoveStack { name: "s".into() }).unwrap();
        assert_eq!(s.configs.iter().count(), 0);
    }

    #[test]
    fn credentials_sent_with_a_deploy_go_beside_the_services_even_when_nothing_else_changes() {
        let mut s = cluster();
        let mut d = rotated("db:1", "s_app", "x=1", "");
        d.registry_auth
            .insert("s_db".into(), SealedAuth(b"sealed-1".to_vec()));
        deploy(&mut s, 2, d.clone());
        let db = s.services.by_name("s_db").unwrap().id.clone();
        assert_eq!(s.registry_auth[&db].spec, b"sealed-1");
        assert!(!s
            .registry_auth
            .contains_key(&s.services.by_name("s_web").unwrap().id));
        // The same stack with new credentials: no service changes, the credentials do.
        let db_version = s.services.by_name("s_db").unwrap().version.index;
        d.registry_auth
            .insert("s_db".into(), SealedAuth(b"sealed-2".to_vec()));
        let changes = deploy(&mut s, 3, d.clone());
        assert!(
            changes.iter().all(|c| c.action == "unchanged"),
            "{changes:?}"
        );
        assert_eq!(s.registry_auth[&db].spec, b"sealed-2");
        assert_eq!(
            s.services.by_name("s_db").unwrap().version.index,
            db_version
        );
        // Empty credentials clear them; a deploy without any keeps them.
        d.registry_auth
            .insert("s_db".into(), SealedAuth(Vec::new()));
        deploy(&mut s, 4, d.clone());
        assert!(!s.registry_auth.contains_key(&db));
    }

    #[test]
    fn a_dependency_updated_restarts_the_dependents_that_ask_for_it() {
        for (label, restarts) in [
            ("s_db:service_started:restart", true),
            ("s_db:service_started", false),
        ] {
            let mut s = cluster();
            deploy(&mut s, 2, rotated("db:1", "s_app", "x=1", label));
            let changes = deploy(&mut s, 3, rotated("db:2", "s_app", "x=1", label));
            let web = s.services.by_name("s_web").unwrap();
            assert_eq!(
                web.spec.task_template.force_update,
                u64::from(restarts),
                "{label}"
            );
            let web_change = changes.iter().find(|c| c.name == "s_web").unwrap();
            let want = if restarts { "update" } else { "unchanged" };
            assert_eq!(web_change.action, want, "{label}");
            // Deployed again unchanged: no restart.
            let changes = deploy(&mut s, 4, rotated("db:2", "s_app", "x=1", label));
            assert!(
                changes.iter().all(|c| c.action == "unchanged"),
                "{changes:?}"
            );
        }
    }

    #[test]
    fn an_unchanged_redeploy_touches_nothing_and_records_no_version() {
        let mut s = cluster();
        let mut b = Builder::new("todo");
        b.config("app", "x=1").service("web", "nginx:1", 0, &[]);
        run(&mut s, 2, b.build()).unwrap();
        let web = s.services.by_name("todo_web").unwrap().clone();
        assert_eq!(s.stacks["todo"].versions.len(), 1);
        s.take_events();
        // The same stack again, with fresh IDs as the control API sends them.
        let mut again = b.d.clone();
        for (i, svc) in again.services.iter_mut().enumerate() {
            svc.id = format!("fresh-{i}");
        }
        let changes = s.deploy_stack(3, at0(), &again).unwrap();
        assert!(
            changes.iter().all(|c| c.action == "unchanged"),
            "{changes:?}"
        );
        assert_eq!(s.services.by_name("todo_web").unwrap(), &web);
        assert_eq!(s.stacks["todo"].versions.len(), 1);
        assert!(s.take_events().is_empty());
    }

    #[test]
    fn what_left_the_stack_goes_and_the_last_ten_versions_stay() {
        let mut s = cluster();
        let mut b = Builder::new("todo");
        b.config("app", "x=1")
            .service("web", "nginx:1", 0, &[])
            .service("db", "postgres:1", 0, &[]);
        run(&mut s, 2, b.build()).unwrap();
        let web_id = s.services.by_name("todo_web").unwrap().id.clone();
        for i in 2..=12u64 {
            let mut b = Builder::new("todo");
            b.service("web", &format!("nginx:{i}"), 0, &[]);
            run(&mut s, i + 1, b.build()).unwrap();
        }
        assert!(s.services.by_name("todo_db").is_none());
        assert!(s.configs.by_name("todo_app").is_none());
        let web = s.services.by_name("todo_web").unwrap();
        assert_eq!(web.id, web_id, "updated in place, not recreated");
        assert!(web.previous_spec.is_some());
        let stack = &s.stacks["todo"];
        let numbers: Vec<u64> = stack.versions.iter().map(|v| v.number).collect();
        assert_eq!(numbers, (3..=12).collect::<Vec<_>>());
    }

    #[test]
    fn a_service_of_another_stack_is_not_taken_over() {
        let mut s = cluster();
        run(
            &mut s,
            2,
            Builder::new("one")
                .service("web", "nginx:1", 0, &[])
                .build(),
        )
        .unwrap();
        let mut b = Builder::new("two");
        b.d.spec.networks.clear();
        b.d.networks.clear();
        b.network("default").service("web", "nginx:1", 0, &[]);
        // A service named like one of stack one's.
        b.d.services[0].spec.name = "one_web".into();
        b.d.spec.services[0].spec.name = "one_web".into();
        let problems = stack_errors(run(&mut s, 3, b.build()));
        assert_eq!(
            problems,
            vec!["stack.yml:3:3: service one_web already exists and belongs to stack one, not to stack two"]
        );
    }

    #[test]
    fn removing_a_stack_removes_what_its_labels_own_even_without_versions() {
        let mut s = cluster();
        // As `docker stack deploy` makes it: labelled objects, no stored stack.
        let mut b = Builder::new("legacy");
        b.service("web", "nginx:1", 0, &[]);
        run(
            &mut s,
            2,
            Command::CreateNetwork {
                network: Box::new(b.d.networks[0].clone()),
            },
        )
        .unwrap();
        let mut svc = b.d.services[0].clone();
        svc.spec.task_template.networks[0].target = b.d.networks[0].id.clone();
        run(
            &mut s,
            3,
            Command::CreateService {
                registry_auth: Vec::new(),
                service: Box::new(svc),
            },
        )
        .unwrap();
        assert_eq!(stack_names(&s).get("legacy"), Some(&1));
        run(
            &mut s,
            4,
            Command::RemoveStack {
                name: "legacy".into(),
            },
        )
        .unwrap();
        assert!(s.services.is_empty());
        assert!(s.networks.by_name("legacy_default").is_none());
        assert!(run(
            &mut s,
            5,
            Command::RemoveStack {
                name: "legacy".into()
            }
        )
        .is_err());
    }

    #[test]
    fn a_diff_names_each_changed_leaf() {
        let a = serde_json::json!({"Mode": {"Replicated": {"Replicas": 2}}, "Labels": {}});
        let b = serde_json::json!({"Mode": {"Replicated": {"Replicas": 3}}, "Labels": null});
        assert_eq!(
            changed_paths(&a, &b),
            vec!["~ Mode.Replicated.Replicas: 2 -> 3"]
        );
    }
}
