//! Node-to-node routes: Raft RPCs, join, heartbeat, leave, forwarded writes, task assignments
//! and status, task logs, the routing mesh's routes and pipes, the network view and attachments.

use crate::error::{HttpError, HttpResult};
use crate::query::json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use shoal_manager::cluster::logs::{LogsReq, PATH_LOGS};
use shoal_manager::cluster::netview::{PATH_NET_ATTACH, PATH_NET_DETACH, PATH_NET_VIEW};
use shoal_manager::internal::*;
use shoal_manager::{Caller, Daemon};
use shoal_net::mesh::{self, PipeError};
use shoal_raft::limits::{MAX_APPEND_BYTES, MAX_PROPOSAL_BYTES, MAX_SNAPSHOT_BYTES};
use shoal_raft::{AppendResp, PreVoteResp, SnapshotResp, VoteResp};
use shoal_store::{Request as Proposal, Response};
use shoal_types::mesh::{IngressPorts, MeshPipeReq, MeshRoutesReq, MeshRoutesResp};
use shoal_types::netview::{NetAttachReq, NetAttachResp, NetDetachReq, NetView, NetViewReq};
use std::sync::Arc;

type S = State<Arc<Daemon>>;

/// What anyone may send before proving who they are (a join), and small Raft messages.
pub(crate) const SMALL_BODY: usize = 64 << 10;
/// A node's own messages: heartbeats with its description, long polls, attachments.
const NODE_BODY: usize = 256 << 10;
/// A node's report of its tasks' states (a few hundred bytes a task).
const TASK_STATUS_BODY: usize = 8 << 20;

/// Every route names the largest body it reads: a larger one is refused with 413 before it
/// is read (or as soon as it passes the limit, when its length is not announced).
pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route(
            "/internal/raft/append",
            limited(post(append), MAX_APPEND_BYTES),
        )
        .route("/internal/raft/vote", limited(post(vote), SMALL_BODY))
        .route(
            "/internal/raft/snapshot",
            limited(post(snapshot), MAX_SNAPSHOT_BYTES),
        )
        .route(
            "/internal/raft/prevote",
            limited(post(pre_vote), SMALL_BODY),
        )
        .route(PATH_JOIN, limited(post(join), SMALL_BODY))
        .route(PATH_HEARTBEAT, limited(post(heartbeat), NODE_BODY))
        .route(PATH_LEAVE, limited(post(leave), NODE_BODY))
        .route(PATH_PROPOSE, limited(post(propose), MAX_PROPOSAL_BYTES))
        .route(PATH_ASSIGNMENTS, limited(post(assignments), NODE_BODY))
        .route(
            PATH_TASK_STATUS,
            limited(post(task_status), TASK_STATUS_BODY),
        )
        .route(PATH_LOGS, limited(post(logs), NODE_BODY))
        .route(PATH_MESH_ROUTES, limited(post(mesh_routes), NODE_BODY))
        .route(PATH_MESH, limited(post(mesh_pipe), SMALL_BODY))
        .route(PATH_NET_VIEW, limited(post(net_view), NODE_BODY))
        .route(PATH_NET_ATTACH, limited(post(net_attach), NODE_BODY))
        .route(PATH_NET_DETACH, limited(post(net_detach), NODE_BODY))
}

/// A route whose body may hold at most `max` bytes.
fn limited(route: MethodRouter<Arc<Daemon>>, max: usize) -> MethodRouter<Arc<Daemon>> {
    route.layer(middleware::from_fn(move |req: Request, next: Next| {
        limit_body(max, req, next)
    }))
}

async fn limit_body(max: usize, req: Request, next: Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return too_large(max).into_response();
    }
    let (parts, body) = req.into_parts();
    let body = http_body_util::Limited::new(body, max).map_err(move |e| {
        if e.is::<http_body_util::LengthLimitError>() {
            Box::new(TooLarge(max)) as axum::BoxError
        } else {
            e
        }
    });
    next.run(Request::from_parts(parts, Body::new(body))).await
}

/// A body past its route's limit.
#[derive(Debug, thiserror::Error)]
#[error("request body is larger than {0} bytes, the most this route takes")]
struct TooLarge(usize);

fn too_large(max: usize) -> HttpError {
    HttpError(StatusCode::PAYLOAD_TOO_LARGE, TooLarge(max).to_string())
}

/// Reads a (limited) body and decodes its JSON.
async fn read_json<T: DeserializeOwned>(body: Body) -> HttpResult<T> {
    match body.collect().await {
        Ok(b) => json(&b.to_bytes()),
        Err(e) => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if let Some(l) = s.downcast_ref::<TooLarge>() {
                    return Err(too_large(l.0));
                }
                source = s.source();
            }
            Err(HttpError::bad_request(format!(
                "cannot read the request body: {e}"
            )))
        }
    }
}

