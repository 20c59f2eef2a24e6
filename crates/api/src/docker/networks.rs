//! `/networks`: swarm-scoped overlay networks in Docker's `NetworkResource` shape.

use super::*;

pub(super) fn network_matches(f: &Filters, n: &NetworkResource) -> bool {
    f.match_regex("name", &n.name)
        && f.match_regex("id", &n.id)
        && f.match_labels("label", &n.labels)
        && f.match_exact("driver", &n.driver)
        && f.match_exact("scope", &n.scope)
        && f.match_exact("type", "custom")
}

pub(super) async fn network_list(
    State(d): S,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Vec<NetworkResource>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::NETWORK_FILTERS)?;
    let m = d.manager()?;
    let state = m.replica().read();
    let dangling = f.contains("dangling");
    Ok(Json(
        state
            .networks
            .iter()
            .filter(|n| {
                !dangling
                    || !state.services.iter().any(|s| {
                        s.spec
                            .task_template
                            .networks
                            .iter()
                            .any(|a| a.target == n.id)
                    })
            })
            .map(NetworkResource::from)
            .filter(|n| network_matches(&f, n))
            .collect(),
    ))
}

pub(super) async fn network_inspect(
    State(d): S,
    Path(id): Path<String>,
) -> HttpResult<Json<NetworkResource>> {
    let m = match d.manager() {
        Ok(m) => m,
        Err(_) => {
            return Err(HttpError::not_found(format!("network {id} not found")));
        }
    };
    let state = m.replica().read();
    let n = state
        .networks
        .resolve(&id)
        .map_err(|_| HttpError::not_found(format!("network {id} not found")))?;
    Ok(Json(NetworkResource::from(n)))
}

pub(super) async fn network_create(
    State(d): S,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<NetworkCreateResponse>)> {
    let req: NetworkCreateRequest = json(&body)?;
    if req.name.is_empty() {
        return Err(HttpError::bad_request("network name must not be empty"));
    }
    let id = d.manager()?.create_network(req).await?;
    Ok((
        StatusCode::CREATED,
        Json(NetworkCreateResponse {
            id,
            warning: String::new(),
        }),
    ))
}

pub(super) async fn network_remove(State(d): S, Path(id): Path<String>) -> HttpResult<StatusCode> {
    d.manager()?.remove_network(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn network_prune(State(d): S) -> HttpResult<Json<Value>> {
    let m = d.manager()?;
    let unused: Vec<(String, String)> = {
        let state = m.replica().read();
        state
            .networks
            .iter()
            .filter(|n| !n.spec.ingress)
            .filter(|n| {
                !state.services.iter().any(|s| {
                    s.spec
                        .task_template
                        .networks
                        .iter()
                        .chain(s.spec.networks.iter())
                        .any(|a| a.target == n.id)
                })
            })
            .map(|n| (n.id.clone(), n.spec.name.clone()))
            .collect()
    };
    let mut deleted = Vec::new();
    for (id, name) in unused {
        if m.remove_network(&id).await.is_ok() {
            deleted.push(name);
        }
    }
    Ok(Json(json!({ "NetworksDeleted": deleted })))
}

/// The CLI asks for an image's digest before it creates a service; no registry is
/// reachable from a shoal manager, so it is told so and goes on without a digest.
pub(super) async fn distribution(Path(name): Path<String>) -> HttpError {
    let image = name.strip_suffix("/json").unwrap_or(&name);
    HttpError(
        StatusCode::NOT_FOUND,
        format!("no registry is reachable from this manager to resolve {image}"),
    )
}
