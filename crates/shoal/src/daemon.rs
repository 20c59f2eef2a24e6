//! `shoal daemon`: wires the manager, the Raft member and the API servers of one node.

use anyhow::{bail, Context, Result};
use shoal_manager::{Daemon, DaemonConfig};
use shoal_raft::Timing;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn parse_duration(s: &str) -> Result<Duration> {
    let ns = crate::cli::parse_duration(s)?;
    if ns <= 0 {
        bail!("a duration must be positive: {s:?}");
    }
    Ok(Duration::from_nanos(ns as u64))
}

#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// Where this node keeps its state (Raft log, snapshots, identity, keys).
    #[arg(long, default_value = "/var/lib/shoal")]
    pub data_dir: PathBuf,
    /// Node-to-node address used when `swarm init`/`join` leave the listen address to the
    /// default.
    #[arg(long, default_value = "0.0.0.0:2377")]
    pub listen_addr: String,
    /// Timing profile: `standard` (1 s election timeout, 5 s node heartbeat) or `fast`
    /// (for tests).
    #[arg(long, default_value = "standard", env = "SHOAL_TIMING")]
    pub timing: String,
    /// Override the profile's election timeout (e.g. `1s`, `300ms`).
    #[arg(long, value_parser = parse_duration)]
    pub election_timeout: Option<Duration>,
    /// Override the profile's Raft heartbeat interval.
    #[arg(long, value_parser = parse_duration)]
    pub raft_heartbeat: Option<Duration>,
    /// Override the profile's node heartbeat period.
    #[arg(long, value_parser = parse_duration)]
    pub node_heartbeat: Option<Duration>,
    /// The local Docker Engine's socket.
    #[arg(long, default_value = "/var/run/docker.sock")]
    pub engine_socket: PathBuf,
    /// The address the routing mesh listens on for ports published in `ingress` mode (every
    /// interface by default, as Swarm does).
    #[arg(long, default_value = "0.0.0.0")]
    pub mesh_listen_ip: std::net::IpAddr,
    /// Where the engine looks for network plugins: shoal serves its overlay network and
    /// IPAM driver (`shoal`) there.
    #[arg(long, default_value = "/run/docker/plugins")]
    pub plugin_dir: PathBuf,
    /// The name the plugin is served under (`NAME.sock`), and the driver of the engine's
    /// networks: give each node its own when several nodes share one engine.
    #[arg(long, default_value = "shoal")]
    pub network_plugin: String,
}

/// Runs the daemon until SIGINT or SIGTERM.
pub async fn run(hosts: Vec<String>, args: DaemonArgs) -> Result<()> {
    let mut timing = Timing::profile(&args.timing).with_context(|| {
        format!(
            "unknown timing profile {:?}: use standard or fast",
            args.timing
        )
    })?;
    if let Some(d) = args.election_timeout {
        timing.election_timeout = d;
    }
    if let Some(d) = args.raft_heartbeat {
        timing.raft_heartbeat = d;
    }
    if let Some(d) = args.node_heartbeat {
        timing.node_heartbeat = d;
    }
    if timing.raft_heartbeat >= timing.election_timeout {
        bail!(
            "the Raft heartbeat ({:?}) must be shorter than the election timeout ({:?})",
            timing.raft_heartbeat,
            timing.election_timeout
        );
    }
    let hosts = if hosts.is_empty() {
        vec!["unix:///var/run/shoal.sock".to_string()]
    } else {
        hosts
    };
    let cfg = DaemonConfig {
        data_dir: args.data_dir.clone(),
        listen_addr: args.listen_addr.clone(),
        timing,
        engine_socket: args.engine_socket.clone(),
        network_plugin: args.network_plugin.clone(),
    };
    // The loopback ports of this node's tasks' ingress-mode ports: the agent records them,
    // the routing mesh (and its pipes from other nodes) connects to them.
    let ingress = shoal_types::mesh::IngressPorts::default();
    let daemon: Arc<Daemon> = Daemon::start(cfg, shoal_api::binder_with(ingress.clone()))
        .await
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("cannot start the node in {}", args.data_dir.display()))?;
    // The agent runs this node's tasks on the local Docker Engine while it is in a swarm.
    // The addresses of task containers being started: the agent marks them, the network
    // plugin grants them without waiting for the network view.
    let pending = shoal_agent::networks::PendingAddresses::default();
    let agent = tokio::spawn(crate::agent::run(
        daemon.clone(),
        ingress.clone(),
        pending.clone(),
    ));
    // Every node listens on the ports published in ingress mode.
    let mesh = tokio::spawn(crate::mesh::run(
        daemon.clone(),
        ingress,
        args.mesh_listen_ip,
    ));
    // Overlay networks: the engine's network plugin, the data plane and the name servers.
    let net = tokio::spawn({
        let daemon = daemon.clone();
        let dir = args.plugin_dir.clone();
        async move {
            if let Err(e) = crate::net::run(daemon, dir, pending).await {
                tracing::error!("overlay networks are unavailable on this node: {e:#}");
            }
        }
    });
    let router = shoal_api::docker_router(daemon.clone());
    let mut servers = tokio::task::JoinSet::new();
    for h in hosts {
        let router = router.clone();
        if let Some(path) = h.strip_prefix("unix://") {
            let path = PathBuf::from(path);
            // Bind now so that a bad address fails the start, not later.
            tracing::info!("API listening on unix://{}", path.display());
            servers.spawn(async move {
                shoal_api::serve_unix(&path, router)
                    .await
                    .with_context(|| format!("cannot serve the API on unix://{}", path.display()))
            });
        } else if let Some(addr) = h.strip_prefix("tcp://") {
            let addr = addr.to_string();
            let ip = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(&addr);
            if !(ip.starts_with("127.") || ip == "localhost" || ip == "[::1]") {
                tracing::warn!(
                    "API on tcp://{addr} without TLS: anyone who can reach it controls the cluster"
                );
            }
            tracing::info!("API listening on tcp://{addr}");
            servers.spawn(async move {
                shoal_api::serve_tcp(&addr, router)
                    .await
                    .with_context(|| format!("cannot serve the API on tcp://{addr}"))
            });
        } else {
            bail!("invalid -H {h:?}: use unix:///path/to.sock or tcp://127.0.0.1:PORT");
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        Some(res) = servers.join_next() => {
            agent.abort();
            mesh.abort();
            net.abort();
            daemon.shutdown().await;
            return match res {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(anyhow::anyhow!("API server task failed: {e}")),
            };
        }
    }
    tracing::info!("shutting down");
    // Containers keep running: the agent adopts them when the daemon comes back.
    agent.abort();
    mesh.abort();
    net.abort();
    // A plugin socket nobody answers on makes the engine retry it for ~15 s on every volume
    // and network listing (it asks every plugin what it implements); without the socket it
    // knows at once the plugin is gone. A new start binds it again.
    let socket = args
        .plugin_dir
        .join(format!("{}.sock", args.network_plugin));
    if let Err(e) = std::fs::remove_file(&socket) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove the plugin socket {}: {e}", socket.display());
        }
    }
    daemon.shutdown().await;
    Ok(())
}
