//! HTTP on the plugin socket: one route per protocol call, each reading its JSON body, calling
//! the [`Driver`] and writing the answer or `{"Err": ...}`. No decisions are taken here.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixListener;

use super::api::ActivateResponse;
use super::{Driver, PluginConfig, PluginError};

/// Where the engine looks for plugin sockets: `NAME.sock` here is the plugin `NAME`, usable
/// as `docker network create -d NAME --ipam-driver NAME`.
pub const PLUGIN_DIR: &str = "/run/docker/plugins";

/// What the engine asks for in `Accept` (plugin API v1.2), so what every answer says it is.
const CONTENT_TYPE: &str = "application/vnd.docker.plugins.v1.2+json";

/// The socket the engine dials for the plugin `name`.
pub fn socket_path(name: &str) -> PathBuf {
    Path::new(PLUGIN_DIR).join(format!("{name}.sock"))
}

/// Serves both protocols on `listener` until it fails, with the default [`PluginConfig`].
pub async fn serve<D: Driver>(listener: UnixListener, driver: Arc<D>) -> io::Result<()> {
    serve_with(listener, driver, PluginConfig::default()).await
}

/// Like [`serve`], saying `config` in the handshake.
pub async fn serve_with<D: Driver>(
    listener: UnixListener,
    driver: Arc<D>,
    config: PluginConfig,
) -> io::Result<()> {
    axum::serve(listener, router(driver, config)).await
}

