//! The cluster's names as the name servers see them: plain records the daemon fills in from
//! what the managers told it, compiled once per change into hash tables so that answering a
//! query is a handful of lookups and no allocation beyond the answer.
//!
//! This module decides *which* addresses a name has for a given client; it knows nothing of
//! the wire format or sockets.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

/// How a service's name resolves, as in a Docker service's `--endpoint-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EndpointMode {
    /// The name resolves to the service's virtual IP, which balances over its tasks.
    #[default]
    Vip,
    /// DNS round robin: the name resolves to the IPs of its running tasks.
    Dnsrr,
}

/// One service attached to one network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRecord {
    /// The service's name, e.g. `web` (a Compose service is `stack_web`).
    pub name: String,
    /// Extra names the service has on this network only (Compose `aliases`,
    /// `--network name=..,alias=..`). Each resolves exactly like [`ServiceRecord::name`].
    pub aliases: Vec<String>,
    pub mode: EndpointMode,
    /// The virtual IP on this network. A `Vip` service without one (not allocated yet)
    /// resolves to its tasks, as Docker does when it has no VIP.
    pub vip: Option<Ipv4Addr>,
    /// IPs on this network of the service's running tasks.
    pub task_ips: Vec<Ipv4Addr>,
}

/// One container (a task's, or a plain one) attached to one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRecord {
    /// The container's IP on this network.
    pub ip: Ipv4Addr,
    /// Names resolving to [`EndpointRecord::ip`]: for a task its container name
    /// `service.slot.taskid`, then any other. The first one answers PTR queries.
    pub names: Vec<String>,
    /// The other networks this same container is attached to (network ID → its IP there):
    /// a query from this container may resolve names on all of them.
    pub attachments: BTreeMap<String, Ipv4Addr>,
}

/// Everything one network's name server may answer about that network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkRecords {
    pub id: String,
    /// The network's name: `web.NAME` picks `web` on this network, and PTR answers end in it.
    pub name: String,
    pub services: Vec<ServiceRecord>,
    pub endpoints: Vec<EndpointRecord>,
}

/// The whole view, compiled for lookups. Build one per change with [`Names::new`] and swap
/// it in whole (see [`super::View`]); it is never mutated afterwards.
#[derive(Debug, Default)]
pub struct Names {
    networks: HashMap<String, Zone>,
}

/// One network's lookup tables. Keys are lowercase names without a trailing dot.
#[derive(Debug, Default)]
struct Zone {
    /// Lowercase, to match the last labels of a query.
    name: String,
    /// As the network is named, to end PTR answers with.
    ptr_suffix: String,
    addrs: HashMap<String, Vec<Ipv4Addr>>,
    /// IP → the name its PTR record answers, already suffixed with the network's name.
    ptr: HashMap<Ipv4Addr, String>,
    /// An endpoint's IP on this network → the other networks its container is attached to.
    attachments: HashMap<Ipv4Addr, Vec<String>>,
}

impl Names {
    /// Compiles the records of every network into lookup tables. Records of the same network
    /// ID given twice are merged; a name given twice on a network resolves to the union of its
    /// addresses, as two services sharing an alias do in Docker.
    pub fn new<I>(networks: I) -> Self
    where
        I: IntoIterator,
        I::Item: Borrow<NetworkRecords>,
    {
        let mut names = Self::default();
        for records in networks {
            let records = records.borrow();
            let zone = names.networks.entry(records.id.clone()).or_default();
            zone.add(records);
        }
        names
    }

