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

/// Whether a service is attached to the network (through `TaskTemplate.Networks` or the
/// deprecated `Networks`). The ingress network is always in use: every node keeps a sandbox
/// on it, as Docker shows in its `Containers`.
pub(super) fn network_in_use(state: &ClusterState, n: &shoal_types::swarm::Network) -> bool {
    n.spec.ingress
        || state.services.iter().any(|s| {
            s.spec
                .task_template
                .networks
                .iter()
                .chain(s.spec.networks.iter())
                .any(|a| a.target == n.id)
        })
}

pub(super) async fn network_list(
    State(d): S,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Vec<NetworkResource>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::NETWORK_FILTERS)?;
    // Docker: `dangling=true`/`1` lists the unused networks, `false`/`0` the used ones.
    let dangling = if f.contains("dangling") {
        Some(f.get_bool_or_default("dangling", false).map_err(|_| {
            HttpError::bad_request(format!(
                "Invalid filter 'dangling={}'",
                f.get("dangling").join(",")
            ))
        })?)
    } else {
        None
    };
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(
        state
            .networks
            .iter()
            .filter(|n| dangling.is_none_or(|dangling| network_in_use(&state, n) != dangling))
            .map(NetworkResource::from)
            .filter(|n| network_matches(&f, n))
            .collect(),
    ))
}

pub(super) async fn network_inspect(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<NetworkResource>> {
    let q = Query::parse(q.as_deref())?;
    let m = match d.manager() {
        Ok(m) => m,
        Err(_) => {
            return Err(HttpError::not_found(format!("network {id} not found")));
        }
    };
    let me = d.node_id().unwrap_or_default();
    let state = m.replica().read();
    let n = state
        .networks
        .resolve(&id)
        .map_err(|_| HttpError::not_found(format!("network {id} not found")))?;
    let mut res = NetworkResource::from(n);
    if let Some(info) = shoal_manager::cluster::netview::view(&state, &me)
        .networks
        .into_iter()
        .find(|i| i.id == n.id)
    {
        endpoints_on(&state, &info, &me, q.flag("verbose"), &mut res);
    }
    Ok(Json(res))
}

/// What Docker shows of a swarm network's endpoints: the containers of this node on it,
/// the nodes it spans (`Peers`), and with `verbose` each service's VIP and tasks.
fn endpoints_on(
    state: &ClusterState,
    info: &shoal_types::netview::NetInfo,
    me: &str,
    verbose: bool,
    res: &mut NetworkResource,
) {
    use shoal_types::network::{EndpointResource, NetworkTask, PeerInfo, ServiceInfo};
    let prefix = info.subnet.split_once('/').map_or("24", |(_, p)| p);
    let hostname = |node: &str| {
        state
            .nodes
            .get(node)
            .map(|n| n.description.hostname.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| node.to_string())
    };
    for e in info
        .endpoints
        .iter()
        .filter(|e| e.node_id == me && !e.task_id.is_empty())
    {
        let Some(t) = state.tasks.get(&e.task_id) else {
            continue;
        };
        let container = t
            .status
            .container_status
            .as_ref()
            .map(|c| c.container_id.clone())
            .filter(|c| !c.is_empty());
        if let Some(container) = container {
            res.containers.insert(
                container,
                EndpointResource {
                    name: e.names.first().cloned().unwrap_or_default(),
                    endpoint_id: String::new(),
                    mac_address: shoal_types::netview::mac_for(e.addr),
                    ipv4_address: format!("{}/{prefix}", e.addr),
                    ipv6_address: String::new(),
                },
            );
        }
    }
    let mut peers: Vec<PeerInfo> = Vec::new();
    for e in &info.endpoints {
        let peer = PeerInfo {
            name: hostname(&e.node_id),
            ip: e.node_addr.to_string(),
        };
        if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    res.peers = peers;
    if verbose {
        for svc in &info.services {
            let tasks = info
                .endpoints
                .iter()
                .filter(|e| e.service_id == svc.id)
                .map(|e| NetworkTask {
                    name: e.names.first().cloned().unwrap_or_default(),
                    endpoint_id: String::new(),
                    endpoint_ip: e.addr.to_string(),
                    info: [("Host IP".to_string(), e.node_addr.to_string())].into(),
                })
                .collect();
            res.services.insert(
                svc.name.clone(),
                ServiceInfo {
                    vip: svc.vip.map(|v| v.to_string()).unwrap_or_default(),
                    ports: Vec::new(),
                    local_lb_index: 0,
                    tasks,
                },
            );
        }
    }
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

/// `POST /networks/prune`: removes the networks no service uses, among those the filters
/// select (`label`, `label!`, `until`, as Docker's).
pub(super) async fn network_prune(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Value>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(&["label", "label!", "until"])?;
    let until = match f.get("until").as_slice() {
        [] => None,
        [v] => Some(until_cutoff(v)?),
        _ => {
            return Err(HttpError::bad_request(
                "more than one until filter specified",
            ))
        }
    };
    let m = d.manager()?;
    let unused: Vec<(String, String)> = {
        let state = m.replica().read();
        state
            .networks
            .iter()
            .filter(|n| !n.spec.ingress)
            .filter(|n| f.match_labels("label", &n.spec.labels))
            .filter(|n| {
                f.get("label!").iter().all(|v| match v.split_once('=') {
                    Some((k, want)) => n.spec.labels.get(k).is_none_or(|have| have != want),
                    None => !n.spec.labels.contains_key(v.as_str()),
                })
            })
            .filter(|n| until.is_none_or(|t| n.created_at < t))
            .filter(|n| !network_in_use(&state, n))
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

/// Docker's `until` filter value: a Unix timestamp (`1700000000`, `1700000000.5`), an RFC
/// 3339 date, or a Go duration before now (`24h`, `10m`).
fn until_cutoff(v: &str) -> HttpResult<chrono::DateTime<chrono::Utc>> {
    if let Ok(secs) = v.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        if let Some(t) = chrono::DateTime::from_timestamp(whole, nanos) {
            return Ok(t);
        }
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(ns) = shoal_compose::units::parse_duration(v) {
        return Ok(chrono::Utc::now() - chrono::Duration::nanoseconds(ns));
    }
    Err(HttpError::bad_request(format!(
        "invalid until filter {v:?}: give a Unix timestamp, an RFC 3339 date or a duration such as 24h"
    )))
}