/// Binds the plugin socket at `path`, readable and writable by root only (0600).
///
/// 0600 because only the engine, which runs as root, has any business here: the socket makes
/// the node create interfaces and take cluster addresses, and members of the `docker` group
/// should reach that through the engine's own checks, not past them.
///
/// Creates the folder (0700) if missing. A socket already at `path` that nobody answers on
/// is left over from a process that died and is replaced; one that answers, or anything that
/// is not a socket, is an error rather than something to delete. The socket is bound under a
/// private folder and renamed into place, so nobody can connect before its permissions are
/// set. Must be called within a Tokio runtime.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (
            if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            },
            name.to_string_lossy(),
        ),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a socket path", path.display()),
            ))
        }
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    check_replaceable(path)?;

    let private = dir.join(format!(".{name}.{}.bind", std::process::id()));
    // A folder of that name can only be left by an earlier process of this pid that died
    // while binding.
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let bound = (|| {
        let tmp = private.join("s");
        let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        listener.set_nonblocking(true)?;
        Ok::<_, io::Error>(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    UnixListener::from_std(bound.map_err(|e| annotate(e, path))?)
}

/// Whether whatever is at `path` may be replaced by a new socket.
fn check_replaceable(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(annotate(e, path)),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; remove it by hand if it is not needed",
                path.display()
            ),
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{}: another process serves this plugin socket; stop it first",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(annotate(e, path)),
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

struct Plugin<D> {
    driver: Arc<D>,
    config: Arc<PluginConfig>,
}

// By hand: a derive would ask `D: Clone`, and only the `Arc` is cloned.
impl<D> Clone for Plugin<D> {
    fn clone(&self) -> Self {
        Plugin {
            driver: self.driver.clone(),
            config: self.config.clone(),
        }
    }
}

/// `{}`: the answer to a call that returns nothing.
#[derive(Serialize)]
struct Empty {}

fn done(r: Result<(), PluginError>) -> Result<Empty, PluginError> {
    r.map(|()| Empty {})
}

/// The plugin's routes, for [`serve`] or for a server of one's own.
pub fn router<D: Driver>(driver: Arc<D>, config: PluginConfig) -> Router {
    let state = Plugin {
        driver,
        config: Arc::new(config),
    };
    Router::new()
        .route(
            "/Plugin.Activate",
            post(|| async {
                reply(&ActivateResponse {
                    implements: vec!["NetworkDriver".into(), "IpamDriver".into()],
                })
            }),
        )
        .route(
            "/NetworkDriver.GetCapabilities",
            post(|State(p): State<Plugin<D>>| async move { reply(&p.config.network) }),
        )
        .route(
            "/IpamDriver.GetCapabilities",
            post(|State(p): State<Plugin<D>>| async move { reply(&p.config.ipam) }),
        )
        .route(
            "/IpamDriver.GetDefaultAddressSpaces",
            post(|State(p): State<Plugin<D>>| async move { reply(&p.config.address_spaces) }),
        )
        .route(
            "/NetworkDriver.CreateNetwork",
            call("NetworkDriver.CreateNetwork", |d: Arc<D>, r| async move {
                done(d.create_network(r).await)
            }),
        )
        .route(
            "/NetworkDriver.DeleteNetwork",
            call("NetworkDriver.DeleteNetwork", |d: Arc<D>, r| async move {
                done(d.delete_network(r).await)
            }),
        )
        .route(
            "/NetworkDriver.AllocateNetwork",
            call("NetworkDriver.AllocateNetwork", |d: Arc<D>, r| async move {
                d.allocate_network(r).await
            }),
        )
        .route(
            "/NetworkDriver.FreeNetwork",
            call("NetworkDriver.FreeNetwork", |d: Arc<D>, r| async move {
                done(d.free_network(r).await)
            }),
        )
        .route(
            "/NetworkDriver.CreateEndpoint",
            call("NetworkDriver.CreateEndpoint", |d: Arc<D>, r| async move {
                d.create_endpoint(r).await
            }),
        )
        .route(
            "/NetworkDriver.EndpointOperInfo",
            call(
                "NetworkDriver.EndpointOperInfo",
                |d: Arc<D>, r| async move { d.endpoint_oper_info(r).await },
            ),
        )
        .route(
            "/NetworkDriver.DeleteEndpoint",
            call("NetworkDriver.DeleteEndpoint", |d: Arc<D>, r| async move {
                done(d.delete_endpoint(r).await)
            }),
        )
        .route(
            "/NetworkDriver.Join",
            call("NetworkDriver.Join", |d: Arc<D>, r| async move {
                d.join(r).await
            }),
        )
        .route(
            "/NetworkDriver.Leave",
            call("NetworkDriver.Leave", |d: Arc<D>, r| async move {
                done(d.leave(r).await)
            }),
        )
        .route(
            "/NetworkDriver.DiscoverNew",
            call("NetworkDriver.DiscoverNew", |d: Arc<D>, r| async move {
                done(d.discover_new(r).await)
            }),
        )
        .route(
            "/NetworkDriver.DiscoverDelete",
            call("NetworkDriver.DiscoverDelete", |d: Arc<D>, r| async move {
                done(d.discover_delete(r).await)
            }),
        )
        .route(
            "/NetworkDriver.ProgramExternalConnectivity",
            call(
                "NetworkDriver.ProgramExternalConnectivity",
                |d: Arc<D>, r| async move { done(d.program_external_connectivity(r).await) },
            ),
        )
        .route(
            "/NetworkDriver.RevokeExternalConnectivity",
            call(
                "NetworkDriver.RevokeExternalConnectivity",
                |d: Arc<D>, r| async move { done(d.revoke_external_connectivity(r).await) },
            ),
        )
        .route(
            "/IpamDriver.RequestPool",
            call("IpamDriver.RequestPool", |d: Arc<D>, r| async move {
                d.request_pool(r).await
            }),
        )
        .route(
            "/IpamDriver.ReleasePool",
            call("IpamDriver.ReleasePool", |d: Arc<D>, r| async move {
                done(d.release_pool(r).await)
            }),
        )
        .route(
            "/IpamDriver.RequestAddress",
            call("IpamDriver.RequestAddress", |d: Arc<D>, r| async move {
                d.request_address(r).await
            }),
        )
        .route(
            "/IpamDriver.ReleaseAddress",
            call("IpamDriver.ReleaseAddress", |d: Arc<D>, r| async move {
                done(d.release_address(r).await)
            }),
        )
        // A 404 tells the engine "not implemented", which it forgives for optional calls.
        .fallback(|uri: Uri| async move {
            let call = uri.path().trim_start_matches('/').to_string();
            failure(&call.clone(), PluginError::NotImplemented { call })
        })
        .method_not_allowed_fallback(|| async {
            (
                StatusCode::METHOD_NOT_ALLOWED,
                plugin_json(br#"{"Err":"plugin calls are POST requests"}"#.to_vec()),
            )
                .into_response()
        })
        .with_state(state)
}

/// The route of one call that does work: read the body as `Req`, let the driver answer.
fn call<D, Req, Resp, F, Fut>(name: &'static str, work: F) -> MethodRouter<Plugin<D>>
where
    D: Driver,
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize,
    F: Fn(Arc<D>, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, PluginError>> + Send + 'static,
{
    post(move |State(p): State<Plugin<D>>, body: Bytes| async move {
        // The engine sends no Content-Type, so the body is JSON whatever the headers say.
        let req: Req = match serde_json::from_slice(&body) {
            Ok(req) => req,
            Err(e) => {
                return failure(
                    name,
                    PluginError::BadRequest {
                        call: name.to_string(),
                        reason: e.to_string(),
                    },
                )
            }
        };
        tracing::debug!(call = name, body = %String::from_utf8_lossy(&body), "plugin call");
        match work(p.driver.clone(), req).await {
            Ok(resp) => reply(&resp),
            Err(e) => failure(name, e),
        }
    })
}

fn reply<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(json) => (StatusCode::OK, plugin_json(json)).into_response(),
        Err(e) => failure(
            "answer",
            PluginError::failed(format!("cannot encode the answer: {e}")),
        ),
    }
}

/// An error as the engine's plugin client reads it: any status but 200, message in `Err`.
/// (On a 200 the network driver client would read `Err` but the IPAM client reads `Error`;
/// a non-200 status is read the same way by both.)
fn failure(call: &str, e: PluginError) -> Response {
    let status = match &e {
        PluginError::BadRequest { .. } => StatusCode::BAD_REQUEST,
        PluginError::NotImplemented { .. } => StatusCode::NOT_FOUND,
        PluginError::UnknownNetwork { .. }
        | PluginError::UnknownEndpoint { .. }
        | PluginError::UnknownPool { .. }
        | PluginError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let message = e.to_string();
    tracing::warn!(call, %status, "plugin call failed: {message}");
    let json = serde_json::to_vec(&serde_json::json!({ "Err": message }))
        .unwrap_or_else(|_| br#"{"Err":"unprintable error"}"#.to_vec());
    (status, plugin_json(json)).into_response()
}

fn plugin_json(body: Vec<u8>) -> ([(header::HeaderName, HeaderValue); 1], Vec<u8>) {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
}
