//! From what the kernel reports (`ip -j`, `bridge -j`) and what is wanted, the commands that
//! close the gap. Nothing here runs anything, so every decision is unit-tested without root.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use serde::Deserialize;

use super::{normalize_mac, Error, Names, NetSpec, Peer, Result, Vip, BRIDGE};

/// The UDP port of VXLAN (IANA), on every node.
/// VXLAN's IANA port, Swarm's default data path port.
pub const VXLAN_PORT: u16 = 4789;

/// One link as `ip -j -d addr show` prints it (only what the plan reads).
#[derive(Debug, Default, Deserialize)]
pub(super) struct Link {
    /// Empty on the `{}` entries old iproute2 prints for filtered-out links.
    #[serde(default)]
    pub ifname: String,
    /// The link's MAC address (`ip -j` calls it `address`).
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub flags: Vec<String>,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub linkinfo: Option<LinkInfo>,
    #[serde(default)]
    pub addr_info: Vec<AddrInfo>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct LinkInfo {
    #[serde(default)]
    pub info_kind: Option<String>,
    #[serde(default)]
    pub info_data: Option<VxlanData>,
}

/// A VXLAN link's settings; other kinds' `info_data` leave these unset.
#[derive(Debug, Default, Deserialize)]
pub(super) struct VxlanData {
    pub id: Option<u32>,
    pub local: Option<String>,
    pub port: Option<u16>,
    pub learning: Option<bool>,
    pub proxy: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AddrInfo {
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub local: String,
    #[serde(default)]
    pub prefixlen: u8,
}

impl Link {
    fn is_up(&self) -> bool {
        self.flags.iter().any(|f| f == "UP")
    }

    fn kind(&self) -> Option<&str> {
        self.linkinfo.as_ref()?.info_kind.as_deref()
    }

    fn ipv4(&self) -> impl Iterator<Item = (Ipv4Addr, u8)> + '_ {
        self.addr_info
            .iter()
            .filter(|a| a.family == "inet")
            .filter_map(|a| Some((a.local.parse().ok()?, a.prefixlen)))
    }
}

/// One entry of `ip -j neigh show dev VXLAN`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Neigh {
    pub dst: String,
    #[serde(default)]
    pub lladdr: Option<String>,
    #[serde(default)]
    pub state: Vec<String>,
}

/// One entry of `bridge -j fdb show dev VXLAN`. Entries without `dst` are the bridge's own
/// (learned or the port's address), not the VXLAN's remote table.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Fdb {
    pub mac: String,
    #[serde(default)]
    pub dst: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

/// Reads the JSON array `ip -j`/`bridge -j` print; they print nothing at all for an empty
/// table on some versions.
pub(super) fn parse<T: for<'de> Deserialize<'de>>(command: &str, stdout: &str) -> Result<Vec<T>> {
    if stdout.trim().is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_str(stdout).map_err(|e| Error::Output {
        command: command.to_owned(),
        reason: e.to_string(),
        stdout: stdout.chars().take(500).collect(),
    })
}

/// What `ensure_network` must do to a namespace whose links are `links`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct EnsurePlan {
    /// The VXLAN port exists with other settings: delete it before making it again.
    pub delete_vxlan: bool,
    /// Make the VXLAN port (in the host namespace, straight into the network's).
    pub create_vxlan: bool,
    /// `ip -batch` lines to run in the network's namespace after that.
    pub lines: Vec<String>,
}

#[cfg(test)]
impl EnsurePlan {
    pub fn is_empty(&self) -> bool {
        *self == EnsurePlan::default()
    }
}

