//! A task's overlay networks on the node's engine: each shoal network a task is attached to
//! exists on the engine as a local network of shoal's own driver (the node daemon serves it
//! as a Docker network and IPAM plugin), named like the cluster's network so that
//! `docker run --network NAME` works there too; the task's container joins it with the
//! address the managers allocated.
//!
//! What the plugin does with these calls (bridges, tunnels, names) is `shoal-net`'s.

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest,
};
use shoal_types::swarm::{Network, NetworkAttachment};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

/// The name of shoal's network and IPAM plugin on an engine, unless the daemon is told
/// otherwise (several nodes sharing one engine, in tests).
pub const DRIVER: &str = "shoal";
/// The engine network's label (and driver/IPAM option) with the cluster network's ID.
pub const NETWORK_ID_OPTION: &str = "shoal.network.id";

/// The engine's create request for the cluster network `n`.
pub fn create_request(n: &Network, driver: &str) -> NetworkCreateRequest {
    let cfg = n
        .ipam_options
        .as_ref()
        .and_then(|i| i.configs.first())
        .cloned()
        .unwrap_or_default();
    let id_option = HashMap::from([(NETWORK_ID_OPTION.to_string(), n.id.clone())]);
    let mut labels: HashMap<String, String> = n
        .spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(NETWORK_ID_OPTION.to_string(), n.id.clone());
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    NetworkCreateRequest {
        name: n.spec.name.clone(),
        driver: Some(driver.to_string()),
        internal: Some(n.spec.internal),
        attachable: Some(true),
        ipam: Some(Ipam {
            driver: Some(driver.to_string()),
            config: Some(vec![IpamConfig {
                subnet: non_empty(&cfg.subnet),
                ip_range: non_empty(&cfg.range),
                gateway: non_empty(&cfg.gateway),
                auxiliary_addresses: None,
            }]),
            options: Some(id_option.clone()),
        }),
        options: Some(id_option),
        labels: Some(labels),
        ..Default::default()
    }
}

/// The engine network a container joins for `a`, with the task's address on it.
pub fn endpoint_settings(a: &NetworkAttachment) -> EndpointSettings {
    let ipv4 = a
        .addresses
        .first()
        .and_then(|c| c.split('/').next())
        .map(str::to_string);
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: ipv4,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Where the task's names are answered: shoal's name server on the gateway address of the
/// task's first overlay network, on every node.
pub fn name_server(task: &shoal_types::swarm::Task) -> Option<String> {
    let a = task.networks_attachments.first()?;
    let gw = &a.network.ipam_options.as_ref()?.configs.first()?.gateway;
    (!gw.is_empty()).then(|| gw.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{IPAMConfig, IPAMOptions, NetworkSpec};

    #[test]
    fn an_engine_network_carries_the_cluster_networks_id_addressing_and_flags() {
        let n = Network {
            id: "n1".into(),
            spec: NetworkSpec {
                name: "app".into(),
                internal: true,
                ..Default::default()
            },
            ipam_options: Some(IPAMOptions {
                configs: vec![IPAMConfig {
                    subnet: "10.0.3.0/24".into(),
                    range: String::new(),
                    gateway: "10.0.3.1".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = create_request(&n, DRIVER);
        assert_eq!(r.name, "app");
        assert_eq!(r.driver.as_deref(), Some(DRIVER));
        assert_eq!(r.internal, Some(true));
        let ipam = r.ipam.unwrap();
        assert_eq!(ipam.options.unwrap()[NETWORK_ID_OPTION], "n1");
        let c = &ipam.config.unwrap()[0];
        assert_eq!(c.subnet.as_deref(), Some("10.0.3.0/24"));
        assert_eq!(c.ip_range, None);
    }
}

/// The addresses this node's agent is about to give its tasks' containers, per cluster
/// network: the node's network plugin grants them at once when the engine asks, instead of
/// waiting for the managers' network view to show the task (which lags when the managers are
/// busy, as with a thousand tasks starting). Held only while a container starts.
#[derive(Debug, Clone, Default)]
pub struct PendingAddresses(Arc<Mutex<HashMap<(String, Ipv4Addr), usize>>>);

/// Keeps addresses pending until dropped.
#[derive(Debug)]
pub struct PendingHold {
    set: PendingAddresses,
    keys: Vec<(String, Ipv4Addr)>,
}

impl PendingAddresses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, Ipv4Addr), usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the task's addresses pending until the hold is dropped.
    pub fn hold(&self, attachments: &[NetworkAttachment]) -> PendingHold {
        let keys: Vec<(String, Ipv4Addr)> = attachments
            .iter()
            .flat_map(|a| {
                a.addresses.iter().filter_map(|c| {
                    let ip = c.split('/').next()?.parse().ok()?;
                    Some((a.network.id.clone(), ip))
                })
            })
            .collect();
        let mut set = self.lock();
        for k in &keys {
            *set.entry(k.clone()).or_default() += 1;
        }
        PendingHold {
            set: self.clone(),
            keys,
        }
    }

    /// Whether a task's container of this node is about to take `addr` on `network_id`.
    pub fn contains(&self, network_id: &str, addr: Ipv4Addr) -> bool {
        self.lock().contains_key(&(network_id.to_string(), addr))
    }
}

impl Drop for PendingHold {
    fn drop(&mut self) {
        let mut set = self.set.lock();
        for k in &self.keys {
            if let Some(n) = set.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    set.remove(k);
                }
            }
        }
    }
}

#[cfg(test)]
mod pending_tests {
    use super::*;
    use shoal_types::swarm::Network;

    fn attachment(net: &str, addr: &str) -> NetworkAttachment {
        NetworkAttachment {
            network: Network {
                id: net.into(),
                ..Default::default()
            },
            addresses: vec![addr.into()],
        }
    }

    #[test]
    fn addresses_are_pending_while_held_by_anyone() {
        let p = PendingAddresses::default();
        let ip: Ipv4Addr = "10.0.1.5".parse().unwrap();
        assert!(!p.contains("n1", ip));
        let a = p.hold(&[attachment("n1", "10.0.1.5/24")]);
        let b = p.hold(&[attachment("n1", "10.0.1.5/24"), attachment("n2", "bad")]);
        assert!(p.contains("n1", ip));
        assert!(!p.contains("n2", ip));
        drop(a);
        assert!(p.contains("n1", ip), "still held by the second");
        drop(b);
        assert!(!p.contains("n1", ip));
    }
}