/// The bearer credential of a node-to-node call.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// What the headers alone tell of a call about a node, before its body is read: a node's
/// `ID:SECRET` must be that node's, anything else a manager's. The body's node is checked
/// once it is read.
fn authorize_node_headers(d: &Daemon, headers: &HeaderMap) -> HttpResult<()> {
    let b = bearer(headers);
    match b.and_then(|b| b.split_once(':')) {
        Some((who, _)) => d.authorize(b, Caller::Node(who))?,
        None => d.authorize(b, Caller::Manager)?,
    }
    Ok(())
}

/// Reads the body of a call about a node (after [`authorize_node_headers`]) and checks the
/// credential against the node it names.
async fn read_node_call<T: DeserializeOwned>(
    d: &Daemon,
    headers: &HeaderMap,
    body: Body,
    node_of: impl Fn(&T) -> &str,
) -> HttpResult<T> {
    authorize_node_headers(d, headers)?;
    let req: T = read_json(body).await?;
    d.authorize(bearer(headers), Caller::Node(node_of(&req)))?;
    Ok(req)
}

async fn net_view(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<NetView>> {
    let req: NetViewReq = read_node_call(&d, &headers, body, |r: &NetViewReq| &r.node_id).await?;
    Ok(Json(d.internal_net_view(req).await?))
}

async fn net_attach(
    State(d): S,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<NetAttachResp>> {
    let req = read_node_call(&d, &headers, body, |r: &NetAttachReq| &r.node_id).await?;
    Ok(Json(d.internal_net_attach(req).await?))
}

async fn net_detach(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &headers, body, |r: &NetDetachReq| &r.node_id).await?;
    d.internal_net_detach(req).await?;
    Ok(Json(()))
}

async fn append(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<AppendResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.append(read_json(body).await?).await))
}

async fn vote(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<VoteResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.vote(read_json(body).await?).await))
}

async fn snapshot(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<SnapshotResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.snapshot(read_json(body).await?).await))
}

async fn pre_vote(State(d): S, headers: HeaderMap) -> HttpResult<Json<PreVoteResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    Ok(Json(d.raft_node()?.pre_vote()))
}

/// A join proves itself with its token, inside the body: the body is small.
async fn join(State(d): S, body: Body) -> HttpResult<Json<JoinResp>> {
    Ok(Json(d.internal_join(read_json(body).await?).await?))
}

async fn heartbeat(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<HeartbeatResp>> {
    let req = read_node_call(&d, &headers, body, |r: &HeartbeatReq| &r.node_id).await?;
    Ok(Json(d.internal_heartbeat(req).await?))
}

async fn leave(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &headers, body, |r: &LeaveReq| &r.node_id).await?;
    d.internal_leave(req).await?;
    Ok(Json(()))
}

async fn propose(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<Response>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let req: Proposal = read_json(body).await?;
    Ok(Json(d.internal_propose(req).await?))
}

async fn assignments(
    State(d): S,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<AssignmentsResp>> {
    let req = read_node_call(&d, &headers, body, |r: &AssignmentsReq| &r.node_id).await?;
    Ok(Json(d.internal_assignments(req).await?))
}

async fn task_status(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<Json<()>> {
    let req = read_node_call(&d, &headers, body, |r: &TaskStatusReq| &r.node_id).await?;
    d.internal_task_status(req).await?;
    Ok(Json(()))
}

/// A manager asks this node (manager or worker) for the log of a task it ran.
async fn logs(State(d): S, headers: HeaderMap, body: Body) -> HttpResult<axum::response::Response> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let req: LogsReq = read_json(body).await?;
    crate::docker::logs::node_logs(&d, req).await
}

async fn mesh_routes(
    State(d): S,
    headers: HeaderMap,
    body: Body,
) -> HttpResult<Json<MeshRoutesResp>> {
    let req = read_node_call(&d, &headers, body, |r: &MeshRoutesReq| &r.node_id).await?;
    Ok(Json(d.internal_mesh_routes(req).await?))
}

/// Another node's routing mesh opens a pipe to one of this node's tasks: once the task's port
/// is reached, the connection is upgraded into raw bytes and handed to the mesh
/// (`shoal_net::mesh`), which copies them both ways.
async fn mesh_pipe(
    State(d): S,
    axum::Extension(ingress): axum::Extension<IngressPorts>,
    mut request: Request,
) -> HttpResult<axum::response::Response> {
    d.authorize(bearer(request.headers()), Caller::Mesh)?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    let req: MeshPipeReq = read_json(request.into_body()).await?;
    let me = d.node_id().unwrap_or_default();
    let task = mesh::connect_task(&ingress, &me, &req).await.map_err(|e| {
        let status = match e {
            PipeError::NotThisNode { .. } => StatusCode::CONFLICT,
            PipeError::NoSuchPort { .. } => StatusCode::NOT_FOUND,
            PipeError::Unreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        };
        HttpError(status, e.to_string())
    })?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => task.join(hyper_util::rt::TokioIo::new(upgraded)).await,
            Err(e) => tracing::warn!(task = %req.task_id, "mesh pipe was not upgraded: {e}"),
        }
    });
    axum::response::Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, shoal_raft::transport::PIPE_PROTOCOL)
        .body(axum::body::Body::empty())
        .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