/// Compares the namespace's links with what the network needs.
pub(super) fn ensure(net: &NetSpec, names: &Names, links: &[Link]) -> EnsurePlan {
    let find = |name: &str| links.iter().find(|l| l.ifname == name);
    let mut plan = EnsurePlan::default();

    if !find("lo").is_some_and(Link::is_up) {
        plan.lines.push("link set lo up".into());
    }

    let bridge = find(BRIDGE);
    let bridge_ok = bridge.is_some_and(|b| b.kind() == Some("bridge"));
    if bridge.is_some() && !bridge_ok {
        plan.lines.push(format!("link del {BRIDGE}"));
    }
    // The bridge's MAC is fixed (derived from the gateway): a bridge left to choose takes
    // the lowest of its ports', which changes as containers come and go, and containers'
    // neighbour entries for the gateway (the name server) and the VIPs would go stale.
    let mac = super::mac_for(net.gateway);
    if !bridge_ok {
        plan.lines
            .push(format!("link add {BRIDGE} address {mac} type bridge"));
    } else if bridge.is_some_and(|b| !b.address.eq_ignore_ascii_case(&mac)) {
        plan.lines.push(format!("link set {BRIDGE} address {mac}"));
    }
    let bridge = bridge.filter(|_| bridge_ok);
    let has_gateway = bridge.is_some_and(|b| {
        b.ipv4()
            .any(|(addr, len)| addr == net.gateway && len == net.prefix_len)
    });
    if !has_gateway {
        plan.lines.push(format!(
            "addr replace {}/{} dev {BRIDGE}",
            net.gateway, net.prefix_len
        ));
    }
    if !bridge.is_some_and(Link::is_up) {
        plan.lines.push(format!("link set {BRIDGE} up"));
    }

    // Endpoints whose bridge was made again lost their port settings with it.
    for veth in links.iter().filter(|l| l.kind() == Some("veth")) {
        if bridge.is_none() || veth.master.as_deref() != Some(BRIDGE) {
            plan.lines
                .push(format!("link set {} master {BRIDGE}", veth.ifname));
            plan.lines.push(format!(
                "link set {} type bridge_slave hairpin on",
                veth.ifname
            ));
        }
    }

    let vxlan = find(&names.vxlan);
    let vxlan_ok = vxlan.is_some_and(|v| vxlan_matches(net, v));
    plan.delete_vxlan = vxlan.is_some() && !vxlan_ok;
    plan.create_vxlan = !vxlan_ok;
    let vxlan = vxlan.filter(|_| vxlan_ok);
    if vxlan.is_none_or(|v| v.master.as_deref() != Some(BRIDGE)) {
        plan.lines
            .push(format!("link set {} master {BRIDGE}", names.vxlan));
    }
    if !vxlan.is_some_and(Link::is_up) {
        plan.lines.push(format!("link set {} up", names.vxlan));
    }
    plan
}

fn vxlan_matches(net: &NetSpec, link: &Link) -> bool {
    let Some(info) = &link.linkinfo else {
        return false;
    };
    let Some(data) = &info.info_data else {
        return false;
    };
    info.info_kind.as_deref() == Some("vxlan")
        && data.id == Some(net.vni)
        && data.local.as_deref() == Some(net.underlay.to_string().as_str())
        && data.port == Some(net.port)
        && data.learning == Some(false)
        && data.proxy == Some(true)
}

/// The host-side `ip` arguments that make the network's VXLAN port. It is made in the host
/// namespace, so its UDP socket stays on the underlay there, and placed in the network's
/// namespace by the same request, so no half-made port is ever left in the host's.
pub(super) fn vxlan_create_args(net: &NetSpec, names: &Names) -> Vec<String> {
    [
        "link",
        "add",
        &names.vxlan,
        "netns",
        &names.netns,
        "type",
        "vxlan",
        "id",
        &net.vni.to_string(),
        "dstport",
        &net.port.to_string(),
        "local",
        &net.underlay.to_string(),
        "nolearning",
        "proxy",
    ]
    .map(String::from)
    .to_vec()
}

/// The batch lines that plug a new endpoint into the bridge, run in the network's namespace.
/// The container's end is sent to `host_ref` by the same request, so one process does it all.
/// Hairpin lets a frame leave by the port it came in: a task whose connection to its own
/// service's VIP is balanced onto itself.
pub(super) fn endpoint_lines(
    net: &NetSpec,
    host_side: &str,
    container_side: &str,
    mac: &str,
    host_ref: &str,
) -> Vec<String> {
    let mtu = net.mtu;
    vec![
        format!("link add {host_side} mtu {mtu} type veth peer name {container_side} address {mac} mtu {mtu} netns {host_ref}"),
        format!("link set {host_side} master {BRIDGE}"),
        format!("link set {host_side} type bridge_slave hairpin on"),
        format!("link set {host_side} up"),
    ]
}

