//! The JSON bodies of the remote network driver and IPAM driver protocols, field for field as
//! libnetwork (the copy vendored in Docker Engine 20.10) sends and reads them.
//!
//! Field names are spelled out one by one rather than derived from a case rule: libnetwork's
//! names mix cases (`NetworkID`, `IPv4Data`, `RequiresMACAddress`, `V6`) and a single wrong
//! letter makes Go drop the field without a word. Unknown fields are ignored, a missing field
//! takes its default, and `null` reads as empty: Go encodes a nil map or slice as `null`.
//!
//! Addresses stay strings in the form libnetwork writes them (`10.0.1.0/24`, `10.0.1.2/24`,
//! `10.0.1.2`); the driver parses what it uses.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `Options` key of [`CreateNetworkRequest`] holding the `-o key=value` pairs of
/// `docker network create`, as a string-to-string map.
pub const OPTION_GENERIC: &str = "com.docker.network.generic";
/// `Options` key of [`CreateNetworkRequest`]: `true` for `docker network create --internal`.
pub const OPTION_INTERNAL: &str = "com.docker.network.internal";
/// `Options` key of [`CreateNetworkRequest`]: whether the network has IPv6 (`--ipv6`).
pub const OPTION_ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// `Options` key of [`RequestAddressRequest`] saying what the address is for; its only value
/// in libnetwork is [`GATEWAY_ADDRESS`].
pub const OPTION_REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
/// Value of [`OPTION_REQUEST_ADDRESS_TYPE`] when libnetwork asks for the network's gateway.
/// Also a key of [`RequestPoolResponse::data`]: a CIDR there is taken as the gateway, and
/// libnetwork then asks for no gateway address.
pub const GATEWAY_ADDRESS: &str = "com.docker.network.gateway";

/// Reads `null` as the type's default, as Go's decoder does for maps, slices and pointers.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

// ---------------------------------------------------------------------------------------------
// Handshake

/// Answer to `/Plugin.Activate`: the protocols this plugin speaks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivateResponse {
    #[serde(rename = "Implements", default, deserialize_with = "nullable")]
    pub implements: Vec<String>,
}

/// Where a driver's networks are allocated (`Scope`) or reach (`ConnectivityScope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// This node alone.
    #[default]
    Local,
    /// The whole cluster. As a `Scope` it needs the engine in swarm mode: network creation
    /// fails on a standalone engine.
    Global,
}

/// Answer to `/NetworkDriver.GetCapabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCapabilities {
    #[serde(rename = "Scope")]
    pub scope: Scope,
    /// Absent means the same as `Scope`.
    #[serde(
        rename = "ConnectivityScope",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connectivity_scope: Option<Scope>,
}

/// Answer to `/IpamDriver.GetCapabilities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamCapabilities {
    /// Whether libnetwork must pass the endpoint's MAC address in `RequestAddress` options.
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    /// Whether libnetwork must replay pool and address requests after the engine restarts.
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
}

/// Answer to `/IpamDriver.GetDefaultAddressSpaces`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpaces {
    #[serde(rename = "LocalDefaultAddressSpace", default)]
    pub local_default_address_space: String,
    #[serde(rename = "GlobalDefaultAddressSpace", default)]
    pub global_default_address_space: String,
}

// ---------------------------------------------------------------------------------------------
// Network driver

/// One address pool of a network, as the IPAM driver handed it out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    /// The pool in CIDR form, e.g. `10.0.1.0/24`.
    #[serde(rename = "Pool", default, skip_serializing_if = "String::is_empty")]
    pub pool: String,
    /// The gateway address with the pool's prefix length, e.g. `10.0.1.1/24`.
    #[serde(rename = "Gateway", default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// `--aux-address` name to address with prefix length.
    #[serde(
        rename = "AuxAddresses",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, String>,
}

/// Body of `/NetworkDriver.CreateNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    /// libnetwork's options for the network: see [`OPTION_GENERIC`], [`OPTION_INTERNAL`],
    /// [`OPTION_ENABLE_IPV6`] and the accessors below.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    pub ipv6_data: Vec<IpamData>,
}

