//! shoal's own stack routes, beside Docker's API under a prefix Docker never uses:
//!
//! - `GET /shoal/v1/stacks`: every stack (stored, or made by the docker CLI: labelled objects)
//! - `GET /shoal/v1/stacks/{name}`: its stored versions (`stack history`)
//! - `POST /shoal/v1/stacks/{name}/deploy[?dry-run=1]`: body a whole `StackSpec`
//! - `POST /shoal/v1/stacks/{name}/rollback[?version=N][&dry-run=1]`
//! - `DELETE /shoal/v1/stacks/{name}`: every object of the stack and its history
//!
//! Handlers only parse and call the control API or read the replica.

use crate::error::{HttpError, HttpResult};
use crate::query::{json, Query};
use axum::extract::{Path, RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use shoal_manager::{ApiError, Daemon};
use shoal_types::stack::{StackChange, StackDeployResponse, StackInfo, StackSpec, StackSummary};
use std::sync::Arc;

type S = State<Arc<Daemon>>;

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/shoal/v1/stacks", get(stack_list))
        .route(
            "/shoal/v1/stacks/{name}",
            get(stack_inspect).delete(stack_remove),
        )
        .route("/shoal/v1/stacks/{name}/deploy", post(stack_deploy))
        .route("/shoal/v1/stacks/{name}/rollback", post(stack_rollback))
}

async fn stack_list(State(d): S) -> HttpResult<Json<Vec<StackSummary>>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(shoal_store::stacks::summaries(&state)))
}

async fn stack_inspect(State(d): S, Path(name): Path<String>) -> HttpResult<Json<StackInfo>> {
    let m = d.manager()?;
    let state = m.replica().read();
    if let Some(stack) = state.stacks.get(&name) {
        return Ok(Json(shoal_store::stacks::info(stack)));
    }
    if shoal_store::stacks::owned_objects(&state, &name).is_empty() {
        return Err(ApiError::NotFound(format!("stack {name} not found")).into());
    }
    // Made by the docker CLI: no versions stored.
    Ok(Json(StackInfo {
        name,
        ..Default::default()
    }))
}

async fn stack_deploy(
    State(d): S,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<Json<StackDeployResponse>> {
    let q = Query::parse(q.as_deref())?;
    let mut spec: StackSpec = json(&body)?;
    if spec.name.is_empty() {
        spec.name = name.clone();
    }
    if spec.name != name {
        return Err(ApiError::invalid(format!(
            "the body is stack {:?}, the path stack {name:?}",
            spec.name
        ))
        .into());
    }
    let answer = d.manager()?.deploy_stack(spec, q.flag("dry-run")).await?;
    Ok(Json(answer))
}

async fn stack_rollback(
    State(d): S,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<StackDeployResponse>> {
    let q = Query::parse(q.as_deref())?;
    let to = match q.get("version") {
        None | Some("") => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            HttpError::from(ApiError::invalid(format!(
                "invalid version {v:?}: a stack version is a number (see `shoal stack history`)"
            )))
        })?),
    };
    let answer = d
        .manager()?
        .rollback_stack(&name, to, q.flag("dry-run"))
        .await?;
    Ok(Json(answer))
}

async fn stack_remove(State(d): S, Path(name): Path<String>) -> HttpResult<Json<Vec<StackChange>>> {
    Ok(Json(d.manager()?.remove_stack(&name).await?))
}
