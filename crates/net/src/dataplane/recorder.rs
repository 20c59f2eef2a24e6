//! A [`Dataplane`] for tests: records every call in order, keeps the state the calls asked
//! for so a test can look at it, and answers as [`Linux`](super::Linux) would (same names,
//! same validation), without touching the kernel. A test can make one operation fail.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{
    normalize_mac, plan, veth_names, Dataplane, Error, Names, NetSpec, Peer, Result, Vip,
    NET_ID_LEN,
};

/// One call as the data plane received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    EnsureNetwork(NetSpec),
    RemoveNetwork(String),
    AddEndpoint {
        net: String,
        endpoint: String,
        mac: String,
    },
    RemoveEndpoint {
        net: String,
        endpoint: String,
    },
    SetPeers {
        net: String,
        peers: Vec<Peer>,
    },
    SetVips {
        net: String,
        vips: Vec<Vip>,
    },
    RedirectDns {
        sandbox: PathBuf,
        dns: Ipv4Addr,
    },
}

impl Call {
    /// The operation's name, as [`Recorder::fail`] takes it.
    pub fn name(&self) -> &'static str {
        match self {
            Call::EnsureNetwork(_) => "ensure_network",
            Call::RemoveNetwork(_) => "remove_network",
            Call::AddEndpoint { .. } => "add_endpoint",
            Call::RemoveEndpoint { .. } => "remove_endpoint",
            Call::SetPeers { .. } => "set_peers",
            Call::SetVips { .. } => "set_vips",
            Call::RedirectDns { .. } => "redirect_dns",
        }
    }
}

/// What one network looks like after the calls so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkState {
    /// Endpoint id → its MAC address.
    pub endpoints: BTreeMap<String, String>,
    pub peers: Vec<Peer>,
    pub vips: Vec<Vip>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    /// Operation name → the message it fails with, until cleared.
    failures: BTreeMap<&'static str, String>,
    /// Network id (12-character prefix) → its state.
    networks: BTreeMap<String, NetworkState>,
    dns: BTreeMap<PathBuf, Ipv4Addr>,
}

#[derive(Debug)]
pub struct Recorder {
    prefix: String,
    state: Mutex<State>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder whose namespaces would be named `shoal-test-<id>`.
    pub fn new() -> Self {
        Recorder {
            prefix: "shoal-test-".into(),
            state: Mutex::default(),
        }
    }

    /// The calls so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The calls so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// Makes every later call of `op` (`"set_peers"`, … as [`Call::name`] says) fail with
    /// `message`; `None` makes it succeed again. A failing call is still recorded.
    pub fn fail(&self, op: &'static str, message: Option<&str>) {
        let mut state = self.lock();
        match message {
            Some(message) => state.failures.insert(op, message.to_owned()),
            None => state.failures.remove(op),
        };
    }

    /// The state of network `net_id` (any id with the same first 12 characters), if it exists.
    pub fn network(&self, net_id: &str) -> Option<NetworkState> {
        self.lock().networks.get(short(net_id)).cloned()
    }

    /// The DNS server `redirect_dns` set for the container at `sandbox`.
    pub fn dns(&self, sandbox: &Path) -> Option<Ipv4Addr> {
        self.lock().dns.get(sandbox).copied()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has already failed; its state is
        // still the best answer for the ones reporting it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `call` and says whether it should fail.
    fn record(&self, call: Call) -> Result<MutexGuard<'_, State>> {
        let op = call.name();
        let mut state = self.lock();
        state.calls.push(call);
        match state.failures.get(op) {
            Some(message) => Err(Error::Injected {
                op,
                message: message.clone(),
            }),
            None => Ok(state),
        }
    }

    fn existing<'a>(state: &'a mut State, net_id: &str) -> Result<&'a mut NetworkState> {
        state
            .networks
            .get_mut(short(net_id))
            .ok_or_else(|| Error::Netns {
                path: PathBuf::from(format!("(test double) {net_id}")),
                action: "find it: ensure_network was not called for it".into(),
                source: std::io::ErrorKind::NotFound.into(),
            })
    }
}

fn short(net_id: &str) -> &str {
    &net_id[..net_id.len().min(NET_ID_LEN)]
}

impl Dataplane for Recorder {
    fn ensure_network(&self, net: &NetSpec) -> Result<PathBuf> {
        let mut state = self.record(Call::EnsureNetwork(net.clone()))?;
        Names::new(&self.prefix, &net.id)?;
        state.networks.entry(short(&net.id).to_owned()).or_default();
        Ok(self.netns_path(&net.id))
    }

    fn remove_network(&self, net_id: &str) -> Result<()> {
        let mut state = self.record(Call::RemoveNetwork(net_id.to_owned()))?;
        Names::new(&self.prefix, net_id)?;
        state.networks.remove(short(net_id));
        Ok(())
    }

