//! The routing mesh, in userspace: every node listens on each port published in `ingress`
//! mode and forwards each connection to one running task of the service, round-robin,
//! wherever it runs. A task on this node is reached on the loopback port its container got
//! for the target port (the agent records it in [`IngressPorts`]); a task on another node
//! through a pipe to that node (`/internal/mesh`, an upgraded node-to-node connection), which
//! connects to its own loopback port. Nothing depends on IPVS or iptables.
//!
//! The routes come from the managers (`cluster::mesh`); this module only listens and copies
//! bytes. TCP only: UDP ports published in ingress mode are not routed.

use shoal_agent::IngressPorts;
use shoal_manager::cluster::mesh::{MeshBackend, MeshPort};
use shoal_manager::Daemon;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Pause after a failed routes call before trying again.
const RETRY: Duration = Duration::from_millis(500);
/// Pause before binding a published port again that was taken.
const BIND_RETRY: Duration = Duration::from_secs(2);
/// How long connecting to a task on this node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Something bytes can be copied to and from: a local task's socket or a pipe to a node.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// What connections of one published port need: the current route and where the
/// round-robin is.
struct Route {
    port: RwLock<Arc<MeshPort>>,
    next: AtomicUsize,
}

struct Listener {
    route: Arc<Route>,
    task: JoinHandle<()>,
}

/// Runs for the life of the daemon: listens on the published ingress ports of the swarm the
/// node is in, none while it is in none.
pub async fn run(daemon: Arc<Daemon>, ingress: IngressPorts, listen_ip: IpAddr) {
    let mut listeners: HashMap<u32, Listener> = HashMap::new();
    let mut digest = String::new();
    loop {
        if daemon.node_id().is_none() {
            if !listeners.is_empty() {
                tracing::info!("this node left the swarm: the routing mesh stops listening");
                apply(&daemon, &ingress, listen_ip, &mut listeners, Vec::new());
                digest.clear();
            }
            tokio::time::sleep(RETRY).await;
            continue;
        }
        match daemon.fetch_mesh_routes(&digest).await {
            Ok(resp) => {
                if resp.digest != digest {
                    apply(&daemon, &ingress, listen_ip, &mut listeners, resp.ports);
                    digest = resp.digest;
                }
            }
            Err(e) => {
                tracing::debug!("cannot fetch the routing mesh's routes: {e}");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Listens on the ports of `ports` (with their new backends) and on no others.
fn apply(
    daemon: &Arc<Daemon>,
    ingress: &IngressPorts,
    listen_ip: IpAddr,
    listeners: &mut HashMap<u32, Listener>,
    ports: Vec<MeshPort>,
) {
    let mut wanted: HashMap<u32, MeshPort> = HashMap::new();
    for p in ports {
        if let Some(other) = wanted.get(&p.published_port) {
            tracing::warn!(
                "port {} is published by services {} and {}: only the first is routed",
                p.published_port,
                other.service_name,
                p.service_name
            );
            continue;
        }
        wanted.insert(p.published_port, p);
    }
    listeners.retain(|port, l| {
        if wanted.contains_key(port) {
            return true;
        }
        tracing::info!("routing mesh: no longer listening on port {port}");
        l.task.abort();
        false
    });
    for (published, port) in wanted {
        let port = Arc::new(port);
        if let Some(l) = listeners.get(&published) {
            *l.route.port.write().unwrap_or_else(|e| e.into_inner()) = port;
            continue;
        }
        let route = Arc::new(Route {
            port: RwLock::new(port),
            next: AtomicUsize::new(0),
        });
        let task = tokio::spawn(listen(
            daemon.clone(),
            ingress.clone(),
            listen_ip,
            published,
            route.clone(),
        ));
        listeners.insert(published, Listener { route, task });
    }
}

/// Binds the published port (again and again while it is taken) and serves it.
async fn listen(
    daemon: Arc<Daemon>,
    ingress: IngressPorts,
    ip: IpAddr,
    published: u32,
    route: Arc<Route>,
) {
    let Ok(port) = u16::try_from(published) else {
        tracing::warn!("routing mesh: published port {published} is out of range");
        return;
    };
    let mut warned = false;
    let listener = loop {
        match TcpListener::bind((ip, port)).await {
            Ok(l) => break l,
            Err(e) => {
                if !warned {
                    let service = route
                        .port
                        .read()
                        .unwrap_or_else(|e| e.into_inner())
                        .service_name
                        .clone();
                    tracing::warn!(
                        "routing mesh: cannot listen on {ip}:{port} for service {service}: {e}; trying again every {BIND_RETRY:?}"
                    );
                    warned = true;
                }
                tokio::time::sleep(BIND_RETRY).await;
            }
        }
    };
    tracing::info!("routing mesh: listening on {ip}:{port}");
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                let _ = client.set_nodelay(true);
                let port = route.port.read().unwrap_or_else(|e| e.into_inner()).clone();
                let start = route.next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(forward(
                    daemon.clone(),
                    ingress.clone(),
                    client,
                    peer,
                    port,
                    start,
                ));
            }
            Err(e) => {
                tracing::warn!("routing mesh: accept on {ip}:{port}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Connects `client` to a backend of `port`, starting at the `start`-th one and trying the
/// next when one cannot be reached; without any, the connection is closed.
async fn forward(
    daemon: Arc<Daemon>,
    ingress: IngressPorts,
    mut client: TcpStream,
    peer: std::net::SocketAddr,
    port: Arc<MeshPort>,
    start: usize,
) {
    let n = port.backends.len();
    if n == 0 {
        tracing::debug!(
            "routing mesh: service {} has no running task for port {}; closing the connection from {peer}",
            port.service_name,
            port.published_port
        );
        return;
    }
    let me = daemon.node_id().unwrap_or_default();
    for i in 0..n {
        let b = &port.backends[(start + i) % n];
        match connect(&daemon, &ingress, &me, b, port.target_port).await {
            Ok(mut backend) => {
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
                    tracing::debug!(task = %b.task_id, "routing mesh: connection from {peer} ended: {e}");
                }
                return;
            }
            Err(e) => tracing::debug!(
                task = %b.task_id,
                node = %b.node_id,
                "routing mesh: cannot reach a task of service {}: {e}",
                port.service_name
            ),
        }
    }
    tracing::warn!(
        "routing mesh: no task of service {} could be reached for port {}; closing the connection from {peer}",
        port.service_name,
        port.published_port
    );
}

async fn connect(
    daemon: &Daemon,
    ingress: &IngressPorts,
    me: &str,
    b: &MeshBackend,
    target_port: u32,
) -> Result<Box<dyn Conn>, String> {
    if b.node_id != me {
        let pipe = daemon
            .open_mesh_pipe(b, target_port)
            .await
            .map_err(|e| format!("pipe through node {} ({}): {e}", b.node_id, b.addr))?;
        return Ok(Box::new(pipe));
    }
    let local = ingress.get(&b.task_id, target_port).ok_or_else(|| {
        format!("its container has no loopback port for port {target_port} (yet)")
    })?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(("127.0.0.1", local)))
        .await
        .map_err(|_| format!("127.0.0.1:{local} did not accept within {CONNECT_TIMEOUT:?}"))?
        .map_err(|e| format!("127.0.0.1:{local}: {e}"))?;
    let _ = conn.set_nodelay(true);
    Ok(Box::new(conn))
}