/// What `set_peers` changes: `bridge -batch` lines (the VXLAN's remote table) and `ip -batch`
/// lines (the neighbour table its `proxy` flag answers ARP from).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PeerPlan {
    pub fdb: Vec<String>,
    pub neigh: Vec<String>,
}

/// Only the differences, so an unchanged peer's entries are never touched (a delete and add
/// would drop its packets for a moment). Peers on this node are skipped: the bridge reaches
/// local endpoints itself, and a remote entry pointing at our own address would loop.
pub(super) fn peers(
    net: &NetSpec,
    names: &Names,
    desired: &[Peer],
    neigh: &[Neigh],
    fdb: &[Fdb],
) -> Result<PeerPlan> {
    let vx = &names.vxlan;
    let mut want_neigh = BTreeMap::new();
    let mut want_fdb = BTreeMap::new();
    for peer in desired.iter().filter(|p| p.node != net.underlay) {
        let mac = normalize_mac(&peer.mac)?;
        want_neigh.insert(peer.addr.to_string(), mac.clone());
        want_fdb.insert(mac, peer.node.to_string());
    }

    let mut plan = PeerPlan::default();
    let have_fdb: BTreeMap<&str, (&str, bool)> = fdb
        .iter()
        .filter(|e| e.mac != "00:00:00:00:00:00")
        .filter_map(|e| {
            let permanent = e.state.as_deref() == Some("permanent");
            Some((e.mac.as_str(), (e.dst.as_deref()?, permanent)))
        })
        .collect();
    for (mac, (dst, _)) in &have_fdb {
        if !want_fdb.contains_key(*mac) {
            plan.fdb
                .push(format!("fdb del {mac} dev {vx} self dst {dst}"));
        }
    }
    for (mac, node) in &want_fdb {
        if have_fdb.get(mac.as_str()) != Some(&(node.as_str(), true)) {
            plan.fdb.push(format!(
                "fdb replace {mac} dev {vx} self dst {node} vni {} permanent",
                net.vni
            ));
        }
    }

    let have_neigh: BTreeMap<&str, (Option<&str>, bool)> = neigh
        .iter()
        .map(|n| {
            let permanent = n.state.iter().any(|s| s == "PERMANENT");
            (n.dst.as_str(), (n.lladdr.as_deref(), permanent))
        })
        .collect();
    for addr in have_neigh.keys() {
        if !want_neigh.contains_key(*addr) {
            plan.neigh.push(format!("neigh del {addr} dev {vx}"));
        }
    }
    for (addr, mac) in &want_neigh {
        if have_neigh.get(addr.as_str()) != Some(&(Some(mac.as_str()), true)) {
            plan.neigh.push(format!(
                "neigh replace {addr} lladdr {mac} dev {vx} nud permanent"
            ));
        }
    }
    Ok(plan)
}

/// The VIPs wanted, one per address (the last one given wins), checked against the network.
pub(super) fn vip_set(net: &NetSpec, vips: &[Vip]) -> Result<BTreeMap<Ipv4Addr, Vec<Ipv4Addr>>> {
    let mut set = BTreeMap::new();
    for vip in vips {
        if vip.addr == net.gateway {
            return Err(Error::Invalid {
                what: "VIP",
                value: vip.addr.to_string(),
                why: "it is the network's gateway address",
            });
        }
        let backends: BTreeSet<Ipv4Addr> = vip.backends.iter().copied().collect();
        set.insert(vip.addr, backends.into_iter().collect());
    }
    Ok(set)
}

/// `ip -batch` lines that make the VIP /32 addresses on the bridge exactly `vips`. The bridge
/// answers ARP for them on this node only, so a client's packet for a VIP reaches this
/// namespace's netfilter, which picks the backend.
pub(super) fn vip_addresses(
    net: &NetSpec,
    bridge: Option<&Link>,
    vips: &BTreeMap<Ipv4Addr, Vec<Ipv4Addr>>,
) -> Vec<String> {
    let have: BTreeSet<Ipv4Addr> = bridge
        .into_iter()
        .flat_map(Link::ipv4)
        .filter(|&(addr, len)| len == 32 && addr != net.gateway)
        .map(|(addr, _)| addr)
        .collect();
    let gone = have
        .iter()
        .filter(|a| !vips.contains_key(a))
        .map(|a| format!("addr del {a}/32 dev {BRIDGE}"));
    let new = vips
        .keys()
        .filter(|a| !have.contains(a))
        .map(|a| format!("addr add {a}/32 dev {BRIDGE}"));
    gone.chain(new).collect()
}

