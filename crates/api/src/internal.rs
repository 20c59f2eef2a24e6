//! Node-to-node routes: Raft RPCs, join, heartbeat, leave, forwarded writes.

use crate::error::HttpResult;
use crate::query::json;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use shoal_manager::internal::*;
use shoal_manager::Daemon;
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
}

async fn append(State(d): S, body: Bytes) -> HttpResult<Json<AppendResp>> {
    let r = d.raft_node()?;
    Ok(Json(r.append(json(&body)?).await))
}

async fn vote(State(d): S, body: Bytes) -> HttpResult<Json<VoteResp>> {
    let r = d.raft_node()?;
    Ok(Json(r.vote(json(&body)?).await))
}

async fn snapshot(State(d): S, body: Bytes) -> HttpResult<Json<SnapshotResp>> {
    let r = d.raft_node()?;
    Ok(Json(r.snapshot(json(&body)?).await))
}

async fn pre_vote(State(d): S) -> HttpResult<Json<PreVoteResp>> {
    Ok(Json(d.raft_node()?.pre_vote()))
}

async fn join(State(d): S, body: Bytes) -> HttpResult<Json<JoinResp>> {
    Ok(Json(d.internal_join(json(&body)?).await?))
}

async fn heartbeat(State(d): S, body: Bytes) -> HttpResult<Json<HeartbeatResp>> {
    Ok(Json(d.internal_heartbeat(json(&body)?).await?))
}

async fn leave(State(d): S, body: Bytes) -> HttpResult<Json<()>> {
    d.internal_leave(json(&body)?).await?;
    Ok(Json(()))
}

async fn propose(State(d): S, body: Bytes) -> HttpResult<Json<Response>> {
    let req: Request = json(&body)?;
    Ok(Json(d.internal_propose(req).await?))
}
