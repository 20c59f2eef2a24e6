//! `docker volume ls/inspect/create/rm/prune` against the cluster: the volumes of every node's
//! engine, each named `NODE/VOLUME` (the convention of the classic, pre-swarm-mode Docker
//! Swarm), where NODE is the node's hostname, or its ID when several nodes share a hostname.
//!
//! - `ls` asks every node; a node that does not answer is a warning, as Docker shows them.
//! - `inspect`, `rm`: `NODE/VOLUME` is that node's; a bare `VOLUME` is the one node's that has
//!   it, and a name several nodes have must be given with its node.
//! - `create`: on the node named (`NODE/VOLUME`), else on the node the client is connected to.
//! - `prune`: on every node, with the same filters.
//!
//! Handlers only parse, pick nodes and merge; the nodes' engines do the work (`node_engine`).

use super::node_engine::ask;
use super::*;
use shoal_manager::cluster::EngineNode;
use shoal_manager::Manager;
use shoal_types::engine_call::EngineCall;

/// Keys `GET /volumes` and `POST /volumes/prune` take (what the engine takes).
const LIST_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];
const PRUNE_FILTERS: &[&str] = &["label", "label!"];

/// `NODE/VOLUME` → (node, volume); a bare name → (None, name).
pub(super) fn split_name(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((node, vol)) => (Some(node), vol),
        None => (None, key),
    }
}

pub(super) fn qualified(node: &EngineNode, name: &str) -> String {
    format!("{}/{name}", node.name)
}

/// The volume as the engine gave it, named with its node.
fn named(node: &EngineNode, mut v: Value) -> Value {
    if let Some(name) = v["Name"].as_str() {
        v["Name"] = Value::String(qualified(node, name));
    }
    v
}

fn engine_filters(f: &Filters) -> HashMap<String, Vec<String>> {
    f.keys().map(|k| (k.to_string(), f.get(k))).collect()
}

/// The node a `NODE/` prefix names: by name, ID or ID prefix.
fn node_named<'a>(nodes: &'a [EngineNode], key: &str) -> HttpResult<&'a EngineNode> {
    nodes
        .iter()
        .find(|n| n.name == key || n.node_id == key)
        .or_else(|| {
            let mut by_prefix = nodes.iter().filter(|n| n.node_id.starts_with(key));
            match (by_prefix.next(), by_prefix.next()) {
                (Some(n), None) => Some(n),
                _ => None,
            }
        })
        .ok_or_else(|| HttpError::not_found(format!("node {key} not found")))
}

/// Asks every node at once.
pub(super) async fn ask_all(
    d: &Daemon,
    m: &Manager,
    nodes: &[EngineNode],
    call: &EngineCall,
) -> Vec<HttpResult<Value>> {
    futures::future::join_all(nodes.iter().map(|n| ask(d, m, n, call))).await
}

