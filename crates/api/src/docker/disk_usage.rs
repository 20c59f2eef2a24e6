//! `GET /system/df` (`docker system df [-v]`): the disk usage of every node's engine, added
//! up. Images are listed per node as each engine reports them (an image on three nodes uses
//! its space three times); containers and volumes are named with their node, as `docker
//! volume ls` names volumes (`NODE/NAME`). Nodes known to be down are left out; a node that
//! should answer and does not fails the request rather than giving a total that is too small.

use super::volumes::{ask_all, qualified};
use super::*;
use shoal_types::engine_call::EngineCall;

pub(super) async fn system_df(State(d): S) -> HttpResult<Json<Value>> {
    let m = d.manager()?;
    let nodes: Vec<_> = m.engine_nodes().into_iter().filter(|n| !n.down).collect();
    let answers = ask_all(&d, &m, &nodes, &EngineCall::SystemDf).await;
    let mut layers: i64 = 0;
    let (mut images, mut containers, mut volumes, mut cache) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (node, a) in nodes.iter().zip(answers) {
        let v = a?;
        layers = layers.saturating_add(v["LayersSize"].as_i64().unwrap_or(0));
        let list = |key: &str| v[key].as_array().cloned().unwrap_or_default();
        images.extend(list("Images"));
        for mut c in list("Containers") {
            if let Some(names) = c["Names"].as_array() {
                let names: Vec<Value> = names
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|n| {
                        Value::String(format!("/{}", qualified(node, n.trim_start_matches('/'))))
                    })
                    .collect();
                c["Names"] = Value::Array(names);
            }
            containers.push(c);
        }
        for mut vol in list("Volumes") {
            if let Some(name) = vol["Name"].as_str() {
                vol["Name"] = Value::String(qualified(node, name));
            }
            volumes.push(vol);
        }
        cache.extend(list("BuildCache"));
    }
    Ok(Json(json!({
        "LayersSize": layers,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": cache,
    })))
}