    fn add_endpoint(&self, net: &NetSpec, endpoint_id: &str, mac: &str) -> Result<String> {
        let mut state = self.record(Call::AddEndpoint {
            net: net.id.clone(),
            endpoint: endpoint_id.to_owned(),
            mac: mac.to_owned(),
        })?;
        let (_, container_side) = veth_names(endpoint_id)?;
        let mac = normalize_mac(mac)?;
        Self::existing(&mut state, &net.id)?
            .endpoints
            .insert(endpoint_id.to_owned(), mac);
        Ok(container_side)
    }

    fn remove_endpoint(&self, net_id: &str, endpoint_id: &str) -> Result<()> {
        let mut state = self.record(Call::RemoveEndpoint {
            net: net_id.to_owned(),
            endpoint: endpoint_id.to_owned(),
        })?;
        veth_names(endpoint_id)?;
        if let Some(network) = state.networks.get_mut(short(net_id)) {
            network.endpoints.remove(endpoint_id);
        }
        Ok(())
    }

    fn set_peers(&self, net: &NetSpec, peers: &[Peer]) -> Result<()> {
        let mut state = self.record(Call::SetPeers {
            net: net.id.clone(),
            peers: peers.to_vec(),
        })?;
        for peer in peers {
            normalize_mac(&peer.mac)?;
        }
        Self::existing(&mut state, &net.id)?.peers = peers.to_vec();
        Ok(())
    }

    fn set_vips(&self, net: &NetSpec, vips: &[Vip]) -> Result<()> {
        let mut state = self.record(Call::SetVips {
            net: net.id.clone(),
            vips: vips.to_vec(),
        })?;
        plan::vip_set(net, vips)?;
        Self::existing(&mut state, &net.id)?.vips = vips.to_vec();
        Ok(())
    }

    fn redirect_dns(&self, sandbox: &Path, dns: Ipv4Addr) -> Result<()> {
        let mut state = self.record(Call::RedirectDns {
            sandbox: sandbox.to_owned(),
            dns,
        })?;
        // As the real one: the first redirection for a container stays.
        state.dns.entry(sandbox.to_owned()).or_insert(dns);
        Ok(())
    }

    fn networks(&self) -> Result<Vec<String>> {
        Ok(self.lock().networks.keys().cloned().collect())
    }

    fn netns_path(&self, net_id: &str) -> PathBuf {
        super::netns_path(&self.prefix, net_id)
    }
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
            port: crate::dataplane::VXLAN_PORT,
        }
    }

    #[test]
    fn recorder_answers_like_the_real_one_and_keeps_the_state() {
        let dp = Recorder::new();
        let path = dp.ensure_network(&net()).unwrap();
        assert_eq!(path, PathBuf::from("/run/netns/shoal-test-n1aaaaaaaaaa"));
        let ifname = dp
            .add_endpoint(&net(), "0123456789abcdef", "02:42:0A:00:01:02")
            .unwrap();
        assert_eq!(ifname, "vc0123456789");
        let vip = Vip {
            addr: Ipv4Addr::new(10, 0, 1, 100),
            backends: vec![Ipv4Addr::new(10, 0, 1, 2)],
        };
        dp.set_vips(&net(), std::slice::from_ref(&vip)).unwrap();
        assert_eq!(dp.networks().unwrap(), ["n1aaaaaaaaaa"]);
        let state = dp.network(&net().id).unwrap();
        assert_eq!(state.endpoints["0123456789abcdef"], "02:42:0a:00:01:02");
        assert_eq!(state.vips, [vip]);
        let names: Vec<_> = dp.calls().iter().map(Call::name).collect();
        assert_eq!(names, ["ensure_network", "add_endpoint", "set_vips"]);

        dp.remove_network(&net().id).unwrap();
        assert!(dp.networks().unwrap().is_empty());
    }

    #[test]
    fn recorder_fails_an_operation_when_told_and_still_records_it() {
        let dp = Recorder::new();
        dp.fail("ensure_network", Some("no netns today"));
        let error = dp.ensure_network(&net()).unwrap_err();
        assert!(error.to_string().contains("no netns today"), "{error}");
        assert_eq!(dp.calls().len(), 1);
        let error = dp.set_peers(&net(), &[]).unwrap_err();
        assert!(
            error.to_string().contains("ensure_network was not called"),
            "{error}"
        );
        dp.fail("ensure_network", None);
        dp.ensure_network(&net()).unwrap();
    }

    #[test]
    fn recorder_keeps_the_first_dns_redirection() {
        let dp = Recorder::new();
        let sandbox = Path::new("/var/run/docker/netns/abc");
        dp.redirect_dns(sandbox, Ipv4Addr::new(10, 0, 1, 1))
            .unwrap();
        dp.redirect_dns(sandbox, Ipv4Addr::new(10, 0, 2, 1))
            .unwrap();
        assert_eq!(dp.dns(sandbox), Some(Ipv4Addr::new(10, 0, 1, 1)));
    }
}
