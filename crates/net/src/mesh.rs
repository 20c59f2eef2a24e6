//! The routing mesh on a node, in userspace: the node listens on each port published in
//! `ingress` mode and forwards each connection to one running task of the service,
//! round-robin, wherever it runs. A task on this node is reached on the loopback port its
//! container got for the target port (the agent records it in [`IngressPorts`]); a task on
//! another node through a pipe to that node ([`MeshCluster::open_pipe`]), whose mesh joins it
//! to its own loopback port ([`connect_task`], then [`TaskEnd::join`]). Nothing depends on IPVS
//! or iptables.
//!
//! The routes come from the managers through a [`MeshCluster`] (the daemon implements it);
//! this module only listens, connects and copies bytes. It decides no route and serves no
//! HTTP: the node-to-node server upgrades a pipe and hands it here. TCP only: UDP ports
//! published in ingress mode are not routed.

use shoal_types::mesh::{IngressPorts, MeshBackend, MeshPipeReq, MeshPort, MeshRoutesResp};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
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

/// What the mesh asks of the managers and of the other nodes.
pub trait MeshCluster: Send + Sync + 'static {
    /// A connection to another node that carries one connection to a task there.
    type Pipe: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// This node's ID, while it is in a swarm.
    fn node_id(&self) -> Option<String>;

    /// The mesh's routes, once they differ from those with `digest` (empty: none yet), or
    /// the same ones after a long-poll period.
    fn fetch_routes(
        &self,
        digest: &str,
    ) -> impl Future<Output = Result<MeshRoutesResp, String>> + Send;

    /// Opens a pipe to `target_port` of `backend`, a task that runs on another node.
    fn open_pipe(
        &self,
        backend: &MeshBackend,
        target_port: u32,
    ) -> impl Future<Output = Result<Self::Pipe, String>> + Send;
}

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

