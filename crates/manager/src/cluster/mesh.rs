//! The routing mesh's view of the cluster: for every port published in `ingress` mode, the
//! running tasks that can serve it and where they run, handed to every node (long poll with a
//! digest, like the dispatcher's), and the node-to-node pipe that carries one connection to a
//! task on another node.
//!
//! The messages are `shoal_types::mesh`'s; the listening and the byte copying are the node's
//! (`shoal_net::mesh`); nothing here opens a listener or talks to an engine.

use super::*;
use crate::internal::PATH_MESH_ROUTES;
use sha2::{Digest, Sha256};
use shoal_raft::transport::Pipe;
use shoal_store::{Kind, State};
use shoal_types::mesh::{MeshBackend, MeshPipeReq, MeshPort, MeshRoutesReq, MeshRoutesResp};
use shoal_types::swarm::{PortConfigProtocol, PublishMode, TaskState};

/// How long a node may take to accept a pipe to one of its tasks.
const PIPE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a routes call waits for a change before it answers with the same routes.
fn long_poll(timing: &Timing) -> Duration {
    (timing.node_heartbeat * 2).min(Duration::from_secs(10))
}

/// The routes of every published ingress (TCP) port in `state`, and their digest: a task
/// serves a port only while it runs, is meant to run, and its node is not down (a connection
/// sent to a down node would fail) and has a known address.
fn routes(state: &State, data_key: &DataKey) -> MeshRoutesResp {
    let mut services: Vec<&shoal_types::swarm::Service> = state.services.iter().collect();
    services.sort_by(|a, b| a.id.cmp(&b.id));
    let mut ports = Vec::new();
    for s in services {
        let published: Vec<_> = s
            .endpoint
            .ports
            .iter()
            .filter(|p| {
                p.publish_mode == PublishMode::Ingress
                    && p.protocol == PortConfigProtocol::Tcp
                    && p.published_port != 0
                    && p.target_port != 0
            })
            .collect();
        if published.is_empty() {
            continue;
        }
        let mut tasks: Vec<&shoal_types::swarm::Task> = state
            .tasks
            .iter()
            .filter(|t| {
                t.service_id == s.id
                    && t.status.state == TaskState::Running
                    && t.desired_state <= TaskState::Running
                    && state
                        .nodes
                        .get(&t.node_id)
                        .is_some_and(|n| n.status.state != NodeState::Down)
            })
            .collect();
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        let backends: Vec<MeshBackend> = tasks
            .into_iter()
            .filter_map(|t| {
                let addr = state.members.get(&t.node_id)?.addr.clone();
                Some(MeshBackend {
                    task_id: t.id.clone(),
                    node_id: t.node_id.clone(),
                    addr,
                    credential: data_key.node_mesh_credential(&t.node_id),
                })
            })
            .collect();
        for p in published {
            ports.push(MeshPort {
                service_id: s.id.clone(),
                service_name: s.spec.name.clone(),
                protocol: p.protocol.as_str().to_string(),
                published_port: p.published_port,
                target_port: p.target_port,
                backends: backends.clone(),
            });
        }
    }
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&ports).unwrap_or_default());
    MeshRoutesResp {
        digest: hex::encode(hasher.finalize()),
        ports,
    }
}

impl Manager {
    /// The routes of every published ingress (TCP) port, and their digest.
    pub(super) fn mesh_routes(&self) -> MeshRoutesResp {
        routes(&self.replica().read(), &self.keys.data_key)
    }

    /// Answers once the routes differ from those with the request's digest, or after `wait`.
    pub(super) async fn mesh_routes_changed(
        &self,
        req: &MeshRoutesReq,
        wait: Duration,
    ) -> MeshRoutesResp {
        let kinds = [Kind::Task, Kind::Service, Kind::Node];
        self.when_changed(
            &req.digest,
            &kinds,
            wait,
            |m| m.mesh_routes(),
            |r| &r.digest,
        )
        .await
    }
}

