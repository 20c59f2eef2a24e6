//! Service endpoints and swarm networks (moby `api/types/swarm/network.go`): published ports,
//! virtual IPs, network specs, IPAM and the attachments of tasks and services to networks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Driver, Version};
use crate::wire::{is_default, null_default, wire_enum};

/// A service's endpoint as the allocator resolved it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Endpoint {
    pub spec: EndpointSpec,
    /// Published ports with their allocated published port numbers.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub ports: Vec<PortConfig>,
    #[serde(
        rename = "VirtualIPs",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub virtual_ips: Vec<EndpointVirtualIP>,
}

/// How a service is reached: resolution mode and published ports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointSpec {
    pub mode: ResolutionMode,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub ports: Vec<PortConfig>,
}

wire_enum! {
    /// How a service name resolves: to one virtual IP (`vip`) or to every task (`dnsrr`).
    pub enum ResolutionMode ("endpoint mode") {
        Vip = "vip",
        Dnsrr = "dnsrr",
    }
    default = Vip;
}

/// A published (or only declared) port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub protocol: PortConfigProtocol,
    /// The port inside the container.
    #[serde(skip_serializing_if = "is_default")]
    pub target_port: u32,
    /// The port on the nodes; 0 asks for one from the dynamic range.
    #[serde(skip_serializing_if = "is_default")]
    pub published_port: u32,
    pub publish_mode: PublishMode,
}

wire_enum! {
    /// `tcp` (the default), `udp` or `sctp`.
    pub enum PortConfigProtocol ("port protocol") {
        Tcp = "tcp",
        Udp = "udp",
        Sctp = "sctp",
    }
    default = Tcp;
}

wire_enum! {
    /// `ingress` (routing mesh on every node, the default) or `host` (only where a task runs).
    pub enum PublishMode ("publish mode") {
        Ingress = "ingress",
        Host = "host",
    }
    default = Ingress;
}

/// moby's name for [`PublishMode`].
pub type PortConfigPublishMode = PublishMode;

/// A service's virtual IP on one network, `Addr` in CIDR form (`10.0.0.3/24`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct EndpointVirtualIP {
    #[serde(rename = "NetworkID", skip_serializing_if = "String::is_empty")]
    pub network_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
}

/// A swarm-scoped network as the cluster stores it. `GET /networks` returns the
/// [`crate::network::NetworkResource`] form instead (see its `From` impl).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Network {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    pub spec: NetworkSpec,
    /// The driver and options actually in use, filled in by the allocator.
    pub driver_state: Driver,
    /// Allocated IPAM settings (subnets, gateways).
    #[serde(rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IPAMOptions>,
}

/// What a user asked for when creating a swarm network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_configuration: Option<Driver>,
    #[serde(rename = "IPv6Enabled", skip_serializing_if = "is_default")]
    pub ipv6_enabled: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub internal: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub ingress: bool,
    #[serde(rename = "IPAMOptions", skip_serializing_if = "Option::is_none")]
    pub ipam_options: Option<IPAMOptions>,
    /// Take the configuration from this config-only network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_from: Option<crate::network::ConfigReference>,
    /// `swarm` for every network the cluster manages.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// A service or task's request to join a network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkAttachmentConfig {
    /// Network ID or name.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub aliases: Vec<String>,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub driver_opts: BTreeMap<String, String>,
}

/// A task's attachment to a network, with the addresses it got (CIDR form).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkAttachment {
    pub network: Network,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub addresses: Vec<String>,
}

/// IP address management of a swarm network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IPAMOptions {
    pub driver: Driver,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub configs: Vec<IPAMConfig>,
}

/// One address pool of a swarm network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IPAMConfig {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub range: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}
