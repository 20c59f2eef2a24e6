//! The overlay networks as nodes need them: every network with its VXLAN ID and addressing,
//! every endpoint holding an address (with the node whose tunnel reaches it) and what the
//! services' names resolve to — a pure function of the state, handed to every node by long
//! poll with a digest (like assignments and mesh routes). Also the addresses a node's engine
//! asks for when a container attaches to an attachable network.
//!
//! Programming bridges, tunnels and name servers is the node's (`shoal-net`); nothing here
//! touches a host.

use super::*;
use crate::network_spec::MTU_OPTION;
use sha2::{Digest, Sha256};
use shoal_store::{addr_of, network_targets, Kind, Pool, State, VNI_OPTION};
use shoal_types::netview::{
    NetAttachReq, NetAttachResp, NetDetachReq, NetEndpoint, NetInfo, NetService, NetView,
    NetViewReq,
};
use shoal_types::swarm::{NetworkAttachmentConfig, Task, TaskState};
use std::net::Ipv4Addr;

/// VXLAN's UDP port unless `swarm init --data-path-port` chose another.
pub const DEFAULT_DATA_PATH_PORT: u16 = 4789;

/// The MTU of containers' interfaces on an overlay: 1500 on the underlay minus VXLAN's 50.
pub const DEFAULT_MTU: u32 = 1450;

/// `/internal/net-view`: a node asks for the network view (long poll).
pub const PATH_NET_VIEW: &str = "/internal/net-view";
/// `/internal/net-attach`: a node's engine attaches a container to an attachable network.
pub const PATH_NET_ATTACH: &str = "/internal/net-attach";
/// `/internal/net-detach`: a node's engine released a container's address.
pub const PATH_NET_DETACH: &str = "/internal/net-detach";

/// How long a view call waits for a change before it answers with the same view.
fn long_poll(timing: &Timing) -> Duration {
    (timing.node_heartbeat * 2).min(Duration::from_secs(10))
}

/// The underlay address of a node: the host part of its node-to-node address.
fn node_addr(state: &State, node_id: &str) -> Option<Ipv4Addr> {
    let addr = &state.members.get(node_id)?.addr;
    addr.rsplit_once(':')
        .map_or(addr.as_str(), |(h, _)| h)
        .parse()
        .ok()
}

/// The name of a task's container, which resolves to its address (Swarm's task names).
fn task_name(t: &Task, service_name: &str) -> String {
    if t.slot > 0 {
        format!("{service_name}.{}.{}", t.slot, t.id)
    } else {
        format!("{service_name}.{}.{}", t.node_id, t.id)
    }
}