impl Daemon {
    /// `/internal/mesh-routes` from a node.
    pub async fn internal_mesh_routes(&self, req: MeshRoutesReq) -> Result<MeshRoutesResp> {
        let m = self.manager()?;
        Ok(m.mesh_routes_changed(&req, long_poll(&self.cfg.timing))
            .await)
    }

    /// The node's side: the mesh's routes, once they differ from those with `digest` (or
    /// after a long-poll period).
    pub async fn fetch_mesh_routes(&self, digest: &str) -> Result<MeshRoutesResp> {
        let wait = long_poll(&self.cfg.timing);
        match self.role() {
            Role::Manager(m) => {
                let req = MeshRoutesReq {
                    node_id: m.identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                Ok(m.mesh_routes_changed(&req, wait).await)
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = MeshRoutesReq {
                    node_id: identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                let mut last = ApiError::Unavailable("no manager is known to this node".into());
                for addr in &identity.managers {
                    match self
                        .transport
                        .post::<_, MeshRoutesResp>(
                            addr,
                            PATH_MESH_ROUTES,
                            &req,
                            wait + CALL_TIMEOUT,
                        )
                        .await
                    {
                        Ok(r) => return Ok(r),
                        Err(e) => last = from_transport(e),
                    }
                }
                Err(last)
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    /// Opens a pipe to `target_port` of a task that runs on another node.
    pub async fn open_mesh_pipe(&self, backend: &MeshBackend, target_port: u32) -> Result<Pipe> {
        let req = MeshPipeReq {
            node_id: backend.node_id.clone(),
            task_id: backend.task_id.clone(),
            target_port,
        };
        self.transport
            .open_pipe(
                &backend.addr,
                crate::internal::PATH_MESH,
                &req,
                Some(&backend.credential),
                PIPE_TIMEOUT,
            )
            .await
            .map_err(from_transport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{PortConfig, Service, Task};

    /// A cluster of ready nodes `a`, `b` and `c`, each with a node-to-node address.
    struct World {
        state: State,
        key: DataKey,
    }

    impl World {
        fn new() -> Self {
            let mut state = State::default();
            for (raft_id, id) in ["a", "b", "c"].into_iter().enumerate() {
                let mut n = Node {
                    id: id.into(),
                    ..Default::default()
                };
                n.status.state = NodeState::Ready;
                state.nodes.insert(n);
                state.members.insert(
                    id.into(),
                    Member {
                        raft_id: raft_id as u64 + 1,
                        addr: format!("10.0.0.{}:2377", raft_id + 1),
                    },
                );
            }
            World {
                state,
                key: DataKey::generate(),
            }
        }

        fn service(&mut self, id: &str, ports: Vec<PortConfig>) {
            let mut s = Service {
                id: id.into(),
                ..Default::default()
            };
            s.spec.name = format!("{id}-name");
            s.endpoint.ports = ports;
            self.state.services.insert(s);
        }

        fn task(
            &mut self,
            id: &str,
            service: &str,
            node: &str,
            state: TaskState,
            desired: TaskState,
        ) {
            let mut t = Task {
                id: id.into(),
                service_id: service.into(),
                node_id: node.into(),
                desired_state: desired,
                ..Default::default()
            };
            t.status.state = state;
            self.state.tasks.insert(t);
        }

        fn running(&mut self, id: &str, service: &str, node: &str) {
            self.task(id, service, node, TaskState::Running, TaskState::Running);
        }

        fn routes(&self) -> MeshRoutesResp {
            routes(&self.state, &self.key)
        }

        /// The task IDs behind every routed port: (published, target, tasks).
        fn backends(&self) -> Vec<(u32, u32, Vec<String>)> {
            self.routes()
                .ports
                .iter()
                .map(|p| {
                    let tasks = p.backends.iter().map(|b| b.task_id.clone()).collect();
                    (p.published_port, p.target_port, tasks)
                })
                .collect()
        }
    }

    fn port(
        published: u32,
        target: u32,
        mode: PublishMode,
        protocol: PortConfigProtocol,
    ) -> PortConfig {
        PortConfig {
            protocol,
            target_port: target,
            published_port: published,
            publish_mode: mode,
            ..Default::default()
        }
    }

    fn ingress(published: u32, target: u32) -> PortConfig {
        port(
            published,
            target,
            PublishMode::Ingress,
            PortConfigProtocol::Tcp,
        )
    }

    #[test]
    fn only_published_ingress_tcp_ports_are_routed() {
        let mut w = World::new();
        w.service(
            "web",
            vec![
                ingress(8080, 80),
                port(8081, 81, PublishMode::Host, PortConfigProtocol::Tcp),
                port(8082, 82, PublishMode::Ingress, PortConfigProtocol::Udp),
                // Not allocated yet.
                ingress(0, 83),
                ingress(8443, 443),
            ],
        );
        w.service(
            "host-only",
            vec![port(9000, 90, PublishMode::Host, PortConfigProtocol::Tcp)],
        );
        w.service("unpublished", vec![]);
        w.running("t1", "web", "a");
        w.running("t2", "host-only", "a");
        w.running("t3", "unpublished", "a");

        let r = w.routes();
        assert_eq!(
            w.backends(),
            vec![
                (8080, 80, vec!["t1".to_string()]),
                (8443, 443, vec!["t1".to_string()]),
            ]
        );
        let p = &r.ports[0];
        assert_eq!(p.service_id, "web");
        assert_eq!(p.service_name, "web-name");
        assert_eq!(p.protocol, "tcp");
    }

    #[test]
    fn a_backend_names_the_node_its_address_and_the_credential_for_it() {
        let mut w = World::new();
        w.service("web", vec![ingress(8080, 80)]);
        w.running("t1", "web", "b");
        let r = w.routes();
        assert_eq!(
            r.ports[0].backends,
            vec![MeshBackend {
                task_id: "t1".into(),
                node_id: "b".into(),
                addr: "10.0.0.2:2377".into(),
                credential: w.key.node_mesh_credential("b"),
            }]
        );
    }

    #[test]
    fn only_tasks_that_run_and_are_meant_to_run_are_backends() {
        let mut w = World::new();
        w.service("web", vec![ingress(8080, 80)]);
        w.running("run", "web", "a");
        w.task(
            "starting",
            "web",
            "a",
            TaskState::Starting,
            TaskState::Running,
        );
        w.task(
            "assigned",
            "web",
            "b",
            TaskState::Assigned,
            TaskState::Running,
        );
        // Being stopped (a rolling update or a scale down): no new connections.
        w.task(
            "stopping",
            "web",
            "b",
            TaskState::Running,
            TaskState::Shutdown,
        );
        w.task(
            "removing",
            "web",
            "c",
            TaskState::Running,
            TaskState::Remove,
        );
        w.task("failed", "web", "c", TaskState::Failed, TaskState::Running);
        w.task("done", "web", "c", TaskState::Shutdown, TaskState::Shutdown);
        // Another service's task.
        w.running("other", "api", "a");
        assert_eq!(w.backends(), vec![(8080, 80, vec!["run".to_string()])]);
    }

    #[test]
    fn tasks_on_down_or_unknown_nodes_are_not_backends() {
        let mut w = World::new();
        w.service("web", vec![ingress(8080, 80)]);
        w.running("t-a", "web", "a");
        w.running("t-b", "web", "b");
        w.running("t-c", "web", "c");
        // A node the store does not know, and a node without an address.
        w.running("t-gone", "web", "gone");
        let mut n = Node {
            id: "noaddr".into(),
            ..Default::default()
        };
        n.status.state = NodeState::Ready;
        w.state.nodes.insert(n);
        w.running("t-noaddr", "web", "noaddr");
        w.state.nodes.get_mut("b").unwrap().status.state = NodeState::Down;

        // The store still says the task on `b` runs (nobody reported otherwise), but a
        // connection sent there would fail.
        assert_eq!(
            w.backends(),
            vec![(8080, 80, vec!["t-a".to_string(), "t-c".to_string()])]
        );

        w.state.nodes.get_mut("b").unwrap().status.state = NodeState::Ready;
        assert_eq!(
            w.backends(),
            vec![(
                8080,
                80,
                vec!["t-a".to_string(), "t-b".to_string(), "t-c".to_string()]
            )]
        );
    }

    #[test]
    fn backends_and_ports_come_in_a_stable_order() {
        let mut w = World::new();
        w.service("zeta", vec![ingress(9000, 90)]);
        w.service("alpha", vec![ingress(8000, 80)]);
        w.running("t9", "alpha", "c");
        w.running("t1", "alpha", "a");
        w.running("t5", "zeta", "b");
        assert_eq!(
            w.backends(),
            vec![
                (8000, 80, vec!["t1".to_string(), "t9".to_string()]),
                (9000, 90, vec!["t5".to_string()]),
            ]
        );
        assert_eq!(w.routes(), w.routes());
    }

    #[test]
    fn the_digest_changes_when_a_task_starts_or_stops_serving() {
        let mut w = World::new();
        w.service("web", vec![ingress(8080, 80)]);
        w.running("t1", "web", "a");
        let one = w.routes().digest;

        w.task("t2", "web", "b", TaskState::Starting, TaskState::Running);
        assert_eq!(w.routes().digest, one, "a starting task serves nothing yet");
        w.state.tasks.get_mut("t2").unwrap().status.state = TaskState::Running;
        let two = w.routes().digest;
        assert_ne!(two, one, "a task started");

        w.state.tasks.get_mut("t2").unwrap().desired_state = TaskState::Shutdown;
        assert_eq!(w.routes().digest, one, "a task asked to stop");
        w.state.tasks.get_mut("t2").unwrap().desired_state = TaskState::Running;
        assert_eq!(w.routes().digest, two);
        w.state.tasks.get_mut("t2").unwrap().status.state = TaskState::Failed;
        assert_eq!(w.routes().digest, one, "a task died");

        w.state.nodes.get_mut("a").unwrap().status.state = NodeState::Down;
        assert_ne!(w.routes().digest, one, "a node went down");

        w.state.nodes.get_mut("a").unwrap().status.state = NodeState::Ready;
        w.state.services.get_mut("web").unwrap().endpoint.ports = vec![ingress(8081, 80)];
        assert_ne!(w.routes().digest, one, "the published port changed");
    }

    #[test]
    fn the_digest_stays_when_nothing_the_mesh_routes_changes() {
        let mut w = World::new();
        w.service("web", vec![ingress(8080, 80)]);
        w.service("worker", vec![]);
        w.running("t1", "web", "a");
        let before = w.routes().digest;

        // Another service's tasks come and go.
        w.running("w1", "worker", "b");
        w.task("w2", "worker", "c", TaskState::Failed, TaskState::Shutdown);
        // A running task reports again (new timestamp, message).
        {
            let t = w.state.tasks.get_mut("t1").unwrap();
            t.status.timestamp = chrono::Utc::now();
            t.status.message = "started".into();
            t.version.index += 1;
        }
        // A stopped task of the service itself is kept in the history.
        w.task("old", "web", "b", TaskState::Shutdown, TaskState::Shutdown);
        // A node without backends goes down; a node's description changes.
        w.state.nodes.get_mut("c").unwrap().status.state = NodeState::Down;
        w.state.nodes.get_mut("a").unwrap().description.hostname = "renamed".into();
        // A host-mode port is added.
        w.state
            .services
            .get_mut("web")
            .unwrap()
            .endpoint
            .ports
            .push(port(9000, 90, PublishMode::Host, PortConfigProtocol::Tcp));

        assert_eq!(w.routes().digest, before);
    }
}