/// The whole `ip shoal` table for `nft -f`: it declares the table (so the delete cannot fail),
/// deletes it and writes it anew, all one transaction, so there is never a moment without
/// rules or with half of them.
///
/// - prerouting (dstnat): a verdict map on the destination sends each VIP with backends to
///   its own chain, which picks a backend with `numgen random` — one lookup per new
///   connection whatever the number of VIPs. Conntrack keeps a connection on its backend and
///   undoes the translation on replies, also those bridged back from another node (through
///   br_netfilter), so the backend sees the client's own address.
/// - postrouting (srcnat): a task balanced onto itself would get a packet from its own
///   address and drop the reply as a martian, so that one case is masqueraded to the gateway.
/// - input: a VIP without backends is the bridge's own address, so packets would reach this
///   namespace's sockets (the name server's, say); they are refused instead — a TCP reset, an
///   ICMP port unreachable otherwise — so clients fail at once rather than time out.
pub(super) fn vip_rules(vips: &BTreeMap<Ipv4Addr, Vec<Ipv4Addr>>) -> String {
    let balanced: Vec<_> = vips.iter().filter(|(_, b)| !b.is_empty()).collect();
    let empty: Vec<String> = vips
        .iter()
        .filter(|(_, b)| b.is_empty())
        .map(|(vip, _)| vip.to_string())
        .collect();
    let backends: BTreeSet<Ipv4Addr> = balanced
        .iter()
        .flat_map(|(_, b)| b.iter())
        .copied()
        .collect();

    let mut out = String::from("table ip shoal\ndelete table ip shoal\ntable ip shoal {\n");
    out.push_str(
        "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
    );
    if !balanced.is_empty() {
        let entries: Vec<String> = balanced
            .iter()
            .map(|(vip, _)| format!("{vip} : goto vip-{vip}"))
            .collect();
        let _ = writeln!(out, "\t\tip daddr vmap {{ {} }}", entries.join(", "));
    }
    out.push_str("\t}\n");
    for (vip, backends) in &balanced {
        let target = match backends.as_slice() {
            [one] => one.to_string(),
            many => {
                let map: Vec<String> = many
                    .iter()
                    .enumerate()
                    .map(|(i, b)| format!("{i} : {b}"))
                    .collect();
                format!(
                    "numgen random mod {} map {{ {} }}",
                    many.len(),
                    map.join(", ")
                )
            }
        };
        let _ = writeln!(out, "\tchain vip-{vip} {{\n\t\tdnat to {target}\n\t}}");
    }
    out.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    if !backends.is_empty() {
        let pairs: Vec<String> = backends.iter().map(|b| format!("{b} . {b}")).collect();
        let _ = writeln!(
            out,
            "\t\tct status dnat ip saddr . ip daddr {{ {} }} masquerade",
            pairs.join(", ")
        );
    }
    out.push_str("\t}\n");
    out.push_str("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n");
    if !empty.is_empty() {
        let set = empty.join(", ");
        let _ = writeln!(
            out,
            "\t\tip daddr {{ {set} }} meta l4proto tcp reject with tcp reset\n\t\tip daddr {{ {set} }} reject"
        );
    }
    out.push_str("\t}\n}\n");
    out
}

