//! The node's overlay networks: serves shoal's Docker network and IPAM plugin to the local
//! engine, and follows the managers' network view (long poll) to program the node's data
//! plane and name servers (`shoal_net::overlay`). Attachable networks also exist on the
//! engine, so `docker run --network NAME` works on every node; engine networks of removed
//! cluster networks are removed once no container uses them.

use shoal_agent::engine::Engine;
use shoal_agent::networks::PendingAddresses;
use shoal_manager::Daemon;
use shoal_net::dataplane::Linux;
use shoal_net::dns::Upstream;
use shoal_net::overlay::{Cluster, Overlay};
use shoal_types::netview::{NetInfo, NetView};
use shoal_types::swarm::{IPAMConfig, IPAMOptions, Network, NetworkSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Pause after a failed call before trying again.
const RETRY: Duration = Duration::from_millis(500);
/// How often an engine network of a network that left the cluster is looked at again while
/// it stays (its containers are stopping, or the engine refused to remove it).
const LINGER_RETRY: Duration = Duration::from_secs(2);

/// The managers, as the overlay asks them for attached containers' addresses.
pub struct Managers {
    pub daemon: Arc<Daemon>,
    /// The addresses of task containers the agent is starting.
    pub pending: PendingAddresses,
}

impl Cluster for Managers {
    async fn attach(&self, network_id: &str, addr: Option<String>) -> Result<String, String> {
        self.daemon
            .attach_container(network_id, addr)
            .await
            .map_err(|e| e.to_string())
    }

    fn starting(&self, network_id: &str, addr: std::net::Ipv4Addr) -> bool {
        self.pending.contains(network_id, addr)
    }

    async fn detach(&self, network_id: &str, addr: &str) -> Result<(), String> {
        self.daemon
            .detach_container(network_id, addr)
            .await
            .map_err(|e| e.to_string())
    }
}

pub type NodeOverlay = Overlay<Managers, Linux>;

/// A prefix for this daemon's network namespaces that no other daemon on the machine uses
/// (several nodes may share one machine): derived from its data dir, so it survives restarts.
fn netns_prefix(data_dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let abs = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let digest = Sha256::digest(abs.to_string_lossy().as_bytes());
    format!("shoal-{}-", &hex::encode(digest)[..6])
}

/// Starts the plugin server on `plugin_dir/shoal.sock` and the view loop.
pub async fn run(
    daemon: Arc<Daemon>,
    plugin_dir: PathBuf,
    pending: PendingAddresses,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let dataplane = Arc::new(
        Linux::new(netns_prefix(&daemon.config().data_dir), None)
            .context("cannot set up the overlay data plane")?,
    );
    let upstream = Upstream::from_resolv_conf(Path::new("/etc/resolv.conf")).unwrap_or_else(|e| {
        tracing::warn!("no upstream name servers for names outside the cluster: {e}");
        Upstream::none()
    });
    let overlay = Arc::new(Overlay::new(
        Managers {
            daemon: daemon.clone(),
            pending,
        },
        dataplane,
        upstream,
    ));
    let plugin = daemon.config().network_plugin.clone();
    let socket = plugin_dir.join(format!("{plugin}.sock"));
    let listener = shoal_net::plugin::bind(&socket)
        .with_context(|| format!("cannot serve the network plugin on {}", socket.display()))?;
    tracing::info!("network plugin listening on {}", socket.display());
    let server = tokio::spawn(shoal_net::plugin::serve(listener, overlay.clone()));
    let engine = Engine::new(daemon.config().engine_socket.clone()).with_network_driver(plugin);
    follow_view(daemon, overlay, engine).await;
    server.abort();
    Ok(())
}

async fn follow_view(daemon: Arc<Daemon>, overlay: Arc<NodeOverlay>, engine: Engine) {
    let mut digest = String::new();
    // Engine calls never hold up the view: the engine may be waiting on this node's plugin
    // (an IPAM request that waits for the view to show its task), so the engine networks
    // are tended on the side, one pass at a time, with the latest view.
    let (tend, mut wanted) = tokio::sync::watch::channel(None::<Vec<NetInfo>>);
    tokio::spawn({
        let overlay = overlay.clone();
        async move {
            // While an engine network of a network that left the cluster still has
            // containers (its tasks are stopping), the pass is tried again: the view does
            // not change when they go, so nothing else would bring the pass back.
            let mut lingering = false;
            loop {
                if lingering {
                    tokio::select! {
                        changed = wanted.changed() => if changed.is_err() { return },
                        _ = tokio::time::sleep(LINGER_RETRY) => {}
                    }
                } else if wanted.changed().await.is_err() {
                    return;
                }
                let networks = wanted.borrow_and_update().clone();
                if let Some(networks) = networks {
                    lingering = engine_networks(&engine, &overlay, &networks).await;
                }
            }
        }
    });
    loop {
        let Some(node_id) = daemon.node_id() else {
            if !digest.is_empty() {
                // The node left the swarm: its networks go (their tasks have stopped).
                tracing::info!("this node left the swarm: removing its overlay networks");
                overlay.apply_view("", NetView::default()).await;
                tend.send_replace(Some(Vec::new()));
                digest.clear();
            }
            tokio::time::sleep(RETRY).await;
            continue;
        };
        match daemon.fetch_net_view(&digest).await {
            Ok(view) if view.digest != digest => {
                digest = view.digest.clone();
                let networks = view.networks.clone();
                overlay.apply_view(&node_id, view).await;
                tend.send_replace(Some(networks));
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("cannot fetch the network view: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// The cluster network as the engine's network is made from it.
fn as_network(n: &NetInfo) -> Network {
    Network {
        id: n.id.clone(),
        spec: NetworkSpec {
            name: n.name.clone(),
            labels: n.labels.clone(),
            internal: n.internal,
            attachable: n.attachable,
            ..Default::default()
        },
        ipam_options: Some(IPAMOptions {
            configs: vec![IPAMConfig {
                subnet: n.subnet.clone(),
                range: n.ip_range.clone(),
                gateway: n.gateway.to_string(),
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Attachable networks exist on the engine; engine networks of networks that left the
/// cluster go once unused. The overlay learns which engine network is which cluster network
/// (after a restart the engine does not say it again). Whether an engine network of a
/// network that left the cluster is still there (in use, or its removal failed).
async fn engine_networks(engine: &Engine, overlay: &NodeOverlay, networks: &[NetInfo]) -> bool {
    for n in networks.iter().filter(|n| n.attachable) {
        if let Err(e) = engine.ensure_network(&as_network(n)).await {
            tracing::warn!(network = %n.name, "cannot create the attachable network on the engine: {e}");
        }
    }
    let Ok(existing) = engine.shoal_networks().await else {
        return true;
    };
    let mut lingering = false;
    for (engine_id, name, id, used) in existing {
        overlay.learn_engine_network(&engine_id, &id);
        if networks.iter().any(|n| n.id == id) {
            continue;
        }
        if used > 0 {
            lingering = true;
        } else if let Err(e) = engine.remove_network(&name).await {
            tracing::debug!(network = %name, "cannot remove the engine network: {e}");
            lingering = true;
        }
    }
    lingering
}
