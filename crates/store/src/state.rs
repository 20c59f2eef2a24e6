//! The state machine proper: the tables and [`State::apply`].

use crate::command::{Applied, Attachment, Cluster, Command, Member, Request, Response};
use crate::error::{Kind, StoreError};
use crate::recent::RecentRequests;
use crate::table::{Object, Table};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shoal_types::swarm::{
    Config, Network, Node, NodeRole, Reachability, Secret, Service, ServiceSpec, Task, Version,
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
    /// Services' registry credentials (`--with-registry-auth`), by service ID: never part of
    /// a spec, so that no API answer shows them (see [`crate::services::ServiceAuth`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub registry_auth: BTreeMap<String, crate::services::ServiceAuth>,
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

pub(crate) fn check_version(kind: Kind, id: &str, current: &Version, sent: u64) -> Result<()> {
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
        match cmd {
            Command::Noop => Ok(None),
            Command::DeployStack { deploy } => self
                .deploy_stack(index, at, deploy)
                .map(|_| Some(deploy.spec.name.clone())),
            Command::RemoveStack { name } => self
                .remove_stack(index, at, name)
                .map(|_| Some(name.clone())),
            Command::InitCluster {
                cluster,
                node,
                member,
                ingress,
            } => self.init_cluster(index, at, cluster, node, member, ingress),
            Command::AddNode { node, member } => self.join_node(index, at, node, member),
            Command::UpdateNodeSpec {
                id,
                version: sent,
                spec,
            } => self.update_node_spec(index, at, id, *sent, spec),
            Command::SetNodeStatus {
                id,
                status,
                manager_status,
                description,
            } => self.set_node_status(
                index,
                at,
                id,
                status,
                manager_status.as_ref(),
                description.as_deref(),
            ),
            Command::ForceNewCluster { node_id } => self.force_new_cluster(index, at, node_id),
            Command::RemoveNode { id, force } => self.remove_node(index, id, *force),
            Command::CreateService {
                service,
                registry_auth,
            } => self.create_service(index, at, service, registry_auth),
            Command::UpdateService {
                id,
                version: sent,
                spec,
                rollback,
                rollback_reason,
                registry_auth,
            } => self.update_service(
                index,
                at,
                id,
                *sent,
                spec,
                (*rollback, rollback_reason.as_deref()),
                registry_auth,
            ),
            Command::RemoveService { id } => self.remove_service(index, at, id),
            Command::CreateTasks { tasks } => self.create_tasks(index, at, tasks),
            Command::UpdateTasks { updates } => self.update_tasks(index, at, updates),
            Command::ReportTaskStatus { node_id, reports } => {
                self.report_task_status(index, at, node_id, reports)
            }
            Command::RemoveTasks { ids } => self.remove_tasks(index, ids),
            Command::SetServiceUpdateStatus { id, update_status } => {
                self.set_service_update_status(index, at, id, update_status.as_ref())
            }
            Command::CreateConfig { config } => self.create_config(index, at, config),
            Command::UpdateConfig {
                id,
                version: sent,
                spec,
            } => self.update_config(index, at, id, *sent, spec),
            Command::RemoveConfig { id } => self.remove_config(index, id),
            Command::CreateSecret { secret } => self.create_secret(index, at, secret),
            Command::UpdateSecret {
                id,
                version: sent,
                spec,
            } => self.update_secret(index, at, id, *sent, spec),
            Command::RemoveSecret { id } => self.remove_secret(index, id),
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
                root_rotation,
            } => self.update_cluster(
                index,
                at,
                *sent,
                crate::cluster::ClusterUpdate {
                    spec,
                    join_tokens,
                    unlock_key,
                    root_rotation: root_rotation.as_ref(),
                },
            ),
            Command::FinishRootRotation {
                new_root,
                tls_info,
                join_tokens,
            } => self.finish_root_rotation(index, at, new_root, tls_info, join_tokens),
        }
    }

    /// Is this node a manager that the leader currently can reach?
    pub fn reachability(&self, node_id: &str) -> Option<Reachability> {
        self.nodes
            .get(node_id)
            .and_then(|n| n.manager_status.as_ref())
            .map(|m| m.reachability)
    }
}