/// The view of every overlay network in `state`, for node `node_id`.
pub fn view(state: &State, node_id: &str) -> NetView {
    let mut networks: Vec<NetInfo> = state
        .networks
        .iter()
        .filter(|n| !n.spec.ingress)
        .filter_map(|n| {
            let pool = Pool::of(n)?;
            let vni = n.driver_state.options.get(VNI_OPTION)?.parse().ok()?;
            let cfg = n.ipam_options.as_ref()?.configs.first()?;
            let mtu = n
                .spec
                .driver_configuration
                .as_ref()
                .and_then(|d| d.options.get(MTU_OPTION))
                .and_then(|m| m.parse().ok())
                .unwrap_or(DEFAULT_MTU);
            Some(NetInfo {
                id: n.id.clone(),
                name: n.spec.name.clone(),
                vni,
                subnet: pool.subnet.to_string(),
                ip_range: cfg.range.clone(),
                gateway: Ipv4Addr::from(pool.gateway),
                mtu,
                internal: n.spec.internal,
                attachable: n.spec.attachable,
                labels: n.spec.labels.clone(),
                endpoints: Vec::new(),
                services: Vec::new(),
            })
        })
        .collect();
    networks.sort_by(|a, b| a.id.cmp(&b.id));
    let index: BTreeMap<String, usize> = networks
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id.clone(), i))
        .collect();

    let mut tasks: Vec<&Task> = state
        .tasks
        .iter()
        .filter(|t| t.status.state <= TaskState::Running && !t.node_id.is_empty())
        .collect();
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    for t in tasks {
        let Some(node) = node_addr(state, &t.node_id) else {
            continue;
        };
        let node_up = state
            .nodes
            .get(&t.node_id)
            .is_some_and(|n| n.status.state != NodeState::Down);
        let serving = t.status.state == TaskState::Running
            && t.desired_state <= TaskState::Running
            && node_up;
        let service_name = state
            .services
            .get(&t.service_id)
            .map(|s| s.spec.name.clone())
            .unwrap_or_default();
        for a in &t.networks_attachments {
            let Some(&i) = index.get(&a.network.id) else {
                continue;
            };
            for addr in a.addresses.iter().filter_map(|x| addr_of(x)) {
                networks[i].endpoints.push(NetEndpoint {
                    addr,
                    node_id: t.node_id.clone(),
                    node_addr: node,
                    task_id: t.id.clone(),
                    service_id: t.service_id.clone(),
                    names: vec![task_name(t, &service_name)],
                    serving,
                });
            }
        }
    }
    for (net_id, held) in &state.attachments {
        let Some(&i) = index.get(net_id) else {
            continue;
        };
        for (addr, a) in held {
            let (Some(ip), Some(node)) = (addr_of(addr), node_addr(state, &a.node_id)) else {
                continue;
            };
            networks[i].endpoints.push(NetEndpoint {
                addr: ip,
                node_id: a.node_id.clone(),
                node_addr: node,
                task_id: String::new(),
                service_id: String::new(),
                names: Vec::new(),
                serving: true,
            });
        }
    }

    let mut services: Vec<&shoal_types::swarm::Service> = state.services.iter().collect();
    services.sort_by(|a, b| a.id.cmp(&b.id));
    for s in services {
        for target in network_targets(&s.spec) {
            let Some(&i) = index.get(&target) else {
                continue;
            };
            let aliases: Vec<String> = s
                .spec
                .task_template
                .networks
                .iter()
                .chain(s.spec.networks.iter())
                .filter(|a: &&NetworkAttachmentConfig| a.target == target)
                .flat_map(|a| a.aliases.iter().cloned())
                .filter(|a| *a != s.spec.name)
                .collect();
            let vip = s
                .endpoint
                .virtual_ips
                .iter()
                .find(|v| v.network_id == target)
                .and_then(|v| addr_of(&v.addr));
            networks[i].services.push(NetService {
                id: s.id.clone(),
                name: s.spec.name.clone(),
                aliases,
                vip,
            });
        }
    }

    let me = node_addr(state, node_id);
    let port = state
        .cluster
        .as_ref()
        .map(|c| c.info.data_path_port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_DATA_PATH_PORT);
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&(me, port, &networks)).unwrap_or_default());
    NetView {
        digest: hex::encode(hasher.finalize()),
        node_addr: me,
        data_path_port: port,
        networks,
    }
}

impl Manager {
    /// Answers once the view differs from the one with the request's digest, or after `wait`.
    pub(super) async fn net_view_changed(&self, req: &NetViewReq, wait: Duration) -> NetView {
        let kinds = [Kind::Task, Kind::Service, Kind::Node, Kind::Network];
        self.when_changed(
            &req.digest,
            &kinds,
            wait,
            |m| view(&m.replica().read(), &req.node_id),
            |v| &v.digest,
        )
        .await
    }
}

impl Daemon {
    /// `/internal/net-view` from a node.
    pub async fn internal_net_view(&self, req: NetViewReq) -> Result<NetView> {
        let m = self.manager()?;
        Ok(m.net_view_changed(&req, long_poll(&self.cfg.timing)).await)
    }