    /// The IPv4 addresses `name` has for a client at `client` querying the server of network
    /// `network`, or `None` when the name is not ours (it is then forwarded upstream).
    ///
    /// The name is looked up on the query's network first, then on the client's other
    /// networks; then, as Docker does, `a.b.c` is tried as `a.b` on a network named `c`, and
    /// `a` on a network named `b.c`. A name is ours only while it has an address: a dnsrr
    /// service with no running task is unknown, as in Docker, which drops the record.
    pub fn lookup(&self, network: &str, client: IpAddr, name: &str) -> Option<&[Ipv4Addr]> {
        let name = key(name);
        let zones = self.visible(network, client);
        if let Some(addrs) = zones.iter().find_map(|zone| zone.addrs.get(&name)) {
            return Some(addrs);
        }
        let mut end = name.len();
        while let Some(dot) = name[..end].rfind('.') {
            let (short, network_name) = (&name[..dot], &name[dot + 1..]);
            let found = zones
                .iter()
                .filter(|zone| !zone.name.is_empty() && zone.name == network_name)
                .find_map(|zone| zone.addrs.get(short));
            if let Some(addrs) = found {
                return Some(addrs);
            }
            end = dot;
        }
        None
    }

    /// The name a PTR query for `ip` answers for this client: a task's container name or a
    /// service's name (for its VIP), followed by the network's name, e.g. `web.1.x7f.front`.
    pub fn reverse(&self, network: &str, client: IpAddr, ip: Ipv4Addr) -> Option<&str> {
        self.visible(network, client)
            .iter()
            .find_map(|zone| zone.ptr.get(&ip))
            .map(String::as_str)
    }

    /// The networks whose names `client` may see, the query's own network first so that a
    /// service on two of them answers with its address where the query arrived.
    fn visible(&self, network: &str, client: IpAddr) -> Vec<&Zone> {
        let Some(home) = self.networks.get(network) else {
            return Vec::new();
        };
        let mut zones = vec![home];
        if let IpAddr::V4(client) = client.to_canonical() {
            let others = home.attachments.get(&client).into_iter().flatten();
            zones.extend(
                others
                    .filter(|id| id.as_str() != network)
                    .filter_map(|id| self.networks.get(id)),
            );
        }
        zones
    }
}

impl<R: Borrow<NetworkRecords>> FromIterator<R> for Names {
    fn from_iter<I: IntoIterator<Item = R>>(networks: I) -> Self {
        Self::new(networks)
    }
}

impl Zone {
    fn add(&mut self, records: &NetworkRecords) {
        self.name = key(&records.name);
        self.ptr_suffix = records.name.trim_end_matches('.').to_owned();
        for service in &records.services {
            let names = std::iter::once(&service.name).chain(&service.aliases);
            let by_vip = match (service.mode, service.vip) {
                (EndpointMode::Vip, Some(vip)) => Some(vip),
                _ => None,
            };
            for name in names {
                match by_vip {
                    Some(vip) => self.insert(name, &[vip]),
                    None => self.insert(name, &service.task_ips),
                }
                self.insert(&format!("tasks.{name}"), &service.task_ips);
            }
        }
        for endpoint in &records.endpoints {
            for name in &endpoint.names {
                self.insert(name, &[endpoint.ip]);
            }
            if let Some(first) = endpoint.names.first() {
                let ptr = self.ptr_name(first);
                self.ptr.entry(endpoint.ip).or_insert(ptr);
            }
            let others = endpoint.attachments.keys().cloned();
            let attachments = self.attachments.entry(endpoint.ip).or_default();
            attachments.extend(others);
            attachments.sort();
            attachments.dedup();
        }
        // Docker has no PTR record for a VIP; answering one costs nothing and spares the
        // upstream servers a reverse query for a private address they cannot know. A task's
        // own name wins if an address were ever both.
        for service in &records.services {
            if let (EndpointMode::Vip, Some(vip)) = (service.mode, service.vip) {
                let ptr = self.ptr_name(&service.name);
                self.ptr.entry(vip).or_insert(ptr);
            }
        }
    }

    /// Adds addresses to a name. A name left without any stays absent, so it is not ours.
    fn insert(&mut self, name: &str, addrs: &[Ipv4Addr]) {
        let name = key(name);
        if name.is_empty() || addrs.is_empty() {
            return;
        }
        let known = self.addrs.entry(name).or_default();
        for addr in addrs {
            if !known.contains(addr) {
                known.push(*addr);
            }
        }
    }