pub(crate) fn stamp(
    version: &mut Version,
    updated_at: &mut DateTime<Utc>,
    index: u64,
    at: DateTime<Utc>,
) {
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
    use crate::command::RotationChange;
    use shoal_types::swarm::{
        ContainerSpec, EndpointSpec, NodeState, PortConfig, SecretReference, SecretSpec,
        ServiceSpec, TaskSpec,
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
            registry_auth: Vec::new(),
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
    fn a_root_rotation_runs_until_the_leader_finishes_it_to_the_root_it_started() {
        use crate::command::{RootRotation, SealedRootCa};
        let mut s = cluster();
        let rotation = |cert: &str| RootRotation {
            new_root: SealedRootCa {
                cert_pem: cert.into(),
                sealed: vec![1, 2, 3],
            },
            cross_signed: format!("{cert}-cross"),
        };
        let update = |version: u64, change: Option<RotationChange>| Command::UpdateCluster {
            version,
            spec: Box::default(),
            join_tokens: Default::default(),
            unlock_key: Vec::new(),
            root_rotation: change,
        };
        let finish = |cert: &str| Command::FinishRootRotation {
            new_root: cert.into(),
            tls_info: shoal_types::swarm::TLSInfo {
                trust_root: cert.into(),
                ..Default::default()
            },
            join_tokens: shoal_types::swarm::JoinTokens {
                worker: "w2".into(),
                manager: "m2".into(),
            },
        };
        let v = s.cluster().unwrap().info.version.index;
        run(
            &mut s,
            2,
            update(v, Some(RotationChange::Start(rotation("A")))),
        )
        .unwrap();
        assert!(s.cluster().unwrap().info.root_rotation_in_progress);
        // An update that says nothing of the rotation leaves it running.
        run(&mut s, 3, update(2, None)).unwrap();
        assert!(s.cluster().unwrap().root_rotation.is_some());
        // A rotation replaced meanwhile is not finished by the end of the one before.
        run(
            &mut s,
            4,
            update(3, Some(RotationChange::Start(rotation("B")))),
        )
        .unwrap();
        assert!(matches!(
            run(&mut s, 5, finish("A")),
            Err(StoreError::Conflict(_))
        ));
        run(&mut s, 6, finish("B")).unwrap();
        let c = s.cluster().unwrap();
        assert!(!c.info.root_rotation_in_progress && c.root_rotation.is_none());
        assert_eq!(c.root_ca.as_ref().unwrap().cert_pem, "B");
        assert_eq!(c.info.tls_info.trust_root, "B");
        assert_eq!(c.join_tokens.worker, "w2");
        // Aborting one under way keeps the root.
        run(
            &mut s,
            7,
            update(6, Some(RotationChange::Start(rotation("C")))),
        )
        .unwrap();
        run(&mut s, 8, update(7, Some(RotationChange::Abort))).unwrap();
        let c = s.cluster().unwrap();
        assert!(!c.info.root_rotation_in_progress && c.root_rotation.is_none());
        assert_eq!(c.root_ca.as_ref().unwrap().cert_pem, "B");
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
    fn registry_credentials_follow_the_spec_through_updates_rollbacks_and_removal() {
        let mut s = cluster();
        let mut create = service("a", "web", &[]);
        if let Command::CreateService { registry_auth, .. } = &mut create {
            *registry_auth = b"one".to_vec();
        }
        run(&mut s, 2, create).unwrap();
        let auth = |s: &State| s.registry_auth.get("a").cloned().unwrap_or_default();
        assert_eq!(auth(&s).spec, b"one");
        // Nothing of it in the service as the API shows it.
        let shown = serde_json::to_string(s.services.get("a").unwrap()).unwrap();
        assert!(!shown.contains("b25l"), "{shown}");
        let spec = s.services.get("a").unwrap().spec.clone();
        let update = |s: &State, registry_auth, rollback| Command::UpdateService {
            registry_auth,
            rollback_reason: None,
            id: "a".into(),
            version: s.services.get("a").unwrap().version.index,
            spec: Box::new(spec.clone()),
            rollback,
        };
        // No credentials sent: the spec's are kept (registryAuthFrom=spec).
        let cmd = update(&s, crate::AuthChange::Keep, false);
        run(&mut s, 3, cmd).unwrap();
        assert_eq!(
            (auth(&s).spec, auth(&s).previous),
            (b"one".to_vec(), b"one".to_vec())
        );
        let cmd = update(&s, crate::AuthChange::Set(b"two".to_vec()), false);
        run(&mut s, 4, cmd).unwrap();
        assert_eq!(
            (auth(&s).spec, auth(&s).previous),
            (b"two".to_vec(), b"one".to_vec())
        );
        // registryAuthFrom=previous-spec.
        let cmd = update(&s, crate::AuthChange::FromPrevious, false);
        run(&mut s, 5, cmd).unwrap();
        assert_eq!(
            (auth(&s).spec, auth(&s).previous),
            (b"one".to_vec(), b"two".to_vec())
        );
        // A rollback brings the previous spec's back with it.
        let cmd = update(&s, crate::AuthChange::Keep, true);
        run(&mut s, 6, cmd).unwrap();
        assert_eq!(
            (auth(&s).spec, auth(&s).previous),
            (b"two".to_vec(), b"one".to_vec())
        );
        run(&mut s, 7, Command::RemoveService { id: "a".into() }).unwrap();
        assert!(s.registry_auth.is_empty());
        // previous-spec without a previous spec is refused, as Docker does.
        run(&mut s, 8, service("b", "api", &[])).unwrap();
        let spec = s.services.get("b").unwrap().spec.clone();
        let err = run(
            &mut s,
            9,
            Command::UpdateService {
                registry_auth: crate::AuthChange::FromPrevious,
                rollback_reason: None,
                id: "b".into(),
                version: 8,
                spec: Box::new(spec),
                rollback: false,
            },
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("does not have a previous spec"),
            "{err}"
        );
    }

    #[test]
    fn versions_are_log_indexes_and_stale_updates_are_out_of_sequence() {
        let mut s = cluster();
        run(&mut s, 7, service("a", "web", &[])).unwrap();
        assert_eq!(s.services.get("a").unwrap().version.index, 7);
        let spec = s.services.get("a").unwrap().spec.clone();
        let update = |version| Command::UpdateService {
            registry_auth: crate::AuthChange::Keep,
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
        if let Command::CreateService { service, .. } = &mut cmd {
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