/// The `ip shoal-dns` table for a container's namespace. `create table` fails when the table
/// exists, which aborts the whole transaction: that is how a second call leaves the first
/// one's rules alone without a separate look.
///
/// Priority -150 runs before Docker's own 127.0.0.11 rules (iptables nat at -100); once a
/// connection has its destination rewritten no later nat chain rewrites it again. The source
/// is masqueraded because the name server would otherwise answer 127.0.0.1, its own
/// loopback; it sees the container's address instead, which is also how it knows who asks.
pub(super) fn dns_rules(dns: Ipv4Addr) -> String {
    format!(
        "create table ip shoal-dns\n\
         add chain ip shoal-dns output {{ type nat hook output priority -150; policy accept; }}\n\
         add rule ip shoal-dns output ip daddr 127.0.0.11 udp dport 53 dnat to {dns}:53\n\
         add rule ip shoal-dns output ip daddr 127.0.0.11 tcp dport 53 dnat to {dns}:53\n\
         add chain ip shoal-dns postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
         add rule ip shoal-dns postrouting ip saddr 127.0.0.0/8 ip daddr {dns} masquerade\n"
    )
}

/// What to show of a failed batch's input: the line it stopped at where the tool says
/// (`ip` and `bridge` print `Command failed -:N`, 1-based; `nft` quotes the line in its
/// stderr already), else the first lines of it.
pub(super) fn failed_input(stderr: &str, input: &str) -> String {
    if let Some(line) = failed_line(stderr, input) {
        return format!(" (at input line `{line}`)");
    }
    if stderr.contains("/dev/stdin:") {
        return String::new();
    }
    const SHOWN: usize = 6;
    let lines: Vec<&str> = input.lines().collect();
    let more = lines.len().saturating_sub(SHOWN);
    let shown = lines[..lines.len().min(SHOWN)].join("; ");
    if more > 0 {
        format!(" (input: `{shown}` and {more} more lines)")
    } else {
        format!(" (input: `{shown}`)")
    }
}