    fn ptr_name(&self, name: &str) -> String {
        let name = name.trim_end_matches('.');
        if self.ptr_suffix.is_empty() {
            name.to_owned()
        } else {
            format!("{name}.{}", self.ptr_suffix)
        }
    }
}

/// DNS names compare without case, and a trailing dot only says the name is absolute.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::test_support::{fixture, CLIENT_BOTH, CLIENT_FRONT_ONLY, UNKNOWN_CLIENT};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn trailing_dot_and_case_do_not_matter() {
        let names = fixture();
        let plain = names.lookup("n-front", UNKNOWN_CLIENT, "web");
        assert_eq!(plain, Some(&[ip("10.0.1.2")][..]));
        assert_eq!(names.lookup("n-front", UNKNOWN_CLIENT, "WeB."), plain);
    }

    #[test]
    fn service_on_two_networks_answers_with_its_address_where_the_query_arrived() {
        let names = fixture();
        let on_front = names.lookup("n-front", CLIENT_BOTH, "web");
        assert_eq!(on_front, Some(&[ip("10.0.1.2")][..]));
        let on_back = names.lookup("n-back", CLIENT_BOTH, "web");
        assert_eq!(on_back, Some(&[ip("10.0.2.9")][..]));
    }

    #[test]
    fn unknown_client_sees_only_the_network_the_query_arrived_on() {
        let names = fixture();
        assert_eq!(names.lookup("n-front", UNKNOWN_CLIENT, "db"), None);
        assert_eq!(names.lookup("n-front", CLIENT_FRONT_ONLY, "db"), None);
        assert!(names.lookup("n-front", CLIENT_BOTH, "db").is_some());
    }

    #[test]
    fn dnsrr_service_without_running_tasks_is_not_ours() {
        let names = fixture();
        assert_eq!(names.lookup("n-front", UNKNOWN_CLIENT, "idle"), None);
        assert_eq!(names.lookup("n-front", UNKNOWN_CLIENT, "tasks.idle"), None);
    }

    #[test]
    fn name_suffixed_with_a_network_name_resolves_on_that_network_only() {
        let names = fixture();
        let web_back = names.lookup("n-front", CLIENT_BOTH, "web.back");
        assert_eq!(web_back, Some(&[ip("10.0.2.9")][..]));
        let tasks = names.lookup("n-front", CLIENT_BOTH, "tasks.api.front");
        assert_eq!(tasks.map(<[_]>::len), Some(3));
        assert_eq!(names.lookup("n-front", CLIENT_FRONT_ONLY, "db.back"), None);
    }

    #[test]
    fn task_container_name_resolves_and_answers_ptr_with_the_network_name() {
        let names = fixture();
        let task = names.lookup("n-front", UNKNOWN_CLIENT, "web.1.t1");
        assert_eq!(task, Some(&[ip("10.0.1.3")][..]));
        let ptr = names.reverse("n-front", UNKNOWN_CLIENT, ip("10.0.1.3"));
        assert_eq!(ptr, Some("web.1.t1.front"));
        let vip = names.reverse("n-front", UNKNOWN_CLIENT, ip("10.0.1.2"));
        assert_eq!(vip, Some("web.front"));
        assert_eq!(
            names.reverse("n-front", UNKNOWN_CLIENT, ip("10.0.2.2")),
            None
        );
    }

    #[test]
    fn alias_shared_by_two_services_resolves_to_both() {
        let service = |name: &str, vip: &str| ServiceRecord {
            name: name.into(),
            aliases: vec!["shared".into()],
            vip: Some(ip(vip)),
            ..ServiceRecord::default()
        };
        let names = Names::new([NetworkRecords {
            id: "n".into(),
            name: "net".into(),
            services: vec![service("a", "10.9.0.1"), service("b", "10.9.0.2")],
            endpoints: Vec::new(),
        }]);
        let shared = names.lookup("n", UNKNOWN_CLIENT, "shared");
        assert_eq!(shared, Some(&[ip("10.9.0.1"), ip("10.9.0.2")][..]));
    }
}
