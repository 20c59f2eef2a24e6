//! `/tasks`: list and inspect.

use super::*;

pub(super) async fn task_list(
    State(d): S,
    RawQuery(q): RawQuery,
) -> HttpResult<Json<Vec<swarm::Task>>> {
    let q = Query::parse(q.as_deref())?;
    let f = q.filters(filters::TASK_FILTERS)?;
    let desired = f
        .desired_states()
        .map_err(|e| HttpError::bad_request(e.to_string()))?;
    let m = d.manager()?;
    let state = m.replica().read();
    let services: Vec<String> = f
        .get("service")
        .iter()
        .filter_map(|k| state.services.resolve(k).ok().map(|s| s.id.clone()))
        .collect();
    let nodes: Vec<String> = f
        .get("node")
        .iter()
        .filter_map(|k| state.nodes.resolve(k).ok().map(|n| n.id.clone()))
        .collect();
    if (f.contains("service") && services.is_empty()) || (f.contains("node") && nodes.is_empty()) {
        return Ok(Json(Vec::new()));
    }
    let up_to_date = f.contains("_up-to-date");
    let out = state
        .tasks
        .iter()
        .filter(|t| {
            f.match_id_prefix(&t.id)
                && f.match_name_prefix(&t.name)
                // As in Swarm, `label` matches the labels of the task's service.
                && (!f.contains("label")
                    || state
                        .services
                        .get(&t.service_id)
                        .is_some_and(|s| f.match_labels("label", &s.spec.labels)))
                && (services.is_empty() || services.contains(&t.service_id))
                && (nodes.is_empty() || nodes.contains(&t.node_id))
                && (desired.is_empty() || desired.contains(&t.desired_state))
                && f.match_exact("runtime", t.spec.runtime_name())
                && (!up_to_date
                    || state
                        .services
                        .get(&t.service_id)
                        .is_some_and(|s| s.spec.task_template == t.spec))
        })
        .cloned()
        .collect();
    Ok(Json(out))
}

pub(super) async fn task_inspect(
    State(d): S,
    Path(id): Path<String>,
) -> HttpResult<Json<swarm::Task>> {
    let m = d.manager()?;
    let state = m.replica().read();
    Ok(Json(state.tasks.resolve(&id)?.clone()))
}
