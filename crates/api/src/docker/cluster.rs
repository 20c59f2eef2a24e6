//! `/swarm`: init, join, leave, update, unlock.

use super::*;

pub(super) async fn swarm_inspect(State(d): S) -> HttpResult<Json<Swarm>> {
    let m = d.manager()?;
    let state = m.replica().read();
    let c = state.cluster()?;
    Ok(Json(Swarm::from_parts(c.info.clone(), m.join_tokens(c)?)))
}

pub(super) async fn swarm_init(State(d): S, body: Bytes) -> HttpResult<Json<String>> {
    let req: InitRequest = json_or_default(&body)?;
    Ok(Json(d.init(req).await?))
}

pub(super) async fn swarm_join(State(d): S, body: Bytes) -> HttpResult<StatusCode> {
    let req: JoinRequest = json(&body)?;
    d.join(req).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn swarm_leave(State(d): S, RawQuery(q): RawQuery) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    d.leave(q.flag("force")).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn swarm_update(
    State(d): S,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("swarm")?;
    let spec: Spec = json(&body)?;
    d.manager()?
        .update_cluster(
            version,
            spec,
            q.flag("rotateWorkerToken"),
            q.flag("rotateManagerToken"),
            q.flag("rotateManagerUnlockKey"),
        )
        .await?;
    // This manager's disk follows at once (the others within a moment).
    if let Err(e) = d.secure_keys_at_rest().await {
        tracing::error!("cannot wrap this manager's data key as the cluster asks: {e}");
    }
    Ok(StatusCode::OK)
}

pub(super) async fn swarm_unlockkey(State(d): S) -> HttpResult<Json<UnlockKeyResponse>> {
    let unlock_key = d.manager()?.unlock_key()?;
    Ok(Json(UnlockKeyResponse { unlock_key }))
}

pub(super) async fn swarm_unlock(State(d): S, body: Bytes) -> HttpResult<StatusCode> {
    let req: UnlockRequest = json(&body)?;
    d.unlock(&req.unlock_key).await?;
    Ok(StatusCode::OK)
}
