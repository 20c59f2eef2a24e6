//! The Linux data plane of shoal's overlay networks on one node: what makes a network's
//! packets flow once the daemon knows which networks, endpoints, peers and VIPs this node has.
//!
//! Per overlay network per node there is one network namespace (`{prefix}{net_id[..12]}`)
//! holding a bridge `br0` with the network's gateway address, a VXLAN port whose UDP socket
//! lives in the host's (underlay) namespace, one veth port per local endpoint, static
//! neighbour and forwarding entries for the endpoints on other nodes (no flooding: the VXLAN
//! `proxy` flag answers ARP from the neighbour table), and one nft table `ip shoal` that
//! balances each VIP over its backends (this kernel has no IPVS). Inside a container's own
//! namespace it owns one more nft table, `ip shoal-dns`, which sends queries for Docker's
//! embedded resolver (127.0.0.11) to the network's name server.
//!
//! This module owns those kernel objects and nothing else: it does not decide which networks,
//! endpoints, peers or VIPs exist (the daemon does, from the cluster's view), allocate
//! addresses, or serve DNS (`crate::dns`). Every call takes the whole desired state of what it
//! touches and is safe to repeat, so the caller can reconcile periodically. Calls block
//! (they run `ip`, `bridge`, `nft` and `nsenter`); call them from `spawn_blocking`.
//!
//! - [`Dataplane`]: the operations; [`Linux`] does them, [`Recorder`] is the test double.
//! - `plan`: pure functions from what the kernel reports and what is wanted to the commands
//!   that close the gap, unit-tested without root.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

mod linux;
mod plan;
mod recorder;

#[cfg(test)]
mod tests;

pub use linux::Linux;
pub use plan::VXLAN_PORT;
pub use recorder::{Call, Recorder};

/// One overlay network as this node's data plane needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSpec {
    /// The cluster's network id; its first 12 characters name the namespace and VXLAN port.
    pub id: String,
    /// The VXLAN network identifier: the same on every node, different for every network.
    pub vni: u32,
    /// The network's gateway address, set on `br0` on every node (it only answers locally).
    pub gateway: Ipv4Addr,
    /// The subnet's prefix length (`24` for a /24).
    pub prefix_len: u8,
    /// The MTU of endpoints' veths: 1450 leaves room for VXLAN's 50 bytes on a 1500 underlay.
    pub mtu: u32,
    /// This node's underlay address: the VXLAN source and what peers send to.
    pub underlay: Ipv4Addr,
    /// The cluster's data path port: the UDP port VXLAN uses on every node (`swarm init
    /// --data-path-port`, default 4789).
    pub port: u16,
}

/// An endpoint on another node: how this node reaches it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    /// The endpoint's address on the overlay.
    pub addr: Ipv4Addr,
    /// Its MAC address, `aa:bb:cc:dd:ee:ff` (see [`mac_for`]).
    pub mac: String,
    /// The underlay address of the node it runs on.
    pub node: Ipv4Addr,
}

/// A service's virtual IP and the task addresses connections to it are spread over.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vip {
    pub addr: Ipv4Addr,
    /// Empty: connections are refused at once (see `plan::vip_rules`).
    pub backends: Vec<Ipv4Addr>,
}

