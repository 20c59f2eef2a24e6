//! moby's `api/types/network`: the network view of `GET /networks` and
//! `GET /networks/{id}` (`NetworkResource`), the `POST /networks/create` request and answer,
//! and the conversion of a stored swarm network into that view, as moby's
//! `daemon/cluster/convert/network.go` does it. Node-local engine networks are not modelled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::swarm;
use crate::wire::{null_default, time};

/// Scope of every network the cluster manages.
pub const SCOPE_SWARM: &str = "swarm";
/// Scope of node-local engine networks.
pub const SCOPE_LOCAL: &str = "local";
/// Driver `docker network create` and `docker stack deploy` default to in a swarm.
pub const DRIVER_OVERLAY: &str = "overlay";
/// IPAM driver used when none is named.
pub const IPAM_DRIVER_DEFAULT: &str = "default";

/// A network as `GET /networks` lists it (`network.Inspect` / `NetworkResource` in moby).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkResource {
    pub name: String,
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(with = "time")]
    pub created: DateTime<Utc>,
    /// `swarm` or `local`.
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: IPAM,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_from: ConfigReference,
    pub config_only: bool,
    /// Endpoints on this node, by container ID.
    #[serde(deserialize_with = "null_default")]
    pub containers: BTreeMap<String, EndpointResource>,
    #[serde(deserialize_with = "null_default")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub peers: Vec<PeerInfo>,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub services: BTreeMap<String, ServiceInfo>,
}

/// IP address management of a network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IPAM {
    pub driver: String,
    #[serde(deserialize_with = "null_default")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub config: Vec<IPAMConfig>,
}

/// One address pool: subnet, allocation range, gateway and reserved addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IPAMConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(
        rename = "AuxiliaryAddresses",
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub aux_address: BTreeMap<String, String>,
}

/// The config-only network a network takes its configuration from (`""` if none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ConfigReference {
    pub network: String,
}

/// A container's endpoint on a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointResource {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
}

/// A peer node of an overlay network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PeerInfo {
    pub name: String,
    #[serde(rename = "IP")]
    pub ip: String,
}

/// A service's presence on a network (verbose inspect).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceInfo {
    #[serde(rename = "VIP")]
    pub vip: String,
    #[serde(deserialize_with = "null_default")]
    pub ports: Vec<String>,
    #[serde(rename = "LocalLBIndex")]
    pub local_lb_index: i64,
    #[serde(deserialize_with = "null_default")]
    pub tasks: Vec<NetworkTask>,
}

/// A task's endpoint within a [`ServiceInfo`] (`network.Task` in moby).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkTask {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "EndpointIP")]
    pub endpoint_ip: String,
    #[serde(deserialize_with = "null_default")]
    pub info: BTreeMap<String, String>,
}

/// `POST /networks/create` body. API 1.41 clients send `CheckDuplicate` and `EnableIPv6` as
/// plain booleans, newer ones may leave them out (and add `EnableIPv4`): all three are
/// optional here.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_duplicate: Option<bool>,
    /// Empty means the default (`overlay` for a swarm network).
    pub driver: String,
    pub scope: String,
    #[serde(rename = "EnableIPv4", skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    #[serde(rename = "EnableIPv6", skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IPAM>,
    pub internal: bool,
    pub attachable: bool,
    pub ingress: bool,
    pub config_only: bool,
    pub config_from: Option<ConfigReference>,
    #[serde(deserialize_with = "null_default")]
    pub options: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
}

/// `POST /networks/create` answer (201).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkCreateResponse {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "Warning")]
    pub warning: String,
}

impl From<&swarm::Network> for NetworkResource {
    /// The `GET /networks` view of a cluster network, as moby's `BasicNetworkFromGRPC` builds
    /// it: scope `swarm`, driver and options from the allocated driver state, IPAM from the
    /// allocated IPAM options. Before allocation (no driver state, no IPAM options) the
    /// values the user asked for in the spec stand in.
    fn from(n: &swarm::Network) -> Self {
        let spec = &n.spec;
        let requested = spec.driver_configuration.as_ref();
        let (driver, options) = if n.driver_state.name.is_empty() {
            (
                requested.map(|d| d.name.clone()).unwrap_or_default(),
                requested.map(|d| d.options.clone()).unwrap_or_default(),
            )
        } else {
            (n.driver_state.name.clone(), n.driver_state.options.clone())
        };

        let ipam = match n.ipam_options.as_ref().or(spec.ipam_options.as_ref()) {
            None => IPAM::default(),
            Some(o) => IPAM {
                driver: o.driver.name.clone(),
                options: o.driver.options.clone(),
                config: o
                    .configs
                    .iter()
                    .map(|c| IPAMConfig {
                        subnet: c.subnet.clone(),
                        ip_range: c.range.clone(),
                        gateway: c.gateway.clone(),
                        aux_address: BTreeMap::new(),
                    })
                    .collect(),
            },
        };

        NetworkResource {
            name: spec.name.clone(),
            id: n.id.clone(),
            created: n.created_at,
            scope: SCOPE_SWARM.to_string(),
            driver,
            enable_ipv6: spec.ipv6_enabled,
            ipam,
            internal: spec.internal,
            attachable: spec.attachable,
            ingress: is_ingress(n),
            config_from: spec.config_from.clone().unwrap_or_default(),
            config_only: false,
            containers: BTreeMap::new(),
            options,
            labels: spec.labels.clone(),
            peers: Vec::new(),
            services: BTreeMap::new(),
        }
    }
}