/// Runs for the life of the daemon: listens on `listen_ip` on the published ingress ports of
/// the swarm the node is in, none while it is in none.
pub async fn run<C: MeshCluster>(cluster: Arc<C>, ingress: IngressPorts, listen_ip: IpAddr) {
    let mut listeners: HashMap<u32, Listener> = HashMap::new();
    let mut digest = String::new();
    loop {
        if cluster.node_id().is_none() {
            if !listeners.is_empty() {
                tracing::info!("this node left the swarm: the routing mesh stops listening");
                apply(&cluster, &ingress, listen_ip, &mut listeners, Vec::new());
                digest.clear();
            }
            tokio::time::sleep(RETRY).await;
            continue;
        }
        match cluster.fetch_routes(&digest).await {
            Ok(resp) => {
                if resp.digest != digest {
                    apply(&cluster, &ingress, listen_ip, &mut listeners, resp.ports);
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
fn apply<C: MeshCluster>(
    cluster: &Arc<C>,
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
            cluster.clone(),
            ingress.clone(),
            listen_ip,
            published,
            route.clone(),
        ));
        listeners.insert(published, Listener { route, task });
    }
}

/// Binds the published port (again and again while it is taken) and serves it.
async fn listen<C: MeshCluster>(
    cluster: Arc<C>,
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
                    cluster.clone(),
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
async fn forward<C: MeshCluster>(
    cluster: Arc<C>,
    ingress: IngressPorts,
    mut client: TcpStream,
    peer: SocketAddr,
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
    let me = cluster.node_id().unwrap_or_default();
    for i in 0..n {
        let b = &port.backends[(start + i) % n];
        match connect(&*cluster, &ingress, &me, b, port.target_port).await {
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

async fn connect<C: MeshCluster>(
    cluster: &C,
    ingress: &IngressPorts,
    me: &str,
    b: &MeshBackend,
    target_port: u32,
) -> Result<Box<dyn Conn>, String> {
    if b.node_id != me {
        let pipe = cluster
            .open_pipe(b, target_port)
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

/// Why a pipe another node's mesh asks for cannot reach a task of this node.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// The pipe was meant for another node.
    #[error("node {asked} is not this node ({me})")]
    NotThisNode { asked: String, me: String },
    /// The task does not run here, or its container has no loopback port for the target port.
    #[error("task {task_id} has no running container with port {target_port} on node {me}")]
    NoSuchPort {
        task_id: String,
        target_port: u32,
        me: String,
    },
    /// The task's loopback port refused the connection.
    #[error("cannot connect to port {target_port} of task {task_id} (127.0.0.1:{port}): {source}")]
    Unreachable {
        task_id: String,
        target_port: u32,
        port: u16,
        source: std::io::Error,
    },
}

/// This node's end of a pipe another node's mesh opened: a connection to the task's port.
#[derive(Debug)]
pub struct TaskEnd {
    task_id: String,
    conn: TcpStream,
}

/// Connects to the port the pipe request `req` names, of a task of this node (`me`). Done
/// before the pipe is accepted, so that the other node learns of a refusal and tries another
/// task.
pub async fn connect_task(
    ingress: &IngressPorts,
    me: &str,
    req: &MeshPipeReq,
) -> Result<TaskEnd, PipeError> {
    if req.node_id != me {
        return Err(PipeError::NotThisNode {
            asked: req.node_id.clone(),
            me: me.to_string(),
        });
    }
    let port = ingress
        .get(&req.task_id, req.target_port)
        .ok_or_else(|| PipeError::NoSuchPort {
            task_id: req.task_id.clone(),
            target_port: req.target_port,
            me: me.to_string(),
        })?;
    let conn = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|source| PipeError::Unreachable {
            task_id: req.task_id.clone(),
            target_port: req.target_port,
            port,
            source,
        })?;
    let _ = conn.set_nodelay(true);
    Ok(TaskEnd {
        task_id: req.task_id.clone(),
        conn,
    })
}

impl TaskEnd {
    /// Copies bytes both ways between the accepted pipe and the task until either closes.
    pub async fn join<P: AsyncRead + AsyncWrite + Unpin>(mut self, mut pipe: P) {
        if let Err(e) = tokio::io::copy_bidirectional(&mut pipe, &mut self.conn).await {
            tracing::debug!(task = %self.task_id, "mesh pipe ended: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::watch;

    const ME: &str = "node-a";
    const WAIT: Duration = Duration::from_secs(10);

    /// The managers as a watch of the routes, and other nodes whose tasks answer a pipe with
    /// their task ID.
    struct FakeCluster {
        routes: watch::Sender<MeshRoutesResp>,
    }

    impl MeshCluster for FakeCluster {
        type Pipe = DuplexStream;

        fn node_id(&self) -> Option<String> {
            Some(ME.to_string())
        }

        async fn fetch_routes(&self, digest: &str) -> Result<MeshRoutesResp, String> {
            let mut rx = self.routes.subscribe();
            let routes = rx
                .wait_for(|r| r.digest != digest)
                .await
                .map_err(|e| e.to_string())?;
            Ok(routes.clone())
        }

        async fn open_pipe(&self, b: &MeshBackend, _: u32) -> Result<DuplexStream, String> {
            if b.node_id == "down" {
                return Err("connection refused".into());
            }
            let (ours, mut theirs) = tokio::io::duplex(1024);
            let task_id = b.task_id.clone();
            tokio::spawn(async move {
                let _ = theirs.write_all(task_id.as_bytes()).await;
                let _ = theirs.shutdown().await;
            });
            Ok(ours)
        }
    }

    fn backend(task_id: &str, node_id: &str) -> MeshBackend {
        MeshBackend {
            task_id: task_id.into(),
            node_id: node_id.into(),
            addr: format!("{node_id}:2377"),
            credential: String::new(),
        }
    }

    fn routes(digest: &str, published_port: u16, backends: Vec<MeshBackend>) -> MeshRoutesResp {
        MeshRoutesResp {
            digest: digest.into(),
            ports: vec![MeshPort {
                service_id: "web".into(),
                service_name: "web".into(),
                protocol: "tcp".into(),
                published_port: published_port.into(),
                target_port: 80,
                backends,
            }],
        }
    }

    /// A task container on this node: answers every connection with its ID. Its loopback port.
    async fn local_task(task_id: &'static str) -> u16 {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let _ = c.write_all(task_id.as_bytes()).await;
            }
        });
        port
    }

    async fn free_port() -> u16 {
        let l = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        l.local_addr().unwrap().port()
    }

    /// Connects to the published port: the ID of the task that answered (empty: closed
    /// without an answer), or `None` while nothing listens.
    async fn answer(port: u16) -> Option<String> {
        let mut c = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let mut s = String::new();
        c.read_to_string(&mut s).await.ok()?;
        Some(s)
    }

    async fn eventually_answers(port: u16) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                if let Some(a) = answer(port).await {
                    return a;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the published port never answered")
    }

    #[tokio::test]
    async fn connections_go_round_robin_over_local_and_remote_tasks_skipping_unreachable_ones() {
        let ingress = IngressPorts::default();
        ingress.set("local", vec![(80, local_task("local").await)]);
        let published = free_port().await;
        let (tx, _) = watch::channel(MeshRoutesResp::default());
        let cluster = Arc::new(FakeCluster { routes: tx });
        cluster.routes.send_replace(routes(
            "one",
            published,
            vec![
                backend("local", ME),
                backend("remote", "node-b"),
                // Its container has no loopback port (yet).
                backend("starting", ME),
                backend("lost", "down"),
            ],
        ));
        let mesh = tokio::spawn(run(cluster.clone(), ingress, "127.0.0.1".parse().unwrap()));

        // The first connection, which waits for the listener, goes to the first task.
        assert_eq!(eventually_answers(published).await, "local");
        let mut answers = Vec::new();
        for _ in 0..4 {
            answers.push(answer(published).await.unwrap());
        }
        // The 3rd and 4th start at tasks that cannot be reached and go on to the next one.
        assert_eq!(answers, ["remote", "local", "local", "local"]);
        mesh.abort();
    }

    #[tokio::test]
    async fn a_port_without_running_tasks_closes_connections_and_an_unpublished_one_stops_listening(
    ) {
        let ingress = IngressPorts::default();
        let published = free_port().await;
        let (tx, _) = watch::channel(routes("one", published, Vec::new()));
        let cluster = Arc::new(FakeCluster { routes: tx });
        let mesh = tokio::spawn(run(cluster.clone(), ingress, "127.0.0.1".parse().unwrap()));
        assert_eq!(eventually_answers(published).await, "");

        cluster
            .routes
            .send_replace(routes("two", published, vec![backend("remote", "node-b")]));
        tokio::time::timeout(WAIT, async {
            while answer(published).await.as_deref() != Some("remote") {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the new backends were never used");

        cluster.routes.send_replace(MeshRoutesResp {
            digest: "three".into(),
            ports: Vec::new(),
        });
        tokio::time::timeout(WAIT, async {
            while TcpStream::connect(("127.0.0.1", published)).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the unpublished port is still listened on");
        mesh.abort();
    }

    fn pipe_req(node_id: &str, task_id: &str, target_port: u32) -> MeshPipeReq {
        MeshPipeReq {
            node_id: node_id.into(),
            task_id: task_id.into(),
            target_port,
        }
    }

    #[tokio::test]
    async fn a_pipe_is_joined_to_the_loopback_port_of_the_task_it_names() {
        let ingress = IngressPorts::default();
        ingress.set("t1", vec![(80, local_task("t1").await)]);
        let task = connect_task(&ingress, ME, &pipe_req(ME, "t1", 80))
            .await
            .unwrap();
        let (ours, mut theirs) = tokio::io::duplex(1024);
        tokio::spawn(task.join(ours));
        let mut got = [0u8; 2];
        theirs.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"t1");
    }

    #[tokio::test]
    async fn a_pipe_for_another_node_an_unknown_port_or_a_closed_one_is_refused() {
        let ingress = IngressPorts::default();
        let closed = free_port().await;
        ingress.set("t1", vec![(80, closed)]);

        let e = connect_task(&ingress, ME, &pipe_req("node-b", "t1", 80))
            .await
            .unwrap_err();
        assert!(matches!(e, PipeError::NotThisNode { .. }), "{e:?}");
        assert_eq!(e.to_string(), "node node-b is not this node (node-a)");

        let e = connect_task(&ingress, ME, &pipe_req(ME, "t1", 443))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "task t1 has no running container with port 443 on node node-a"
        );
        let e = connect_task(&ingress, ME, &pipe_req(ME, "t2", 80))
            .await
            .unwrap_err();
        assert!(matches!(e, PipeError::NoSuchPort { .. }), "{e:?}");

        let e = connect_task(&ingress, ME, &pipe_req(ME, "t1", 80))
            .await
            .unwrap_err();
        assert!(matches!(e, PipeError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "cannot connect to port 80 of task t1 (127.0.0.1:{closed}): "
            )),
            "{e}"
        );
    }
}