/// The node's overlay data plane. Every method is idempotent and blocking; calls on one
/// network may come from several threads at once.
pub trait Dataplane: Send + Sync + 'static {
    /// Makes the network's namespace, bridge and VXLAN port exist and be right, repairing
    /// whatever part is missing; returns the namespace's path. Cheap when nothing is missing.
    fn ensure_network(&self, net: &NetSpec) -> Result<PathBuf>;
    /// Removes the network's namespace and every link in it; nothing to do if it is gone.
    fn remove_network(&self, net_id: &str) -> Result<()>;
    /// Plugs a new endpoint into the network's bridge; returns the name of the veth end left
    /// in the host namespace with `mac` and the network's MTU, for the engine to move into
    /// the container.
    fn add_endpoint(&self, net: &NetSpec, endpoint_id: &str, mac: &str) -> Result<String>;
    /// Unplugs the endpoint (both veth ends go); nothing to do if it is gone.
    fn remove_endpoint(&self, net_id: &str, endpoint_id: &str) -> Result<()>;
    /// Makes the network's remote endpoints exactly `peers`, changing only what differs.
    /// Peers on this node (`node` is our underlay address) are skipped: the bridge reaches
    /// them itself.
    fn set_peers(&self, net: &NetSpec, peers: &[Peer]) -> Result<()>;
    /// Makes the network's VIPs exactly `vips`, the rules replaced in one transaction.
    fn set_vips(&self, net: &NetSpec, vips: &[Vip]) -> Result<()>;
    /// In the container namespace at `sandbox` (the engine's `SandboxKey`), sends DNS queries
    /// for 127.0.0.11 to `dns` port 53. The first call for a container wins; later ones
    /// leave it as it is.
    fn redirect_dns(&self, sandbox: &Path, dns: Ipv4Addr) -> Result<()>;
    /// The networks (12-character id prefixes) this node has a namespace for, so the caller
    /// can remove those it no longer wants after a restart.
    fn networks(&self) -> Result<Vec<String>>;
    /// Where the network's namespace is (or would be) mounted.
    fn netns_path(&self, net_id: &str) -> PathBuf;
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a data plane operation failed, naming the command and what it printed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid {what} `{value}`: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("cannot run `{command}` ({source}); the data plane needs iproute2 (`ip`, `bridge`), nftables (`nft`) and util-linux (`nsenter`)")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}{input}")]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
        /// For a batch, the input line the tool stopped at, or the input when it did not say
        /// (`ip` exits without a line number when it cannot even parse one); else empty.
        input: String,
    },
    #[error("`{command}` printed what the data plane cannot read ({reason}): {stdout}")]
    Output {
        command: String,
        reason: String,
        stdout: String,
    },
    #[error("network namespace {path}: cannot {action} ({source})")]
    Netns {
        path: PathBuf,
        action: String,
        source: std::io::Error,
    },
    #[error("test double: {op} fails as the test asked: {message}")]
    Injected { op: &'static str, message: String },
}

/// The MAC address shoal gives the endpoint at `ip`: `02:42:` and the address's four bytes,
/// as Docker does, so a peer's MAC follows from its address.
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

/// The first `len` characters of an id, after checking it can go into a name and a command
/// line (the kernel limits interface names to 15 bytes; a space or newline would split a
/// batch line).
fn short_id<'a>(what: &'static str, id: &'a str, len: usize) -> Result<&'a str> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::Invalid {
            what,
            value: id.to_owned(),
            why: "ids are non-empty and made of ASCII letters and digits",
        });
    }
    Ok(&id[..id.len().min(len)])
}

/// `mac` in the lowercase form the kernel prints, or why it is not a MAC address.
fn normalize_mac(mac: &str) -> Result<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    let valid = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if !valid {
        return Err(Error::Invalid {
            what: "MAC address",
            value: mac.to_owned(),
            why: "expected six two-digit hex bytes separated by colons",
        });
    }
    Ok(mac.to_ascii_lowercase())
}

/// The names one network's objects get on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Names {
    /// The network namespace.
    netns: String,
    /// The VXLAN port (at most 15 bytes: `vx-` and 12 id characters).
    vxlan: String,
}

const BRIDGE: &str = "br0";
const NETNS_DIR: &str = "/run/netns";
/// Endpoint ids are cut to 10 characters: `vh`/`vc` and 10 leave room under 15 bytes.
const ENDPOINT_ID_LEN: usize = 10;
const NET_ID_LEN: usize = 12;

impl Names {
    fn new(prefix: &str, net_id: &str) -> Result<Self> {
        let short = short_id("network id", net_id, NET_ID_LEN)?;
        Ok(Names {
            netns: format!("{prefix}{short}"),
            vxlan: format!("vx-{short}"),
        })
    }
}

/// The two ends of an endpoint's veth pair.
fn veth_names(endpoint_id: &str) -> Result<(String, String)> {
    let short = short_id("endpoint id", endpoint_id, ENDPOINT_ID_LEN)?;
    Ok((format!("vh{short}"), format!("vc{short}")))
}

fn netns_path(prefix: &str, net_id: &str) -> PathBuf {
    let short = &net_id[..net_id.len().min(NET_ID_LEN)];
    Path::new(NETNS_DIR).join(format!("{prefix}{short}"))
}

/// Checks a namespace-name prefix: it becomes a file name in /run/netns and a command-line
/// word.
fn check_prefix(prefix: &str) -> Result<()> {
    let ok = !prefix.is_empty()
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !prefix.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: "namespace prefix",
            value: prefix.to_owned(),
            why: "use ASCII letters, digits, `-`, `_` or `.`, not starting with `.`",
        })
    }
}
