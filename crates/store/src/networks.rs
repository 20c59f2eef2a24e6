//! Overlay networks in the state, and the allocator of what they hand out: a subnet (from
//! Swarm's default pool 10.0.0.0/8 in /24s unless the user gave one) and a VXLAN ID per
//! network, a virtual IP per `vip`-mode service on each of its networks, an address per task
//! on each of its networks, and addresses for containers attached to an attachable network
//! from a node's engine (`docker run --network`).
//!
//! Allocation happens in `apply`, so every manager hands out the same addresses and two
//! concurrent requests never get the same one. An address is held while anything that can
//! use it exists: a service's VIP while the service is on the network, a task's address until
//! the task has stopped for good (its container is gone from the network) or is forgotten, a
//! container's until its node releases it or the node is removed. Addresses are handed out
//! round-robin from a per-network cursor, so one just released is not given again at once.

use crate::command::Attachment;
use crate::error::{Kind, StoreError};
use crate::state::{not_found, stamp_new, EventAction, State};
use chrono::{DateTime, Utc};
use shoal_types::swarm::{
    EndpointVirtualIP, IPAMConfig, Network, NetworkAttachment, PortConfig, PublishMode,
    ResolutionMode, ServiceSpec, Task, TaskState,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

type Result<T> = std::result::Result<T, StoreError>;

/// The first VXLAN ID handed out (Swarm's overlay driver starts at 4096 + 1).
pub const FIRST_VNI: u32 = 4097;
/// The driver state option that carries a network's VXLAN ID, as Docker shows it.
pub const VNI_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = s.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if prefix > 32 {
            return None;
        }
        let mask = Self::mask_of(prefix);
        Some(Cidr {
            base: u32::from(ip) & mask,
            prefix,
        })
    }

    fn mask_of(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    pub fn last(&self) -> u32 {
        self.base | !Self::mask_of(self.prefix)
    }

    pub fn contains(&self, ip: u32) -> bool {
        ip & Self::mask_of(self.prefix) == self.base
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// The addressing of one network: its subnet, where addresses may come from, its gateway.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    pub subnet: Cidr,
    /// First and last address that may be handed out.
    pub first: u32,
    pub last: u32,
    pub gateway: u32,
}

impl Pool {
    /// The pool of a network's first IPAM config (shoal networks have exactly one).
    pub fn of(network: &Network) -> Option<Pool> {
        let c = network.ipam_options.as_ref()?.configs.first()?;
        Self::from_config(c)
    }

    fn from_config(c: &IPAMConfig) -> Option<Pool> {
        let subnet = Cidr::parse(&c.subnet)?;
        let (mut first, mut last) = (
            subnet.base.saturating_add(1),
            subnet.last().saturating_sub(1),
        );
        if subnet.prefix >= 31 {
            (first, last) = (subnet.base, subnet.last());
        }
        if !c.range.is_empty() {
            let r = Cidr::parse(&c.range)?;
            first = first.max(r.base);
            last = last.min(r.last());
        }
        let gateway = if c.gateway.is_empty() {
            subnet.base.saturating_add(1)
        } else {
            u32::from(c.gateway.parse::<Ipv4Addr>().ok()?)
        };
        Some(Pool {
            subnet,
            first,
            last,
            gateway,
        })
    }

    fn cidr_of(&self, ip: u32) -> String {
        format!("{}/{}", Ipv4Addr::from(ip), self.subnet.prefix)
    }
}

/// The address part of `10.0.1.5/24` (or of a bare address).
pub fn addr_of(cidr: &str) -> Option<Ipv4Addr> {
    cidr.split('/').next()?.parse().ok()
}

/// A task holds its addresses until it has stopped for good.
fn holds_addresses(t: &Task) -> bool {
    t.status.state <= TaskState::Running
}

/// The networks (IDs) a task spec or service spec is attached to, in order, without repeats.
pub fn network_targets(spec: &ServiceSpec) -> Vec<String> {
    let mut seen = BTreeSet::new();
    spec.task_template
        .networks
        .iter()
        .chain(spec.networks.iter())
        .filter(|a| seen.insert(a.target.clone()))
        .map(|a| a.target.clone())
        .collect()
}

impl State {
    /// Every address held on `network_id`, the gateway included.
    fn used_addresses(&self, network_id: &str, pool: &Pool) -> BTreeSet<u32> {
        let mut used = BTreeSet::from([pool.gateway]);
        let mut add = |cidr: &str| {
            if let Some(a) = addr_of(cidr) {
                used.insert(u32::from(a));
            }
        };
        for s in self.services.iter() {
            for v in &s.endpoint.virtual_ips {
                if v.network_id == network_id {
                    add(&v.addr);
                }
            }
        }
        for t in self.tasks.iter().filter(|t| holds_addresses(t)) {
            for a in &t.networks_attachments {
                if a.network.id == network_id {
                    a.addresses.iter().for_each(|x| add(x));
                }
            }
        }
        if let Some(held) = self.attachments.get(network_id) {
            for addr in held.keys() {
                add(addr);
            }
        }
        used
    }

    /// The next free address of `network_id` after its cursor, marked used.
    fn next_address(
        &mut self,
        network_id: &str,
        pool: &Pool,
        used: &mut BTreeSet<u32>,
    ) -> Result<u32> {
        next_free(&mut self.ip_cursors, network_id, pool, used).ok_or_else(|| {
            let name = self
                .networks
                .get(network_id)
                .map(|n| n.spec.name.clone())
                .unwrap_or_default();
            StoreError::Conflict(format!(
                "network {name} has no free address left in {}",
                pool.subnet
            ))
        })
    }

    /// Fills in a network's VXLAN ID and, when the user gave none, its subnet and gateway.
    pub(crate) fn allocate_network(&self, n: &mut Network) -> Result<()> {
        if n.spec.ingress {
            return Ok(());
        }
        let taken_vnis: BTreeSet<u32> = self
            .networks
            .iter()
            .filter_map(|o| o.driver_state.options.get(VNI_OPTION)?.parse().ok())
            .collect();
        let vni = (FIRST_VNI..)
            .find(|v| !taken_vnis.contains(v))
            .expect("fewer than 2^32 networks");
        n.driver_state
            .options
            .insert(VNI_OPTION.to_string(), vni.to_string());
        let taken: Vec<Cidr> = self
            .networks
            .iter()
            .filter_map(|o| o.ipam_options.as_ref())
            .flat_map(|o| o.configs.iter().filter_map(|c| Cidr::parse(&c.subnet)))
            .collect();
        let ipam = n.ipam_options.get_or_insert_with(Default::default);
        if ipam.configs.is_empty() {
            // Carve the next free subnet out of the cluster's default address pools
            // (`swarm init --default-addr-pool`, `--default-addr-pool-mask-length`), Swarm's
            // 10.0.0.0/8 in /24s unless the cluster was made with others.
            let info = self.cluster.as_ref().map(|c| &c.info);
            let pools: Vec<Cidr> = info
                .map(|i| {
                    i.default_addr_pool
                        .iter()
                        .filter_map(|p| Cidr::parse(p))
                        .collect()
                })
                .filter(|p: &Vec<Cidr>| !p.is_empty())
                .unwrap_or_else(|| {
                    vec![Cidr {
                        base: 10 << 24,
                        prefix: 8,
                    }]
                });
            let size = info
                .map(|i| i.subnet_size)
                .filter(|s| (1..=29).contains(s))
                .unwrap_or(24) as u8;
            let subnet = pools
                .iter()
                .filter(|p| p.prefix <= size)
                .flat_map(|p| {
                    let count = 1u64 << (size - p.prefix);
                    (0..count).map(move |i| Cidr {
                        base: p.base + (i << (32 - size)) as u32,
                        prefix: size,
                    })
                })
                .find(|c| !taken.iter().any(|t| t.overlaps(c)))
                .ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "no free /{size} subnet is left in the cluster's address pools ({})",
                        pools
                            .iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            ipam.configs.push(IPAMConfig {
                subnet: subnet.to_string(),
                range: String::new(),
                gateway: Ipv4Addr::from(subnet.base.saturating_add(1)).to_string(),
            });
        }
        for c in ipam.configs.iter_mut() {
            let subnet = Cidr::parse(&c.subnet)
                .ok_or_else(|| StoreError::Invalid(format!("invalid subnet {}", c.subnet)))?;
            if let Some(t) = taken.iter().find(|t| t.overlaps(&subnet)) {
                return Err(StoreError::Conflict(format!(
                    "subnet {} overlaps with the subnet {t} of another network",
                    c.subnet
                )));
            }
            if c.gateway.is_empty() {
                c.gateway = Ipv4Addr::from(subnet.base.saturating_add(1)).to_string();
            }
        }
        // The spec keeps what the user asked for; the allocated form is the network's own.
        Ok(())
    }

    /// A `vip`-mode service gets one virtual IP on each of its networks (kept across updates);
    /// `dnsrr` gets none.
    pub(crate) fn allocate_vips(
        &mut self,
        service_id: &str,
        spec: &ServiceSpec,
    ) -> Result<Vec<EndpointVirtualIP>> {
        let mode = spec
            .endpoint_spec
            .as_ref()
            .map(|e| e.mode)
            .unwrap_or_default();
        if mode != ResolutionMode::Vip {
            return Ok(Vec::new());
        }
        let current: Vec<EndpointVirtualIP> = self
            .services
            .get(service_id)
            .map(|s| s.endpoint.virtual_ips.clone())
            .unwrap_or_default();
        let mut vips = Vec::new();
        for target in network_targets(spec) {
            let Some(net) = self.networks.get(&target).filter(|n| !n.spec.ingress) else {
                continue;
            };
            let Some(pool) = Pool::of(net) else { continue };
            if let Some(v) = current.iter().find(|v| v.network_id == target) {
                vips.push(v.clone());
                continue;
            }
            let mut used = self.used_addresses(&target, &pool);
            for v in &vips {
                if let Some(a) = addr_of(&v.addr) {
                    used.insert(u32::from(a));
                }
            }
            let ip = self.next_address(&target, &pool, &mut used)?;
            vips.push(EndpointVirtualIP {
                network_id: target,
                addr: pool.cidr_of(ip),
            });
        }
        Ok(vips)
    }

    /// Gives each new task an address on each network of its spec.
    pub(crate) fn attach_tasks(&mut self, tasks: &mut [Task]) -> Result<()> {
        // One scan of the held addresses per network, however many tasks come.
        let mut pools: BTreeMap<String, (Network, Pool, BTreeSet<u32>)> = BTreeMap::new();
        for t in tasks.iter_mut() {
            let mut targets: Vec<String> =
                t.spec.networks.iter().map(|a| a.target.clone()).collect();
            if targets.is_empty() {
                if let Some(s) = self.services.get(&t.service_id) {
                    targets = s.spec.networks.iter().map(|a| a.target.clone()).collect();
                }
            }
            targets.dedup();
            t.networks_attachments.clear();
            for target in targets {
                if !pools.contains_key(&target) {
                    let Some(net) = self.networks.get(&target).filter(|n| !n.spec.ingress) else {
                        continue;
                    };
                    let Some(pool) = Pool::of(net) else { continue };
                    let used = self.used_addresses(&target, &pool);
                    pools.insert(target.clone(), (net.clone(), pool, used));
                }
                let (net, pool, used) = pools.get_mut(&target).expect("inserted above");
                let ip = next_free(&mut self.ip_cursors, &target, pool, used).ok_or_else(|| {
                    StoreError::Conflict(format!(
                        "network {} has no free address left in {}",
                        net.spec.name, pool.subnet
                    ))
                })?;
                t.networks_attachments.push(NetworkAttachment {
                    network: net.clone(),
                    addresses: vec![pool.cidr_of(ip)],
                });
            }
        }
        Ok(())
    }

    /// `AttachContainer`: an address for a container that a node's engine attaches to an
    /// attachable network; `requested` asks for a given one (`docker run --ip`).
    pub(crate) fn attach_container(
        &mut self,
        network_id: &str,
        node_id: &str,
        requested: Option<&str>,
    ) -> Result<String> {
        let net = self
            .networks
            .get(network_id)
            .ok_or_else(|| not_found(Kind::Network, network_id))?;
        if !net.spec.attachable {
            return Err(StoreError::Invalid(format!(
                "network {} is not attachable: create it with --attachable to attach containers to it",
                net.spec.name
            )));
        }
        if self.nodes.get(node_id).is_none() {
            return Err(not_found(Kind::Node, node_id));
        }
        let pool = Pool::of(net).ok_or_else(|| {
            StoreError::Invalid(format!("network {} has no address pool", net.spec.name))
        })?;
        let mut used = self.used_addresses(network_id, &pool);
        let ip = match requested.filter(|r| !r.is_empty()) {
            Some(r) => {
                let a = addr_of(r)
                    .map(u32::from)
                    .filter(|a| pool.subnet.contains(*a))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!(
                            "address {r} is not in the subnet {} of network {}",
                            pool.subnet, net.spec.name
                        ))
                    })?;
                if !used.insert(a) {
                    return Err(StoreError::Conflict(format!(
                        "address {} is already in use on network {}",
                        Ipv4Addr::from(a),
                        net.spec.name
                    )));
                }
                a
            }
            None => self.next_address(network_id, &pool, &mut used)?,
        };
        let addr = Ipv4Addr::from(ip).to_string();
        self.attachments
            .entry(network_id.to_string())
            .or_default()
            .insert(
                addr.clone(),
                Attachment {
                    node_id: node_id.to_string(),
                },
            );
        Ok(pool.cidr_of(ip))
    }

    /// `DetachContainer`: the node released a container's address (only its own).
    pub(crate) fn detach_container(&mut self, network_id: &str, node_id: &str, addr: &str) {
        let Some(a) = addr_of(addr) else { return };
        if let Some(held) = self.attachments.get_mut(network_id) {
            if held
                .get(&a.to_string())
                .is_some_and(|x| x.node_id == node_id)
            {
                held.remove(&a.to_string());
            }
            if held.is_empty() {
                self.attachments.remove(network_id);
            }
        }
    }

    pub(crate) fn create_network(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        network: &Network,
    ) -> Result<Option<String>> {
        self.cluster()?;
        if self.networks.name_taken(&network.spec.name, None) {
            return Err(StoreError::NameConflict {
                kind: Kind::Network,
                name: network.spec.name.clone(),
            });
        }
        if network.spec.ingress && self.networks.iter().any(|n| n.spec.ingress) {
            return Err(StoreError::Conflict(
                "an ingress network already exists".into(),
            ));
        }
        let mut n = network.clone();
        self.allocate_network(&mut n)?;
        stamp_new(
            &mut n.version,
            &mut n.created_at,
            &mut n.updated_at,
            index,
            at,
        );
        let id = n.id.clone();
        self.networks.insert(n);
        self.event(Kind::Network, EventAction::Create, &id, index);
        Ok(Some(id))
    }

    pub(crate) fn remove_network(&mut self, index: u64, id: &str) -> Result<Option<String>> {
        let n = self
            .networks
            .get(id)
            .ok_or_else(|| not_found(Kind::Network, id))?;
        let name = n.spec.name.clone();
        if n.spec.ingress {
            // Services that publish ingress ports use it without naming it.
            if let Some(s) = self.services.iter().find(|s| {
                s.endpoint.ports.iter().any(|p: &PortConfig| {
                    p.publish_mode == PublishMode::Ingress && p.published_port != 0
                })
            }) {
                return Err(StoreError::Conflict(format!(
                    "ingress network cannot be removed because service {} depends on it",
                    s.id
                )));
            }
        }
        let users = self.services_using(|s| {
            s.task_template
                .networks
                .iter()
                .chain(s.networks.iter())
                .any(|a| a.target == *id || a.target == name)
        });
        if !users.is_empty() {
            return Err(StoreError::InUse {
                kind: Kind::Network,
                name,
                services: users,
            });
        }
        // Tasks of removed services may still be stopping on their nodes; they do not hold
        // the network (Swarm's `stack rm` fails here with "has active endpoints"): each node
        // takes the network down once the view drops it, the engine's copy once unused.
        if let Some(held) = self.attachments.get(id).filter(|h| !h.is_empty()) {
            return Err(StoreError::Conflict(format!(
                "network {name} has active endpoints: {} container(s) attached from node engines",
                held.len()
            )));
        }
        self.networks.remove(id);
        self.ip_cursors.remove(id);
        self.event(Kind::Network, EventAction::Remove, id, index);
        Ok(Some(id.to_string()))
    }
}