/// Which node has the volume `key` names, and the volume as its engine has it.
async fn locate(d: &Daemon, m: &Manager, key: &str) -> HttpResult<(EngineNode, Value)> {
    let nodes = m.engine_nodes();
    let (node, vol) = split_name(key);
    if vol.is_empty() {
        return Err(HttpError::bad_request(format!(
            "invalid volume name '{key}'"
        )));
    }
    let no_such = || HttpError::not_found(format!("get {key}: no such volume"));
    let call = EngineCall::VolumeInspect {
        name: vol.to_string(),
    };
    if let Some(node) = node {
        let node = node_named(&nodes, node)?.clone();
        return match ask(d, m, &node, &call).await {
            Ok(v) => Ok((node, v)),
            Err(e) if e.0 == StatusCode::NOT_FOUND => Err(no_such()),
            Err(e) => Err(e),
        };
    }
    let answers = ask_all(d, m, &nodes, &call).await;
    let mut found = Vec::new();
    let mut unavailable = Vec::new();
    for (node, a) in nodes.into_iter().zip(answers) {
        match a {
            Ok(v) => found.push((node, v)),
            Err(e) if e.0 == StatusCode::NOT_FOUND => {}
            Err(e) => unavailable.push(e.1),
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 if unavailable.is_empty() => Err(no_such()),
        0 => Err(HttpError(
            StatusCode::NOT_FOUND,
            format!(
                "get {key}: no such volume on the nodes that answered ({})",
                unavailable.join("; ")
            ),
        )),
        _ => {
            let names: Vec<String> = found.iter().map(|(n, _)| qualified(n, vol)).collect();
            Err(HttpError(
                StatusCode::CONFLICT,
                format!(
                    "volume {vol} is on several nodes: name one of {}",
                    names.join(", ")
                ),
            ))
        }
    }
}

pub(super) async fn volume_list(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Value>> {
    let f = Query::parse(q.as_deref())?.filters(LIST_FILTERS)?;
    let m = d.manager()?;
    let nodes = m.engine_nodes();
    let call = EngineCall::VolumeList {
        filters: engine_filters(&f),
    };
    let mut volumes = Vec::new();
    let mut warnings = Vec::new();
    for (node, a) in nodes.iter().zip(ask_all(&d, &m, &nodes, &call).await) {
        match a {
            Ok(v) => {
                let list = v["Volumes"].as_array().cloned().unwrap_or_default();
                volumes.extend(list.into_iter().map(|v| named(node, v)));
                if let Some(w) = v["Warnings"].as_array() {
                    warnings.extend(
                        w.iter()
                            .filter_map(Value::as_str)
                            .map(|w| format!("{}: {w}", node.name)),
                    );
                }
            }
            Err(e) => warnings.push(e.1),
        }
    }
    Ok(Json(json!({
        "Volumes": volumes,
        "Warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
    })))
}

pub(super) async fn volume_inspect(
    State(d): S,
    Path(name): Path<String>,
) -> HttpResult<Json<Value>> {
    let m = d.manager()?;
    let (node, v) = locate(&d, &m, &name).await?;
    Ok(Json(named(&node, v)))
}

pub(super) async fn volume_remove(
    State(d): S,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> HttpResult<StatusCode> {
    let force = Query::parse(q.as_deref())?.flag("force");
    let m = d.manager()?;
    let (node, v) = locate(&d, &m, &name).await?;
    let vol = v["Name"]
        .as_str()
        .unwrap_or(split_name(&name).1)
        .to_string();
    ask(
        &d,
        &m,
        &node,
        &EngineCall::VolumeRemove { name: vol, force },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /volumes/create` body (API 1.41; `ClusterVolumeSpec` came with 1.42).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
    cluster_volume_spec: Option<Value>,
}

pub(super) async fn volume_create(
    State(d): S,
    body: Bytes,
) -> HttpResult<(StatusCode, Json<Value>)> {
    let b: CreateBody = json_or_default(&body)?;
    if b.cluster_volume_spec.is_some() {
        return Err(HttpError::bad_request(
            "cluster volumes (ClusterVolumeSpec, API 1.42) are not supported: create a local volume, optionally on a given node as NODE/NAME",
        ));
    }
    let m = d.manager()?;
    let nodes = m.engine_nodes();
    let (node, vol) = split_name(&b.name);
    let node = match node {
        Some(key) => node_named(&nodes, key)?.clone(),
        None => nodes
            .iter()
            .find(|n| n.addr.is_none())
            .cloned()
            .ok_or_else(|| HttpError::not_found("this node is not in the cluster's node list"))?,
    };
    let call = EngineCall::VolumeCreate {
        name: vol.to_string(),
        driver: b.driver,
        driver_opts: b.driver_opts.unwrap_or_default(),
        labels: b.labels.unwrap_or_default(),
    };
    let v = ask(&d, &m, &node, &call).await?;
    Ok((StatusCode::CREATED, Json(named(&node, v))))
}

pub(super) async fn volume_prune(State(d): S, RawQuery(q): RawQuery) -> HttpResult<Json<Value>> {
    let f = Query::parse(q.as_deref())?.filters(PRUNE_FILTERS)?;
    let m = d.manager()?;
    // Nodes known to be down have nothing to prune that anyone can use now.
    let nodes: Vec<EngineNode> = m.engine_nodes().into_iter().filter(|n| !n.down).collect();
    let call = EngineCall::VolumePrune {
        filters: engine_filters(&f),
    };
    let mut deleted = Vec::new();
    let mut reclaimed: u64 = 0;
    let mut failed = Vec::new();
    for (node, a) in nodes.iter().zip(ask_all(&d, &m, &nodes, &call).await) {
        match a {
            Ok(v) => {
                if let Some(list) = v["VolumesDeleted"].as_array() {
                    deleted.extend(
                        list.iter()
                            .filter_map(Value::as_str)
                            .map(|n| Value::String(qualified(node, n))),
                    );
                }
                reclaimed = reclaimed.saturating_add(v["SpaceReclaimed"].as_u64().unwrap_or(0));
            }
            Err(e) => failed.push(e.1),
        }
    }
    if !failed.is_empty() {
        return Err(HttpError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "pruned {} volumes ({reclaimed} bytes) on the nodes that answered; not pruned: {}",
                deleted.len(),
                failed.join("; ")
            ),
        ));
    }
    Ok(Json(json!({
        "VolumesDeleted": if deleted.is_empty() { Value::Null } else { json!(deleted) },
        "SpaceReclaimed": reclaimed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: &str) -> EngineNode {
        EngineNode {
            node_id: id.into(),
            name: name.into(),
            addr: None,
            down: false,
        }
    }

    #[test]
    fn a_node_prefix_names_a_node_by_name_id_or_unique_id_prefix() {
        let nodes = [node("a", "abc1"), node("b", "abd2")];
        assert_eq!(node_named(&nodes, "a").unwrap().node_id, "abc1");
        assert_eq!(node_named(&nodes, "abd2").unwrap().name, "b");
        assert_eq!(node_named(&nodes, "abc").unwrap().name, "a");
        assert!(node_named(&nodes, "ab").is_err());
        assert!(node_named(&nodes, "zz").is_err());
    }

    #[test]
    fn names_split_at_the_node() {
        assert_eq!(split_name("n1/data"), (Some("n1"), "data"));
        assert_eq!(split_name("data"), (None, "data"));
        let n = node("host", "id");
        assert_eq!(named(&n, json!({"Name": "v"}))["Name"], "host/v");
    }
}