    /// `/internal/net-attach` from a node.
    pub async fn internal_net_attach(&self, req: NetAttachReq) -> Result<NetAttachResp> {
        let m = self.manager()?;
        let applied = m
            .propose(Command::AttachContainer {
                network_id: req.network_id,
                node_id: req.node_id,
                addr: req.addr,
            })
            .await?;
        Ok(NetAttachResp {
            addr: applied.id.unwrap_or_default(),
        })
    }

    /// `/internal/net-detach` from a node.
    pub async fn internal_net_detach(&self, req: NetDetachReq) -> Result<()> {
        let m = self.manager()?;
        m.propose(Command::DetachContainer {
            network_id: req.network_id,
            node_id: req.node_id,
            addr: req.addr,
        })
        .await?;
        Ok(())
    }

    /// The node's side: the network view, once it differs from the one with `digest` (or
    /// after a long-poll period).
    pub async fn fetch_net_view(&self, digest: &str) -> Result<NetView> {
        let wait = long_poll(&self.cfg.timing);
        match self.role() {
            Role::Manager(m) => {
                let req = NetViewReq {
                    node_id: m.identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                Ok(m.net_view_changed(&req, wait).await)
            }
            Role::Worker(w) => {
                let identity = w.identity.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let req = NetViewReq {
                    node_id: identity.node_id.clone(),
                    digest: digest.to_string(),
                };
                self.call_managers(&identity.managers, PATH_NET_VIEW, &req, wait + CALL_TIMEOUT)
                    .await
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    /// The node's side of an attachment: an address for a container this node's engine
    /// attaches to `network_id`.
    pub async fn attach_container(&self, network_id: &str, addr: Option<String>) -> Result<String> {
        let node_id = self
            .node_id()
            .ok_or_else(|| ApiError::Unavailable(NOT_IN_SWARM.into()))?;
        let req = NetAttachReq {
            node_id,
            network_id: network_id.to_string(),
            addr,
        };
        match self.role() {
            Role::Manager(_) => Ok(self.internal_net_attach(req).await?.addr),
            Role::Worker(w) => {
                let managers = w
                    .identity
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .managers
                    .clone();
                let r: NetAttachResp = self
                    .call_managers(&managers, PATH_NET_ATTACH, &req, CALL_TIMEOUT)
                    .await?;
                Ok(r.addr)
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }

    /// The node's side of a detachment.
    pub async fn detach_container(&self, network_id: &str, addr: &str) -> Result<()> {
        let node_id = self
            .node_id()
            .ok_or_else(|| ApiError::Unavailable(NOT_IN_SWARM.into()))?;
        let req = NetDetachReq {
            node_id,
            network_id: network_id.to_string(),
            addr: addr.to_string(),
        };
        match self.role() {
            Role::Manager(_) => self.internal_net_detach(req).await,
            Role::Worker(w) => {
                let managers = w
                    .identity
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .managers
                    .clone();
                self.call_managers::<_, ()>(&managers, PATH_NET_DETACH, &req, CALL_TIMEOUT)
                    .await
            }
            Role::Inactive => Err(ApiError::Unavailable(NOT_IN_SWARM.into())),
            Role::Locked(_) => Err(ApiError::Unavailable(SWARM_LOCKED.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_store::{Member, Request};
    use shoal_types::swarm::{
        ContainerSpec, EndpointSpec, NetworkSpec, Node, ResolutionMode, Service, ServiceSpec,
        TaskSpec, TaskStatus,
    };

    fn run(state: &mut State, index: u64, cmd: Command) {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        state
            .apply(
                index,
                &Request {
                    at,
                    cmd,
                    id: String::new(),
                },
            )
            .unwrap();
    }

    /// A cluster with nodes `a` (up) and `b` (down), network `n`, service `web` on it with
    /// alias `www`, and tasks: t1 running on a, t2 running on b, t3 starting on a.
    fn world() -> State {
        let mut s = State::default();
        run(
            &mut s,
            1,
            Command::InitCluster {
                cluster: Box::default(),
                node: Box::new(Node {
                    id: "a".into(),
                    ..Default::default()
                }),
                member: Member {
                    raft_id: 1,
                    addr: "198.51.100.1:2377".into(),
                },
                ingress: Box::new(shoal_types::swarm::Network {
                    id: "ingress".into(),
                    spec: NetworkSpec {
                        name: "ingress".into(),
                        ingress: true,
                        ..Default::default()
                    },
                    ..Default::default()
                }),
            },
        );
        run(
            &mut s,
            2,
            Command::AddNode {
                node: Box::new(Node {
                    id: "b".into(),
                    ..Default::default()
                }),
                member: Member {
                    raft_id: 2,
                    addr: "198.51.100.2:2377".into(),
                },
            },
        );
        s.nodes.get_mut("a").unwrap().status.state = NodeState::Ready;
        s.nodes.get_mut("b").unwrap().status.state = NodeState::Down;
        run(
            &mut s,
            3,
            Command::CreateNetwork {
                network: Box::new(shoal_types::swarm::Network {
                    id: "n".into(),
                    spec: NetworkSpec {
                        name: "app".into(),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
            },
        );
        let attach = NetworkAttachmentConfig {
            target: "n".into(),
            aliases: vec!["www".into(), "web".into()],
            ..Default::default()
        };
        run(
            &mut s,
            4,
            Command::CreateService {
                registry_auth: Vec::new(),
                service: Box::new(Service {
                    id: "web".into(),
                    spec: ServiceSpec {
                        name: "web".into(),
                        task_template: TaskSpec {
                            container_spec: Some(ContainerSpec {
                                image: "busybox".into(),
                                ..Default::default()
                            }),
                            networks: vec![attach.clone()],
                            ..Default::default()
                        },
                        endpoint_spec: Some(EndpointSpec {
                            mode: ResolutionMode::Vip,
                            ports: vec![],
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                }),
            },
        );
        let task = |id: &str, node: &str, state: TaskState| Task {
            id: id.into(),
            service_id: "web".into(),
            slot: 1,
            node_id: node.into(),
            desired_state: TaskState::Running,
            status: TaskStatus {
                state,
                ..Default::default()
            },
            spec: TaskSpec {
                networks: vec![attach.clone()],
                ..Default::default()
            },
            ..Default::default()
        };
        let tasks = vec![
            task("t1", "a", TaskState::Running),
            task("t2", "b", TaskState::Running),
            task("t3", "a", TaskState::Starting),
        ];
        run(&mut s, 5, Command::CreateTasks { tasks });
        s
    }

    #[test]
    fn the_view_has_every_endpoint_with_its_node_and_only_running_tasks_on_up_nodes_serve() {
        let s = world();
        let v = view(&s, "a");
        assert_eq!(v.node_addr, Some(Ipv4Addr::new(198, 51, 100, 1)));
        assert_eq!(v.data_path_port, DEFAULT_DATA_PATH_PORT);
        assert_eq!(v.networks.len(), 1, "not the ingress network");
        let n = &v.networks[0];
        assert_eq!((n.name.as_str(), n.vni, n.mtu), ("app", 4097, DEFAULT_MTU));
        let e = |task: &str| n.endpoints.iter().find(|e| e.task_id == task).unwrap();
        assert!(e("t1").serving);
        assert!(!e("t2").serving, "its node is down");
        assert!(!e("t3").serving, "not running yet");
        assert_eq!(e("t2").node_addr, Ipv4Addr::new(198, 51, 100, 2));
        assert_eq!(e("t1").names, ["web.1.t1"]);
        assert_eq!(n.backends("web"), [e("t1").addr]);
        let svc = &n.services[0];
        assert_eq!(
            svc.aliases,
            ["www"],
            "the service's own name is not an alias"
        );
        assert!(svc.vip.is_some());
        assert_eq!(
            view(&s, "a").digest,
            v.digest,
            "a pure function of the state"
        );
        assert_ne!(
            view(&s, "b").digest,
            v.digest,
            "each node has its own address"
        );
    }
}
