//! `/secrets`: like configs, but their data never leaves the managers through this API.

use super::*;

pub(super) async fn secret_list(
    State(d): S,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Vec<swarm::Secret>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::SECRET_FILTERS)?;
    let m = d.manager()?;
    let state = m.replica().read();
    let names = f.get("names");
    Ok(Json(
        state
            .secrets
            .iter()
            .filter(|s| {
                f.match_id_prefix(&s.id)
                    && f.match_name_prefix(&s.spec.name)
                    && (names.is_empty() || names.contains(&s.spec.name))
                    && f.match_labels("label", &s.spec.labels)
            })
            .map(|s| s.redacted())
            .collect(),
    ))
}

pub(super) async fn secret_inspect(
    State(d): S,
    Path(id): Path<String>,
) -> HttpResult<Json<swarm::Secret>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(state.secrets.resolve(&id)?.redacted()))
}

pub(super) async fn secret_create(
    State(d): S,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<Value>)> {
    let spec: SecretSpec = json(&body)?;
    let id = d.manager()?.create_secret(spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))))
}

pub(super) async fn secret_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("secret")?;
    let spec: SecretSpec = json(&body)?;
    d.manager()?.update_secret(&id, version, spec).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn secret_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_secret(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
