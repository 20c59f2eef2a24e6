//! Serving: the Docker API on unix sockets and TCP, the internal routes on the node-to-node
//! address, versioned paths, and error bodies that are always JSON.

use crate::{docker, internal};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::{Router, ServiceExt};
use http_body_util::BodyExt;
use shoal_manager::{Binder, Daemon};
use shoal_types::mesh::IngressPorts;
use std::path::Path;
use std::sync::Arc;
use tower::Layer;

/// The Docker Engine API version shoal speaks (Docker 20.10's).
pub const API_VERSION: &str = "1.41";
pub const MIN_API_VERSION: &str = "1.24";
/// Large enough for a config of 1000 KB in base64, small enough to refuse abuse.
const MAX_BODY: usize = 4 * 1024 * 1024;

fn version_tuple(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// `/v1.41/services` → `/services`; a version we do not speak → `/__version/<v>`.
fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if let Some(v) = version_tuple(ver) {
            let new_path = if v > version_tuple(API_VERSION).unwrap_or((1, 41))
                || v < version_tuple(MIN_API_VERSION).unwrap_or((1, 24))
            {
                format!("/__version/{ver}")
            } else {
                tail.to_string()
            };
            let pq = match req.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            if let Ok(uri) = pq.parse() {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// Any error answer that is not JSON yet (axum's own rejections) becomes `{"message": ...}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut msg = String::from_utf8_lossy(&body).trim().to_string();
    if msg.is_empty() {
        msg = status.canonical_reason().unwrap_or("error").to_lowercase();
    }
    // Never let an internal detail pose as a server fault for a bad request.
    (status, axum::Json(serde_json::json!({ "message": msg }))).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"message": "page not found"})),
    )
        .into_response()
}

/// The Docker-compatible API.
pub fn docker_router(daemon: Arc<Daemon>) -> Router {
    docker::routes()
        .merge(crate::stacks::routes())
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(json_errors))
        .with_state(daemon)
}

async fn serve_router<L>(listener: L, router: Router) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let svc = tower::util::MapRequestLayer::new(strip_version).layer(router);
    axum::serve(
        listener,
        ServiceExt::<Request<Body>>::into_make_service(svc),
    )
    .await
}

/// Serves the Docker API on a unix socket, readable and writable by root only.
pub async fn serve_unix(path: &Path, router: Router) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    serve_router(listener, router).await
}

pub async fn serve_tcp(addr: &str, router: Router) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    serve_router(listener, router).await
}

/// Starts the node-to-node server on an address, for the manager crate.
pub fn binder() -> Binder {
    binder_with(IngressPorts::default())
}

/// How long a connection to the node port may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Like [`binder`], serving routing-mesh pipes to the task ports in `ingress` (which the
/// node's agent fills).
///
/// The node port speaks only TLS, with the configuration the node holds at the moment a
/// connection comes (none while it is not part of a swarm: the connection is closed
/// unanswered). A client certificate is checked against the cluster's root in the
/// handshake; what it says (node ID, role, cluster) goes with each request to the routes,
/// which decide what it may call.
pub fn binder_with(ingress: IngressPorts) -> Binder {
    Arc::new(move |addr: String, daemon: Arc<Daemon>| {
        let ingress = ingress.clone();
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| e.to_string())?;
            let router = internal::routes()
                .layer(axum::Extension(ingress))
                // Each route limits its own body (see `internal::routes`); the rest of the
                // port (unknown paths) reads none.
                .layer(axum::extract::DefaultBodyLimit::max(internal::SMALL_BODY))
                .layer(middleware::from_fn(json_errors))
                .with_state(daemon.clone());
            let weak = Arc::downgrade(&daemon);
            drop(daemon);
            let task = tokio::spawn(async move {
                loop {
                    let tcp = match listener.accept().await {
                        Ok((tcp, _)) => tcp,
                        Err(e) => {
                            tracing::debug!("node port: accept: {e}");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Raft traffic is small request/answer pairs: Nagle's algorithm would
                    // hold answers back for a delayed ACK.
                    let _ = tcp.set_nodelay(true);
                    let Some(config) = weak.upgrade().and_then(|d| d.tls_server_config()) else {
                        continue;
                    };
                    tokio::spawn(serve_node_connection(tcp, config, router.clone()));
                }
            });
            Ok(task.abort_handle())
        })
    })
}

/// One node-port connection: the TLS handshake, then HTTP/1.1 (with upgrades, for mesh
/// pipes) with the peer's identity on every request.
async fn serve_node_connection(
    tcp: tokio::net::TcpStream,
    config: Arc<shoal_raft::tls::ServerConfig>,
    router: Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("node port: TLS handshake refused: {e}");
            return;
        }
        Err(_) => return,
    };
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| shoal_raft::tls::peer_identity(leaf.as_ref()))
        .map(Arc::new);
    let router = router.layer(axum::Extension(internal::Peer(peer)));
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let router = router.clone();
        async move {
            use tower::ServiceExt as _;
            router.oneshot(req.map(Body::new)).await
        }
    });
    let io = hyper_util::rt::TokioIo::new(tls);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades()
        .await
    {
        tracing::debug!("node port connection: {e}");
    }
}