impl CreateNetworkRequest {
    /// The `-o key=value` options of `docker network create`. A value that is not a string
    /// (no engine sends one) is kept as its JSON text.
    pub fn generic_options(&self) -> BTreeMap<String, String> {
        let Some(Value::Object(generic)) = self.options.get(OPTION_GENERIC) else {
            return BTreeMap::new();
        };
        generic
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// Whether the network was created with `--internal`: no route out of it.
    pub fn internal(&self) -> bool {
        self.options.get(OPTION_INTERNAL) == Some(&Value::Bool(true))
    }

    /// Whether the network was created with `--ipv6`.
    pub fn enable_ipv6(&self) -> bool {
        self.options.get(OPTION_ENABLE_IPV6) == Some(&Value::Bool(true))
    }
}

/// Body of the calls that name a network alone: `/NetworkDriver.DeleteNetwork` and
/// `/NetworkDriver.FreeNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRef {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
}

/// Body of `/NetworkDriver.AllocateNetwork`, which only a swarm-mode manager sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "IPv4Data", default, deserialize_with = "nullable")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data", default, deserialize_with = "nullable")]
    pub ipv6_data: Vec<IpamData>,
}

/// Answer to `/NetworkDriver.AllocateNetwork`: options the manager passes on to every
/// node's `CreateNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkResponse {
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
}

/// An endpoint's addresses: in a `CreateEndpoint` request what libnetwork already has (the
/// IPAM driver's address), in the answer what the driver adds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    /// IPv4 address with prefix length, e.g. `10.0.1.2/24`.
    #[serde(rename = "Address", default, skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// IPv6 address with prefix length.
    #[serde(
        rename = "AddressIPv6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub address_ipv6: String,
    /// e.g. `02:42:0a:00:01:02`.
    #[serde(
        rename = "MacAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub mac_address: String,
}

impl EndpointInterface {
    pub fn is_empty(&self) -> bool {
        self.address.is_empty() && self.address_ipv6.is_empty() && self.mac_address.is_empty()
    }
}

/// Body of `/NetworkDriver.CreateEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "Interface", default, deserialize_with = "nullable")]
    pub interface: EndpointInterface,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
}

/// Answer to `/NetworkDriver.CreateEndpoint`.
///
/// libnetwork refuses (and rolls the endpoint back) an answer that sets a field it had
/// already filled in the request: a driver only fills what the request left empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    #[serde(
        rename = "Interface",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface: Option<EndpointInterface>,
}

/// Body of the calls that name one endpoint: `/NetworkDriver.DeleteEndpoint`,
/// `/NetworkDriver.EndpointOperInfo`, `/NetworkDriver.Leave` and
/// `/NetworkDriver.RevokeExternalConnectivity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRef {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
}

/// Answer to `/NetworkDriver.EndpointOperInfo`: free-form facts `docker network inspect`
/// shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointOperInfoResponse {
    #[serde(rename = "Value", default, deserialize_with = "nullable")]
    pub value: Map<String, Value>,
}

/// Body of `/NetworkDriver.Join`: put the endpoint into a container's sandbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    /// The sandbox's network namespace path, e.g. `/var/run/docker/netns/3f1c2e0a9b4d`.
    #[serde(rename = "SandboxKey", default)]
    pub sandbox_key: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
}

/// The host interface libnetwork moves into the sandbox, and what it is called there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    /// The interface's name on the host, e.g. the container end of a veth pair.
    #[serde(rename = "SrcName", default)]
    pub src_name: String,
    /// Prefix of the name inside the sandbox; libnetwork appends an index (`eth` → `eth0`).
    #[serde(rename = "DstPrefix", default)]
    pub dst_prefix: String,
    /// Part of the protocol's types, ignored by the 20.10 engine.
    #[serde(rename = "DstName", default, skip_serializing_if = "String::is_empty")]
    pub dst_name: String,
}

/// What a [`StaticRoute`] leads to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RouteType {
    /// Through the gateway in `NextHop` (libnetwork's 0).
    #[default]
    NextHop,
    /// Directly out of the interface (libnetwork's 1).
    Connected,
}

impl Serialize for RouteType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(match self {
            RouteType::NextHop => 0,
            RouteType::Connected => 1,
        })
    }
}

impl<'de> Deserialize<'de> for RouteType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match u8::deserialize(d)? {
            0 => Ok(RouteType::NextHop),
            1 => Ok(RouteType::Connected),
            n => Err(serde::de::Error::custom(format!(
                "route type {n} is neither 0 (next hop) nor 1 (connected)"
            ))),
        }
    }
}

