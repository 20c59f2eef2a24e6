//! This node's side of `/internal/engine` (and the API's calls to its own engine): one
//! [`EngineCall`] sent to the local engine's API as the engine names it, answered with the
//! engine's JSON as it is. Raw HTTP over the engine's unix socket, so that nothing of the
//! engine's answer is lost to a client library's model of another API version.

use super::*;
use http_body_util::{BodyExt, Full};
use shoal_types::engine_call::{EngineCall, EngineReq};
use std::path::Path as FsPath;

/// The engine API version these calls speak (dockerd 20.10).
const ENGINE_API: &str = "v1.41";
/// How long the engine may take (a prune or a disk usage report walks the disk).
const ENGINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn query(pairs: &[(&str, String)]) -> String {
    let q = serde_urlencoded::to_string(pairs).unwrap_or_default();
    if q.is_empty() {
        q
    } else {
        format!("?{q}")
    }
}

fn filters_param(f: &HashMap<String, Vec<String>>) -> Vec<(&'static str, String)> {
    if f.is_empty() {
        Vec::new()
    } else {
        vec![("filters", serde_json::to_string(f).unwrap_or_default())]
    }
}

fn segment(name: &str) -> String {
    serde_urlencoded::to_string([("", name)])
        .unwrap_or_default()
        .trim_start_matches('=')
        .replace('+', "%20")
}

/// The engine's method, path and body for a call.
fn request(call: &EngineCall) -> (Method, String, Option<Value>) {
    match call {
        EngineCall::VolumeList { filters } => (
            Method::GET,
            format!("/volumes{}", query(&filters_param(filters))),
            None,
        ),
        EngineCall::VolumeInspect { name } => {
            (Method::GET, format!("/volumes/{}", segment(name)), None)
        }
        EngineCall::VolumeCreate {
            name,
            driver,
            driver_opts,
            labels,
        } => (
            Method::POST,
            "/volumes/create".into(),
            Some(json!({
                "Name": name,
                "Driver": driver,
                "DriverOpts": driver_opts,
                "Labels": labels,
            })),
        ),
        EngineCall::VolumeRemove { name, force } => (
            Method::DELETE,
            format!(
                "/volumes/{}{}",
                segment(name),
                if *force { "?force=1" } else { "" }
            ),
            None,
        ),
        EngineCall::VolumePrune { filters } => (
            Method::POST,
            format!("/volumes/prune{}", query(&filters_param(filters))),
            None,
        ),
        EngineCall::SystemDf => (Method::GET, "/system/df".into(), None),
        EngineCall::ImageInspect { name } => (
            Method::GET,
            format!("/images/{}/json", image_segment(name)),
            None,
        ),
    }
}

/// An image reference in the engine's path: its `/`, `:` and `@` stay (the engine's route
/// takes the rest of the path as the name); anything else outside a reference's characters is
/// escaped, so that no name can reach another engine path.
fn image_segment(name: &str) -> String {
    name.split('/')
        .map(|part| match part {
            "." | ".." => part.replace('.', "%2E"),
            _ => segment(part).replace("%3A", ":").replace("%40", "@"),
        })
        .collect::<Vec<_>>()
        .join("/")
}

use axum::http::Method;

/// Runs `call` on the engine at `socket`. The engine's refusals keep their status and message.
pub(crate) async fn run(socket: &FsPath, call: &EngineCall) -> HttpResult<Value> {
    let (method, path, body) = request(call);
    let unavailable = |e: &dyn std::fmt::Display| {
        HttpError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the engine at {} did not answer: {e}", socket.display()),
        )
    };
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(socket)
            .await
            .map_err(|e| unavailable(&e))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| unavailable(&e))?;
        tokio::spawn(conn);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = axum::http::Request::builder()
            .method(method)
            .uri(format!("/{ENGINE_API}{path}"))
            .header(axum::http::header::HOST, "docker")
            .header(axum::http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unavailable(&e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unavailable(&e))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unavailable(&e))?
            .to_bytes();
        Ok::<_, HttpError>((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(ENGINE_TIMEOUT, exchange)
        .await
        .map_err(|_| unavailable(&"timed out"))??;
    let value: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    if status.is_success() {
        Ok(value)
    } else {
        let message = value["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        Err(HttpError(status, message))
    }
}

/// `/internal/engine` on the node a manager asks.
pub(crate) async fn node_engine(d: &Daemon, req: EngineReq) -> HttpResult<Json<Value>> {
    crate::internal::this_node(d, &req.node_id)?;
    Ok(Json(run(&d.config().engine_socket, &req.call).await?))
}

/// Asks the engine of `node`: this node's directly, another's through its node port.
pub(crate) async fn ask(
    d: &Daemon,
    m: &shoal_manager::Manager,
    node: &shoal_manager::cluster::EngineNode,
    call: &EngineCall,
) -> HttpResult<Value> {
    if node.addr.is_none() && !node.down {
        run(&d.config().engine_socket, call).await
    } else {
        Ok(m.engine_call(node, call).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_filters_are_escaped_into_the_engine_path() {
        let (m, p, _) = request(&EngineCall::VolumeInspect {
            name: "a b/c".into(),
        });
        assert_eq!(m, Method::GET);
        assert_eq!(p, "/volumes/a%20b%2Fc");
        let (_, p, _) = request(&EngineCall::VolumeList {
            filters: HashMap::from([("dangling".into(), vec!["true".into()])]),
        });
        assert_eq!(
            p,
            "/volumes?filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D"
        );
        let (m, p, _) = request(&EngineCall::VolumeRemove {
            name: "v".into(),
            force: true,
        });
        assert_eq!((m, p.as_str()), (Method::DELETE, "/volumes/v?force=1"));
        let (m, p, _) = request(&EngineCall::ImageInspect {
            name: "127.0.0.1:5000/a/b:1@sha256:ab".into(),
        });
        assert_eq!(
            (m, p.as_str()),
            (Method::GET, "/images/127.0.0.1:5000/a/b:1@sha256:ab/json")
        );
        let (_, p, _) = request(&EngineCall::ImageInspect {
            name: "../../containers/x?a=b".into(),
        });
        assert_eq!(p, "/images/%2E%2E/%2E%2E/containers/x%3Fa%3Db/json");
    }
}