fn failed_line(stderr: &str, input: &str) -> Option<String> {
    let (_, rest) = stderr.rsplit_once("Command failed -:")?;
    let n: usize = rest
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    input.lines().nth(n.checked_sub(1)?).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> NetSpec {
        NetSpec {
            id: "n1aaaaaaaaaaaaaaaaaaaaaaa".into(),
            vni: 4097,
            gateway: Ipv4Addr::new(10, 0, 1, 1),
            prefix_len: 24,
            mtu: 1450,
            underlay: Ipv4Addr::new(203, 0, 113, 1),
            port: VXLAN_PORT,
        }
    }

    fn names() -> Names {
        Names::new("shoal-abc123-", &net().id).unwrap()
    }

    /// What `ip -j -d addr show` printed for a complete network namespace (trimmed).
    const COMPLETE: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
      {"ifindex":2,"ifname":"vx-n1aaaaaaaaaa","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"master":"br0",
       "linkinfo":{"info_kind":"vxlan","info_data":{"id":4097,"local":"203.0.113.1","port_range":{"low":0,"high":0},"port":4789,"learning":false,"proxy":true,"ttl":0},
                   "info_slave_kind":"bridge","info_slave_data":{"state":"forwarding","hairpin":false,"id":"0x8001"}},
       "addr_info":[{"family":"inet6","local":"fe80::9072:34ff:fefb:8367","prefixlen":64}]},
      {"ifindex":3,"ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],
       "address":"02:42:0a:00:01:01","linkinfo":{"info_kind":"bridge","info_data":{"forward_delay":1500,"bridge_id":"8000.2a:b2:49:1a:cd:5d"}},
       "addr_info":[{"family":"inet","local":"10.0.1.1","prefixlen":24},{"family":"inet","local":"10.0.1.100","prefixlen":32}]},
      {}
    ]"#;

    fn links(json: &str) -> Vec<Link> {
        parse("ip -j -d addr show", json).unwrap()
    }

    #[test]
    fn a_complete_namespace_needs_nothing() {
        assert!(ensure(&net(), &names(), &links(COMPLETE)).is_empty());
    }

    #[test]
    fn an_empty_namespace_gets_everything_in_order() {
        let plan = ensure(&net(), &names(), &[]);
        assert!(!plan.delete_vxlan);
        assert!(plan.create_vxlan);
        assert_eq!(
            plan.lines,
            [
                "link set lo up",
                "link add br0 address 02:42:0a:00:01:01 type bridge",
                "addr replace 10.0.1.1/24 dev br0",
                "link set br0 up",
                "link set vx-n1aaaaaaaaaa master br0",
                "link set vx-n1aaaaaaaaaa up",
            ]
        );
    }

    #[test]
    fn a_missing_vxlan_is_made_again_and_plugged_in() {
        let mut links = links(COMPLETE);
        links.retain(|l| !l.ifname.starts_with("vx-"));
        let plan = ensure(&net(), &names(), &links);
        assert!(plan.create_vxlan && !plan.delete_vxlan);
        assert_eq!(
            plan.lines,
            [
                "link set vx-n1aaaaaaaaaa master br0",
                "link set vx-n1aaaaaaaaaa up"
            ]
        );
    }

    #[test]
    fn a_vxlan_with_another_vni_is_replaced() {
        let other = NetSpec { vni: 9, ..net() };
        let plan = ensure(&other, &names(), &links(COMPLETE));
        assert!(plan.delete_vxlan && plan.create_vxlan);
    }

    #[test]
    fn a_bridge_that_is_down_and_lost_its_address_is_repaired() {
        let json = COMPLETE
            .replace(
                r#""ifname":"br0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"]"#,
                r#""ifname":"br0","flags":["BROADCAST","MULTICAST"]"#,
            )
            .replace(
                r#"{"family":"inet","local":"10.0.1.1","prefixlen":24},"#,
                "",
            );
        let plan = ensure(&net(), &names(), &links(&json));
        assert!(!plan.create_vxlan);
        assert_eq!(
            plan.lines,
            ["addr replace 10.0.1.1/24 dev br0", "link set br0 up"]
        );
    }

    fn peer(last: u8, node: u8) -> Peer {
        let addr = Ipv4Addr::new(10, 0, 1, last);
        Peer {
            addr,
            mac: super::super::mac_for(addr).to_uppercase(),
            node: Ipv4Addr::new(203, 0, 113, node),
        }
    }

    #[test]
    fn peers_change_only_what_differs() {
        let neigh: Vec<Neigh> = parse(
            "ip -j neigh",
            r#"[{"dst":"10.0.1.3","lladdr":"02:42:0a:00:01:03","state":["PERMANENT"]},
                {"dst":"10.0.1.4","lladdr":"02:42:0a:00:01:04","state":["PERMANENT"]}]"#,
        )
        .unwrap();
        let fdb: Vec<Fdb> = parse(
            "bridge -j fdb",
            r#"[{"mac":"5e:7f:8d:da:4f:3b","flags":[],"master":"br0","state":"permanent"},
                {"mac":"02:42:0a:00:01:03","dst":"203.0.113.2","flags":["self"],"state":"permanent"},
                {"mac":"02:42:0a:00:01:04","dst":"203.0.113.2","flags":["self"],"state":"permanent"}]"#,
        )
        .unwrap();
        // .3 unchanged, .4 gone, .5 new, .6 is on this node.
        let want = [peer(3, 2), peer(5, 3), peer(6, 1)];
        let plan = peers(&net(), &names(), &want, &neigh, &fdb).unwrap();
        assert_eq!(
            plan.fdb,
            [
                "fdb del 02:42:0a:00:01:04 dev vx-n1aaaaaaaaaa self dst 203.0.113.2",
                "fdb replace 02:42:0a:00:01:05 dev vx-n1aaaaaaaaaa self dst 203.0.113.3 vni 4097 permanent",
            ]
        );
        assert_eq!(
            plan.neigh,
            [
                "neigh del 10.0.1.4 dev vx-n1aaaaaaaaaa",
                "neigh replace 10.0.1.5 lladdr 02:42:0a:00:01:05 dev vx-n1aaaaaaaaaa nud permanent",
            ]
        );
        let again = peers(&net(), &names(), &[peer(3, 2)], &neigh[..1], &fdb[..2]).unwrap();
        assert_eq!(again, PeerPlan::default());
    }

    #[test]
    fn a_peer_that_moved_to_another_node_is_replaced() {
        let fdb = [Fdb {
            mac: "02:42:0a:00:01:03".into(),
            dst: Some("203.0.113.2".into()),
            state: Some("permanent".into()),
        }];
        let plan = peers(&net(), &names(), &[peer(3, 7)], &[], &fdb).unwrap();
        assert_eq!(
            plan.fdb,
            ["fdb replace 02:42:0a:00:01:03 dev vx-n1aaaaaaaaaa self dst 203.0.113.7 vni 4097 permanent"]
        );
    }

    #[test]
    fn a_malformed_peer_mac_is_refused_before_reaching_a_batch() {
        let bad = Peer {
            mac: "02:42:0a:00:01:03\nlink del br0".into(),
            ..peer(3, 2)
        };
        let error = peers(&net(), &names(), &[bad], &[], &[]).unwrap_err();
        assert!(error.to_string().contains("MAC address"), "{error}");
    }

    fn vip(last: u8, backends: &[u8]) -> Vip {
        Vip {
            addr: Ipv4Addr::new(10, 0, 1, last),
            backends: backends
                .iter()
                .map(|&b| Ipv4Addr::new(10, 0, 1, b))
                .collect(),
        }
    }

    #[test]
    fn vip_addresses_follow_the_wanted_set_and_leave_the_gateway_alone() {
        let bridge = &links(COMPLETE)[2];
        let vips = vip_set(&net(), &[vip(101, &[3]), vip(102, &[])]).unwrap();
        assert_eq!(
            vip_addresses(&net(), Some(bridge), &vips),
            [
                "addr del 10.0.1.100/32 dev br0",
                "addr add 10.0.1.101/32 dev br0",
                "addr add 10.0.1.102/32 dev br0"
            ]
        );
        let error = vip_set(&net(), &[vip(1, &[3])]).unwrap_err();
        assert!(error.to_string().contains("gateway"), "{error}");
    }

    #[test]
    fn vip_rules_balance_hairpin_and_refuse_in_one_table() {
        let vips = vip_set(
            &net(),
            &[vip(100, &[3, 2, 3]), vip(101, &[4]), vip(102, &[])],
        )
        .unwrap();
        assert_eq!(
            vip_rules(&vips),
            "table ip shoal\n\
             delete table ip shoal\n\
             table ip shoal {\n\
             \tchain prerouting {\n\
             \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
             \t\tip daddr vmap { 10.0.1.100 : goto vip-10.0.1.100, 10.0.1.101 : goto vip-10.0.1.101 }\n\
             \t}\n\
             \tchain vip-10.0.1.100 {\n\
             \t\tdnat to numgen random mod 2 map { 0 : 10.0.1.2, 1 : 10.0.1.3 }\n\
             \t}\n\
             \tchain vip-10.0.1.101 {\n\
             \t\tdnat to 10.0.1.4\n\
             \t}\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\tct status dnat ip saddr . ip daddr { 10.0.1.2 . 10.0.1.2, 10.0.1.3 . 10.0.1.3, 10.0.1.4 . 10.0.1.4 } masquerade\n\
             \t}\n\
             \tchain input {\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tip daddr { 10.0.1.102 } meta l4proto tcp reject with tcp reset\n\
             \t\tip daddr { 10.0.1.102 } reject\n\
             \t}\n\
             }\n"
        );
    }

    #[test]
    fn no_vips_still_make_a_valid_empty_table() {
        let rules = vip_rules(&BTreeMap::new());
        assert!(
            !rules.contains("vmap") && !rules.contains("masquerade") && !rules.contains("reject")
        );
        assert!(rules.starts_with("table ip shoal\ndelete table ip shoal\n"));
    }

    #[test]
    fn a_batch_failure_names_the_line() {
        let input = "link set lo up\nlink set vx-x master br0\n";
        let stderr = "Cannot find device \"vx-x\"\nCommand failed -:2\n";
        assert_eq!(
            failed_line(stderr, input).as_deref(),
            Some("link set vx-x master br0")
        );
        assert_eq!(
            failed_input(stderr, input),
            " (at input line `link set vx-x master br0`)"
        );
        assert_eq!(
            failed_input(
                "Error: argument \"br0\" is wrong: Device does not exist",
                input
            ),
            " (input: `link set lo up; link set vx-x master br0`)"
        );
        let nft = "/dev/stdin:3:1-5: Error: syntax error\nadd rule";
        assert_eq!(failed_input(nft, "a\nb\nadd rule\n"), "");
    }
}
