//! `/configs`: list, inspect, create, update (labels only), remove.

use super::*;

pub(super) async fn config_list(
    State(d): S,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Vec<swarm::Config>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::CONFIG_FILTERS)?;
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(
        state
            .configs
            .iter()
            .filter(|c| {
                f.match_id_prefix(&c.id)
                    && f.match_name_prefix(&c.spec.name)
                    && f.match_labels("label", &c.spec.labels)
            })
            .cloned()
            .collect(),
    ))
}

pub(super) async fn config_inspect(
    State(d): S,
    Path(id): Path<String>,
) -> HttpResult<Json<swarm::Config>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(state.configs.resolve(&id)?.clone()))
}

pub(super) async fn config_create(
    State(d): S,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<Value>)> {
    let spec: ConfigSpec = json(&body)?;
    let id = d.manager()?.create_config(spec).await?;
    Ok((StatusCode::CREATED, Json(json!({ "ID": id }))))
}

pub(super) async fn config_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("config")?;
    let spec: ConfigSpec = json(&body)?;
    d.manager()?.update_config(&id, version, spec).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn config_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_config(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