/// A route libnetwork adds in the sandbox once the interface is in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// CIDR, e.g. `10.0.0.0/8`.
    #[serde(rename = "Destination", default)]
    pub destination: String,
    #[serde(rename = "RouteType", default)]
    pub route_type: RouteType,
    /// An address, for [`RouteType::NextHop`].
    #[serde(rename = "NextHop", default, skip_serializing_if = "String::is_empty")]
    pub next_hop: String,
}

/// Answer to `/NetworkDriver.Join`.
///
/// Without a `gateway` (and no default route in `static_routes`) the engine adds an interface
/// on `docker_gwbridge` and routes the container's other traffic through it; an internal
/// network gets no such route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    #[serde(
        rename = "InterfaceName",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_name: Option<InterfaceName>,
    /// A plain address, e.g. `10.0.1.1`.
    #[serde(rename = "Gateway", default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(
        rename = "GatewayIPv6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub gateway_ipv6: String,
    #[serde(
        rename = "StaticRoutes",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_routes: Vec<StaticRoute>,
    /// Keep the engine from adding the `docker_gwbridge` interface even without a gateway.
    #[serde(
        rename = "DisableGatewayService",
        default,
        skip_serializing_if = "is_false"
    )]
    pub disable_gateway_service: bool,
}

/// Body of `/NetworkDriver.ProgramExternalConnectivity`: published ports and the like for an
/// endpoint that provides the container's way out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    #[serde(rename = "NetworkID", default)]
    pub network_id: String,
    #[serde(rename = "EndpointID", default)]
    pub endpoint_id: String,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: Map<String, Value>,
}

/// Body of `/NetworkDriver.DiscoverNew` and `/NetworkDriver.DiscoverDelete`, which the 20.10
/// engine sends only with a legacy cluster store configured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    /// 1 node discovery, 2 datastore config, 3 encryption keys, 4 encryption key update.
    #[serde(rename = "DiscoveryType", default)]
    pub discovery_type: i64,
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: Value,
}

// ---------------------------------------------------------------------------------------------
// IPAM driver

/// Body of `/IpamDriver.RequestPool`. The same request may come more than once and must get
/// the same answer each time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    /// The pool the user asked for (`--subnet`) in CIDR form; empty lets the driver choose.
    #[serde(rename = "Pool", default)]
    pub pool: String,
    /// `--ip-range`: the part of the pool to hand addresses from.
    #[serde(rename = "SubPool", default)]
    pub sub_pool: String,
    /// `--ipam-opt key=value`.
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
    /// Whether a driver-chosen pool must be IPv6.
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

/// Answer to `/IpamDriver.RequestPool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    /// Names the pool in later calls; the same pool must get the same ID.
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    /// CIDR form.
    #[serde(rename = "Pool", default)]
    pub pool: String,
    /// Metadata; see [`GATEWAY_ADDRESS`].
    #[serde(
        rename = "Data",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, String>,
}

/// Body of `/IpamDriver.ReleasePool`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
}

/// Body of `/IpamDriver.RequestAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    /// The address wanted, plain (`10.0.1.7`): the request fails if it cannot be had. Empty
    /// lets the driver choose.
    #[serde(rename = "Address", default)]
    pub address: String,
    /// See [`OPTION_REQUEST_ADDRESS_TYPE`].
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    pub options: BTreeMap<String, String>,
}

impl RequestAddressRequest {
    /// Whether libnetwork asks for the network's gateway rather than an endpoint's address.
    pub fn is_gateway(&self) -> bool {
        self.options
            .get(OPTION_REQUEST_ADDRESS_TYPE)
            .is_some_and(|t| t == GATEWAY_ADDRESS)
    }
}

/// Answer to `/IpamDriver.RequestAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    /// With the pool's prefix length, e.g. `10.0.1.7/24`. libnetwork refuses an empty one.
    #[serde(rename = "Address", default)]
    pub address: String,
    #[serde(
        rename = "Data",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub data: BTreeMap<String, String>,
}

/// Body of `/IpamDriver.ReleaseAddress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    #[serde(rename = "PoolID", default)]
    pub pool_id: String,
    /// Plain form, e.g. `10.0.1.7`.
    #[serde(rename = "Address", default)]
    pub address: String,
}