impl From<swarm::Network> for NetworkResource {
    fn from(n: swarm::Network) -> Self {
        NetworkResource::from(&n)
    }
}

/// Whether a swarm network is the routing-mesh network: `Ingress` is set, or it is the legacy
/// ingress (named `ingress`, labelled `com.docker.swarm.internal`).
pub fn is_ingress(n: &swarm::Network) -> bool {
    n.spec.ingress
        || (n.spec.name == "ingress" && n.spec.labels.contains_key("com.docker.swarm.internal"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::{Driver, IPAMOptions, Network, NetworkSpec, Version};
    use serde_json::json;

    fn overlay() -> Network {
        Network {
            id: "4qvuz4ko70xaltuqbt8956gd1".into(),
            version: Version::new(12),
            created_at: crate::wire::parse_time("2024-03-01T10:00:00.5Z").unwrap(),
            updated_at: crate::wire::parse_time("2024-03-01T10:00:01Z").unwrap(),
            spec: NetworkSpec {
                name: "app_default".into(),
                labels: [("com.docker.stack.namespace".to_string(), "app".to_string())].into(),
                driver_configuration: Some(Driver {
                    name: "overlay".into(),
                    ..Default::default()
                }),
                attachable: true,
                scope: "swarm".into(),
                ..Default::default()
            },
            driver_state: Driver {
                name: "overlay".into(),
                options: [(
                    "com.docker.network.driver.overlay.vxlanid_list".to_string(),
                    "4097".to_string(),
                )]
                .into(),
            },
            ipam_options: Some(IPAMOptions {
                driver: Driver {
                    name: "default".into(),
                    ..Default::default()
                },
                configs: vec![crate::swarm::IPAMConfig {
                    subnet: "10.0.1.0/24".into(),
                    range: String::new(),
                    gateway: "10.0.1.1".into(),
                }],
            }),
        }
    }

    #[test]
    fn swarm_network_converts_like_moby_basic_network_from_grpc() {
        let resource = NetworkResource::from(&overlay());
        let got = serde_json::to_value(&resource).unwrap();
        assert_eq!(
            got,
            json!({
                "Name": "app_default",
                "Id": "4qvuz4ko70xaltuqbt8956gd1",
                "Created": "2024-03-01T10:00:00.5Z",
                "Scope": "swarm",
                "Driver": "overlay",
                "EnableIPv6": false,
                "IPAM": {
                    "Driver": "default",
                    "Options": {},
                    "Config": [{"Subnet": "10.0.1.0/24", "Gateway": "10.0.1.1"}]
                },
                "Internal": false,
                "Attachable": true,
                "Ingress": false,
                "ConfigFrom": {"Network": ""},
                "ConfigOnly": false,
                "Containers": {},
                "Options": {"com.docker.network.driver.overlay.vxlanid_list": "4097"},
                "Labels": {"com.docker.stack.namespace": "app"}
            })
        );
    }

    #[test]
    fn unallocated_network_falls_back_to_its_spec() {
        let mut n = overlay();
        n.driver_state = Driver::default();
        n.ipam_options = None;
        n.spec.driver_configuration = Some(Driver {
            name: "overlay".into(),
            options: [("encrypted".to_string(), String::new())].into(),
        });
        let resource = NetworkResource::from(n);
        assert_eq!(resource.driver, "overlay");
        assert!(resource.options.contains_key("encrypted"));
        assert!(resource.ipam.config.is_empty());
    }

    #[test]
    fn legacy_ingress_is_recognised() {
        let mut n = overlay();
        n.spec.name = "ingress".into();
        n.spec.labels = [("com.docker.swarm.internal".to_string(), "true".to_string())].into();
        assert!(NetworkResource::from(&n).ingress);
    }

    #[test]
    fn create_request_accepts_api_1_41_and_newer_forms() {
        let old: NetworkCreateRequest = serde_json::from_value(json!({
            "Name": "backend", "CheckDuplicate": true, "Driver": "overlay", "Scope": "swarm",
            "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": null, "Config": []},
            "Internal": false, "Attachable": true, "Ingress": false, "ConfigOnly": false,
            "ConfigFrom": null, "Options": {}, "Labels": {"com.docker.stack.namespace": "app"}
        }))
        .unwrap();
        assert_eq!(old.check_duplicate, Some(true));
        assert_eq!(old.ipam.as_ref().unwrap().driver, "default");
        assert!(old.attachable);

        let new: NetworkCreateRequest = serde_json::from_value(json!({
            "Name": "backend", "Driver": "overlay", "Scope": "swarm", "IPAM": null,
            "Internal": false, "Attachable": false, "Ingress": false, "ConfigOnly": false,
            "ConfigFrom": null, "Options": null, "Labels": null
        }))
        .unwrap();
        assert_eq!(new.check_duplicate, None);
        assert!(new.ipam.is_none());
        assert!(new.labels.is_empty());
    }
}