/// The next address of `pool` after the network's cursor that is not in `used`; marks it used
/// and moves the cursor there.
fn next_free(
    cursors: &mut BTreeMap<String, u32>,
    network_id: &str,
    pool: &Pool,
    used: &mut BTreeSet<u32>,
) -> Option<u32> {
    let size = u64::from(pool.last.saturating_sub(pool.first)) + 1;
    let cursor = cursors.get(network_id).copied().unwrap_or(0);
    let mut ip = if (pool.first..=pool.last).contains(&cursor) {
        cursor
    } else {
        pool.last
    };
    for _ in 0..size {
        ip = if ip >= pool.last { pool.first } else { ip + 1 };
        if used.insert(ip) {
            cursors.insert(network_id.to_string(), ip);
            return Some(ip);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, Member, Request};
    use shoal_types::swarm::{
        ContainerSpec, EndpointSpec, NetworkAttachmentConfig, NetworkSpec, Node, Service, TaskSpec,
        TaskStatus,
    };

    fn run(state: &mut State, index: u64, cmd: Command) -> crate::Response {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        state.apply(
            index,
            &Request {
                at,
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

    fn network(id: &str, subnet: &str) -> Command {
        let ipam_options = (!subnet.is_empty()).then(|| shoal_types::swarm::IPAMOptions {
            configs: vec![IPAMConfig {
                subnet: subnet.into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        Command::CreateNetwork {
            network: Box::new(Network {
                id: id.into(),
                spec: NetworkSpec {
                    name: id.into(),
                    attachable: true,
                    ..Default::default()
                },
                ipam_options,
                ..Default::default()
            }),
        }
    }

    fn service(id: &str, nets: &[&str], mode: ResolutionMode) -> Command {
        Command::CreateService {
            registry_auth: Vec::new(),
            service: Box::new(Service {
                id: id.into(),
                spec: ServiceSpec {
                    name: id.into(),
                    task_template: TaskSpec {
                        container_spec: Some(ContainerSpec {
                            image: "busybox".into(),
                            ..Default::default()
                        }),
                        networks: nets
                            .iter()
                            .map(|n| NetworkAttachmentConfig {
                                target: n.to_string(),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    },
                    endpoint_spec: Some(EndpointSpec {
                        mode,
                        ports: Vec::new(),
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
        }
    }

    fn task(id: &str, service: &str, nets: &[&str]) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            spec: TaskSpec {
                networks: nets
                    .iter()
                    .map(|n| NetworkAttachmentConfig {
                        target: n.to_string(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn addrs(s: &State, task: &str) -> Vec<String> {
        s.tasks
            .get(task)
            .unwrap()
            .networks_attachments
            .iter()
            .flat_map(|a| a.addresses.clone())
            .collect()
    }

    #[test]
    fn networks_get_their_own_vxlan_id_and_a_free_subnet_unless_they_overlap() {
        let mut s = cluster();
        run(&mut s, 2, network("a", "")).unwrap();
        run(&mut s, 3, network("b", "10.0.0.0/23")).unwrap_err();
        run(&mut s, 4, network("b", "")).unwrap();
        let (a, b) = (s.networks.get("a").unwrap(), s.networks.get("b").unwrap());
        assert_eq!(a.driver_state.options[VNI_OPTION], "4097");
        assert_eq!(b.driver_state.options[VNI_OPTION], "4098");
        let subnet = |n: &Network| n.ipam_options.as_ref().unwrap().configs[0].clone();
        assert_eq!(subnet(a).subnet, "10.0.0.0/24");
        assert_eq!(subnet(a).gateway, "10.0.0.1");
        assert_eq!(subnet(b).subnet, "10.0.1.0/24");
    }

    #[test]
    fn a_vip_service_gets_one_address_per_network_and_keeps_it_dnsrr_gets_none() {
        let mut s = cluster();
        run(&mut s, 2, network("a", "10.9.0.0/24")).unwrap();
        run(&mut s, 3, network("b", "10.9.1.0/24")).unwrap();
        run(&mut s, 4, service("web", &["a", "b"], ResolutionMode::Vip)).unwrap();
        run(&mut s, 5, service("db", &["a"], ResolutionMode::Dnsrr)).unwrap();
        let vips = s.services.get("web").unwrap().endpoint.virtual_ips.clone();
        assert_eq!(vips.len(), 2);
        assert_eq!(vips[0].network_id, "a");
        assert_eq!(vips[0].addr, "10.9.0.2/24");
        assert_eq!(vips[1].addr, "10.9.1.2/24");
        assert!(s
            .services
            .get("db")
            .unwrap()
            .endpoint
            .virtual_ips
            .is_empty());
        let version = s.services.get("web").unwrap().version.index;
        let spec = s.services.get("web").unwrap().spec.clone();
        run(
            &mut s,
            6,
            Command::UpdateService {
                registry_auth: crate::AuthChange::Keep,
                id: "web".into(),
                version,
                spec: Box::new(spec),
                rollback: false,
                rollback_reason: None,
            },
        )
        .unwrap();
        assert_eq!(s.services.get("web").unwrap().endpoint.virtual_ips, vips);
    }

    #[test]
    fn tasks_get_distinct_addresses_that_are_not_handed_out_again_at_once() {
        let mut s = cluster();
        run(&mut s, 2, network("a", "10.9.0.0/29")).unwrap();
        run(&mut s, 3, service("web", &["a"], ResolutionMode::Vip)).unwrap();
        let tasks = vec![task("t1", "web", &["a"]), task("t2", "web", &["a"])];
        run(&mut s, 4, Command::CreateTasks { tasks }).unwrap();
        assert_eq!(addrs(&s, "t1"), ["10.9.0.3/29"]);
        assert_eq!(addrs(&s, "t2"), ["10.9.0.4/29"]);
        // t1 stops for good: its address is free, but the next one comes first.
        s.tasks.get_mut("t1").unwrap().status = TaskStatus {
            state: TaskState::Failed,
            ..Default::default()
        };
        let tasks = vec![task("t3", "web", &["a"]), task("t4", "web", &["a"])];
        run(&mut s, 5, Command::CreateTasks { tasks }).unwrap();
        assert_eq!(addrs(&s, "t3"), ["10.9.0.5/29"]);
        assert_eq!(addrs(&s, "t4"), ["10.9.0.6/29"]);
        let tasks = vec![task("t5", "web", &["a"])];
        run(&mut s, 6, Command::CreateTasks { tasks }).unwrap();
        assert_eq!(
            addrs(&s, "t5"),
            ["10.9.0.3/29"],
            "wrapped around to the freed one"
        );
        let tasks = vec![task("t6", "web", &["a"])];
        let err = run(&mut s, 7, Command::CreateTasks { tasks }).unwrap_err();
        assert!(err.to_string().contains("no free address"), "{err}");
    }

    #[test]
    fn attached_containers_hold_addresses_until_detached_and_block_network_removal() {
        let mut s = cluster();
        run(&mut s, 2, network("a", "10.9.0.0/24")).unwrap();
        let attach = |addr: Option<&str>| Command::AttachContainer {
            network_id: "a".into(),
            node_id: "n1".into(),
            addr: addr.map(str::to_string),
        };
        let got = run(&mut s, 3, attach(None)).unwrap().id.unwrap();
        assert_eq!(got, "10.9.0.2/24");
        let err = run(&mut s, 4, attach(Some("10.9.0.2"))).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        let err = run(&mut s, 5, attach(Some("10.8.0.2"))).unwrap_err();
        assert!(err.to_string().contains("not in the subnet"), "{err}");
        let err = run(&mut s, 6, Command::RemoveNetwork { id: "a".into() }).unwrap_err();
        assert!(err.to_string().contains("active endpoints"), "{err}");
        run(
            &mut s,
            7,
            Command::DetachContainer {
                network_id: "a".into(),
                node_id: "n1".into(),
                addr: "10.9.0.2".into(),
            },
        )
        .unwrap();
        run(&mut s, 8, Command::RemoveNetwork { id: "a".into() }).unwrap();
    }

    #[test]
    fn cidrs_parse_and_overlap() {
        let a = Cidr::parse("10.0.1.7/24").unwrap();
        assert_eq!(a.to_string(), "10.0.1.0/24");
        assert!(a.contains(u32::from(Ipv4Addr::new(10, 0, 1, 200))));
        assert!(a.overlaps(&Cidr::parse("10.0.0.0/16").unwrap()));
        assert!(!a.overlaps(&Cidr::parse("10.0.2.0/24").unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nonsense").is_none());
    }

    #[test]
    fn a_pool_respects_the_ip_range_and_skips_network_and_broadcast() {
        let p = Pool::from_config(&IPAMConfig {
            subnet: "10.5.0.0/16".into(),
            range: "10.5.3.0/24".into(),
            gateway: "10.5.0.1".into(),
        })
        .unwrap();
        assert_eq!(Ipv4Addr::from(p.first), Ipv4Addr::new(10, 5, 3, 0));
        assert_eq!(Ipv4Addr::from(p.last), Ipv4Addr::new(10, 5, 3, 255));
        let p = Pool::from_config(&IPAMConfig {
            subnet: "10.6.0.0/24".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(Ipv4Addr::from(p.first), Ipv4Addr::new(10, 6, 0, 1));
        assert_eq!(Ipv4Addr::from(p.last), Ipv4Addr::new(10, 6, 0, 254));
        assert_eq!(Ipv4Addr::from(p.gateway), Ipv4Addr::new(10, 6, 0, 1));
    }

    /// Text where an address or subnet should be: sometimes well-formed, often not.
    fn addr_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            "\\PC{0,24}",
            (any::<[u8; 4]>(), 0u8..40)
                .prop_map(|(ip, p)| format!("{}.{}.{}.{}/{p}", ip[0], ip[1], ip[2], ip[3])),
            any::<[u8; 4]>().prop_map(|ip| format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3])),
            Just("255.255.255.255/32".to_string()),
            Just("255.255.255.254/31".to_string()),
            Just("0.0.0.0/0".to_string()),
        ]
    }

    proptest::proptest! {
        /// Whatever subnets, ranges, gateways and addresses a proposal carries (a manager's
        /// forwarded write, a node's attachment), applying it answers, never panics.
        #[test]
        fn network_commands_with_any_addresses_apply_or_fail_without_panicking(
            nets in proptest::collection::vec((addr_text(), addr_text(), addr_text()), 1..4),
            attaches in proptest::collection::vec(proptest::option::of(addr_text()), 0..6),
        ) {
            let mut s = cluster();
            let mut index = 2;
            for (i, (subnet, range, gateway)) in nets.iter().enumerate() {
                let Command::CreateNetwork { mut network } = network(&format!("net{i}"), "")
                else { unreachable!() };
                network.ipam_options = Some(shoal_types::swarm::IPAMOptions {
                    configs: vec![IPAMConfig {
                        subnet: subnet.clone(),
                        range: range.clone(),
                        gateway: gateway.clone(),
                    }],
                    ..Default::default()
                });
                let _ = run(&mut s, index, Command::CreateNetwork { network });
                index += 1;
                for addr in &attaches {
                    let _ = run(&mut s, index, Command::AttachContainer {
                        network_id: format!("net{i}"),
                        node_id: "n1".into(),
                        addr: addr.clone(),
                    });
                    index += 1;
                }
                let _ = run(&mut s, index, service(&format!("svc{i}"), &[&format!("net{i}")], ResolutionMode::Vip));
                index += 1;
                let _ = run(&mut s, index, Command::CreateTasks {
                    tasks: vec![task(&format!("t{i}"), &format!("svc{i}"), &[&format!("net{i}")])],
                });
                index += 1;
            }
        }
    }
}
