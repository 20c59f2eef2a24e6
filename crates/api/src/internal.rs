//! Node-to-node routes: Raft RPCs, join, heartbeat, leave, forwarded writes, task assignments
//! and status, task logs.

use crate::error::HttpResult;
use crate::query::json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use shoal_manager::cluster::logs::{LogsReq, PATH_LOGS};
use shoal_manager::internal::*;
use shoal_manager::{Caller, Daemon};
use shoal_raft::{AppendResp, PreVoteResp, SnapshotResp, VoteResp};
use shoal_store::{Request, Response};
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
        .route(PATH_LEAVE, post(leave))
        .route(PATH_PROPOSE, post(propose))
        .route(PATH_ASSIGNMENTS, post(assignments))
        .route(PATH_TASK_STATUS, post(task_status))
        .route(PATH_LOGS, post(logs))
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
    d.authorize(bearer(&headers), Caller::Node(&req.node_id))?;
    Ok(Json(d.internal_heartbeat(req).await?))
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
