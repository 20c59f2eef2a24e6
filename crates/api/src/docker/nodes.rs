//! `/nodes`: list, inspect, update, remove. Leader flags are computed at read time.

use super::*;

/// A node as Docker shows it: `Leader` is computed from the current Raft leader.
pub(super) fn present_node(state: &ClusterState, leader_raft: Option<u64>, n: &Node) -> Node {
    let mut n = n.clone();
    let raft_id = state.members.get(&n.id).map(|m| m.raft_id);
    if let Some(ms) = &mut n.manager_status {
        ms.leader = raft_id.is_some() && raft_id == leader_raft;
    }
    n
}

pub(super) async fn node_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Vec<Node>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::NODE_FILTERS)?;
    let roles = f
        .roles()
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    for m in f.get("membership") {
        if m != "accepted" && m != "pending" {
            return Err(HttpError::bad_request(format!(
                "Invalid membership filter: '{m}'"
            )));
        }
    }
    let m = d.manager()?;
    let leader = m.raft.leader();
    let state = m.replica().read();
    let nodes = state
        .nodes
        .iter()
        .filter(|n| {
            f.match_id_prefix(&n.id)
                && (f.match_name_prefix(&n.spec.name)
                    || f.match_name_prefix(&n.description.hostname))
                && f.match_labels("label", &n.description.engine.labels)
                && f.match_labels("node.label", &n.spec.labels)
                && (roles.is_empty() || roles.contains(&n.spec.role))
                && f.match_exact("membership", "accepted")
        })
        .map(|n| present_node(&state, leader, n))
        .collect();
    Ok(Json(nodes))
}

pub(super) async fn node_inspect(State(d): S, Path(id): Path<String>) -> HttpResult<Json<Node>> {
    let m = d.manager()?;
    let leader = m.raft.leader();
    let state = m.replica().read();
    let n = state.nodes.resolve(&id)?;
    Ok(Json(present_node(&state, leader, n)))
}

pub(super) async fn node_update(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    let version = q.version("node")?;
    let spec: NodeSpec = json(&body)?;
    d.manager()?.update_node(&id, version, spec).await?;
    Ok(StatusCode::OK)
}

pub(super) async fn node_remove(
    State(d): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<StatusCode> {
    let q = Query::parse(q.as_deref())?;
    d.manager()?.remove_node(&id, q.flag("force")).await?;
    Ok(StatusCode::OK)
}
