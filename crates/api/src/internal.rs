//! Node-to-node routes: Raft RPCs, join, heartbeat, leave, forwarded writes, task assignments
//! and status, task logs, the routing mesh's routes and pipes, the network view and attachments.

use crate::error::{HttpError, HttpResult};
use crate::query::json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use shoal_manager::cluster::logs::{LogsReq, PATH_LOGS};
use shoal_manager::cluster::netview::{PATH_NET_ATTACH, PATH_NET_DETACH, PATH_NET_VIEW};
use shoal_manager::internal::*;
use shoal_manager::{Caller, Daemon};
use shoal_net::mesh::{self, PipeError};
use shoal_raft::{AppendResp, PreVoteResp, SnapshotResp, VoteResp};
use shoal_store::{Request, Response};
use shoal_types::mesh::{IngressPorts, MeshPipeReq, MeshRoutesReq, MeshRoutesResp};
use shoal_types::netview::{NetAttachReq, NetAttachResp, NetDetachReq, NetView, NetViewReq};
use std::sync::Arc;

type S = State<Arc<Daemon>>;

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/internal/raft/append", post(append))
        .route("/internal/raft/vote", post(vote))
        .route("/internal/raft/snapshot", post(snapshot))
        .route("/internal/raft/prevote", post(pre_vote))
        .route(PATH_JOIN, post(join))
        .route(PATH_HEARTBEAT, post(heartbeat))
        .route(PATH_RAFT_JOIN, post(raft_join))
        .route(PATH_LEAVE, post(leave))
        .route(PATH_PROPOSE, post(propose))
        .route(PATH_ASSIGNMENTS, post(assignments))
        .route(PATH_TASK_STATUS, post(task_status))
        .route(PATH_LOGS, post(logs))
        .route(PATH_MESH_ROUTES, post(mesh_routes))
        .route(PATH_MESH, post(mesh_pipe))
        .route(PATH_NET_VIEW, post(net_view))
        .route(PATH_NET_ATTACH, post(net_attach))
        .route(PATH_NET_DETACH, post(net_detach))
}

async fn net_view(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<NetView>> {
    let req: NetViewReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    Ok(Json(d.internal_net_view(req).await?))
}

async fn net_attach(
    State(d): S,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Json<NetAttachResp>> {
    let req: NetAttachReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    Ok(Json(d.internal_net_attach(req).await?))
}

async fn net_detach(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<()>> {
    let req: NetDetachReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    d.internal_net_detach(req).await?;
    Ok(Json(()))
}

/// The bearer credential of a node-to-node call.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

async fn append(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<AppendResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.append(json(&body)?).await))
}

async fn vote(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<VoteResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.vote(json(&body)?).await))
}

async fn snapshot(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<SnapshotResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let r = d.raft_node()?;
    Ok(Json(r.snapshot(json(&body)?).await))
}

async fn pre_vote(State(d): S, headers: HeaderMap) -> HttpResult<Json<PreVoteResp>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    Ok(Json(d.raft_node()?.pre_vote()))
}

async fn join(State(d): S, body: Bytes) -> HttpResult<Json<JoinResp>> {
    Ok(Json(d.internal_join(json(&body)?).await?))
}

async fn heartbeat(
    State(d): S,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Json<HeartbeatResp>> {
    let req: HeartbeatReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Heartbeat(&req.node_id))?;
    Ok(Json(d.internal_heartbeat(req).await?))
}

async fn raft_join(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<()>> {
    let req: RaftJoinReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    d.internal_raft_join(req).await?;
    Ok(Json(()))
}

async fn leave(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<()>> {
    let req: LeaveReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    d.internal_leave(req).await?;
    Ok(Json(()))
}

async fn propose(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<Response>> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let req: Request = json(&body)?;
    Ok(Json(d.internal_propose(req).await?))
}

async fn assignments(
    State(d): S,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Json<AssignmentsResp>> {
    let req: AssignmentsReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    Ok(Json(d.internal_assignments(req).await?))
}

async fn task_status(State(d): S, headers: HeaderMap, body: Bytes) -> HttpResult<Json<()>> {
    let req: TaskStatusReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    d.internal_task_status(req).await?;
    Ok(Json(()))
}

/// A manager asks this node (manager or worker) for the log of a task it ran.
async fn logs(
    State(d): S,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<axum::response::Response> {
    d.authorize(bearer(&headers), Caller::Manager)?;
    let req: LogsReq = json(&body)?;
    crate::docker::logs::node_logs(&d, req).await
}

async fn mesh_routes(
    State(d): S,
    headers: HeaderMap,
    body: Bytes,
) -> HttpResult<Json<MeshRoutesResp>> {
    let req: MeshRoutesReq = json(&body)?;
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    Ok(Json(d.internal_mesh_routes(req).await?))
}

/// Another node's routing mesh opens a pipe to one of this node's tasks: once the task's port
/// is reached, the connection is upgraded into raw bytes and handed to the mesh
/// (`shoal_net::mesh`), which copies them both ways.
async fn mesh_pipe(
    State(d): S,
    axum::Extension(ingress): axum::Extension<IngressPorts>,
    mut request: axum::extract::Request,
) -> HttpResult<axum::response::Response> {
    use axum::http::{header, StatusCode};
    d.authorize(bearer(request.headers()), Caller::Mesh)?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|e| HttpError::bad_request(format!("cannot read the request body: {e}")))?;
    let req: MeshPipeReq = json(&body)?;
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
