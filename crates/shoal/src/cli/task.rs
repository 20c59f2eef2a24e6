//! Task tables: how `service ps`, `node ps` and `stack ps` list tasks, named `SERVICE.SLOT`
//! (or `SERVICE.NODE` for global services) with their node's hostname, desired and current
//! state, error and ports. It reads tasks and node names; it changes nothing.

use std::collections::HashMap;

use anyhow::Result;
use serde_json::{json, Value};

use super::client::{encode, Client, Filters, Query};
use super::table::{self, str_at, Listing};

/// `GET /tasks` with these filters.
pub async fn list_tasks(client: &Client, filters: &Filters) -> Result<Vec<Value>> {
    let path = Query::new().filters(filters).to_path("/tasks");
    Ok(client
        .get(&path)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// How `ps` tables show tasks.
#[derive(Debug, Default, Clone)]
pub struct TaskOptions {
    pub no_trunc: bool,
    pub no_resolve: bool,
}

/// The `service ps` / `stack ps` table: tasks named `SERVICE.SLOT` (or `SERVICE.NODE` for
/// global services), sorted by name then newest first, older tasks of a slot indented.
pub async fn task_listing(
    client: &Client,
    tasks: &[Value],
    service_names: &HashMap<String, String>,
    options: &TaskOptions,
) -> Listing {
    let mut node_names: HashMap<String, String> = HashMap::new();
    if !options.no_resolve {
        for task in tasks {
            let node = str_at(task, &["NodeID"]);
            if node.is_empty() || node_names.contains_key(node) {
                continue;
            }
            let name = match client.get(&format!("/nodes/{}", encode(node))).await {
                Ok(n) => str_at(&n, &["Description", "Hostname"]).to_string(),
                Err(_) => node.to_string(),
            };
            node_names.insert(node.to_string(), name);
        }
    }
    build_task_listing(
        tasks,
        service_names,
        &node_names,
        options,
        chrono::Utc::now(),
    )
}

fn build_task_listing(
    tasks: &[Value],
    service_names: &HashMap<String, String>,
    node_names: &HashMap<String, String>,
    options: &TaskOptions,
    now: chrono::DateTime<chrono::Utc>,
) -> Listing {
    let mut named: Vec<(String, &Value)> = tasks
        .iter()
        .map(|task| {
            let service_id = str_at(task, &["ServiceID"]);
            let service = if options.no_resolve {
                service_id.to_string()
            } else {
                service_names
                    .get(service_id)
                    .cloned()
                    .unwrap_or_else(|| service_id.to_string())
            };
            let slot = task.get("Slot").and_then(Value::as_u64).unwrap_or(0);
            let name = if slot != 0 {
                format!("{service}.{slot}")
            } else {
                format!("{service}.{}", str_at(task, &["NodeID"]))
            };
            (name, task)
        })
        .collect();
    named.sort_by(|(a, ta), (b, tb)| {
        table::natural_cmp(a, b).then_with(|| {
            // Newest first within one slot.
            let created = |t: &Value| table::parse_time(str_at(t, &["CreatedAt"]));
            created(tb).cmp(&created(ta))
        })
    });

    let mut listing = Listing::new(&[
        "ID",
        "NAME",
        "IMAGE",
        "NODE",
        "DESIRED STATE",
        "CURRENT STATE",
        "ERROR",
        "PORTS",
    ]);
    let mut previous = String::new();
    for (name, task) in named {
        let shown_name = if name == previous {
            format!(" \\_ {name}")
        } else {
            name.clone()
        };
        previous = name;
        let id = str_at(task, &["ID"]);
        let image = str_at(task, &["Spec", "ContainerSpec", "Image"]);
        let node_id = str_at(task, &["NodeID"]);
        let node = node_names
            .get(node_id)
            .cloned()
            .unwrap_or_else(|| node_id.to_string());
        let since = table::parse_time(str_at(task, &["Status", "Timestamp"]))
            .map(|t| table::human_duration(now - t).to_lowercase())
            .unwrap_or_else(|| "less than a second".into());
        let mut error = str_at(task, &["Status", "Err"]).to_string();
        if !options.no_trunc && error.chars().count() > 30 {
            error = error.chars().take(29).collect::<String>() + "…";
        }
        if !error.is_empty() {
            error = format!("\"{error}\"");
        }
        let ports: Vec<String> = task
            .pointer("/Status/PortStatus/Ports")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                format!(
                    "*:{}->{}/{}",
                    p.get("PublishedPort").and_then(Value::as_u64).unwrap_or(0),
                    p.get("TargetPort").and_then(Value::as_u64).unwrap_or(0),
                    str_at(p, &["Protocol"])
                )
            })
            .collect();
        let row = vec![
            if options.no_trunc {
                id.to_string()
            } else {
                table::truncate_id(id)
            },
            shown_name,
            if options.no_trunc {
                image.to_string()
            } else {
                table::image_without_digest(image)
            },
            node,
            table::capitalize(str_at(task, &["DesiredState"])),
            format!(
                "{} {since} ago",
                table::capitalize(str_at(task, &["Status", "State"]))
            ),
            error,
            ports.join(","),
        ];
        let record = json!({
            "ID": row[0], "Name": row[1], "Image": row[2], "Node": row[3],
            "DesiredState": row[4], "CurrentState": row[5], "Error": row[6], "Ports": row[7],
        });
        listing.push(row, record);
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_table_names_slots_and_indents_history() {
        let now = chrono::DateTime::parse_from_rfc3339("2024-01-01T12:05:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let tasks = vec![
            json!({"ID": "task1aaaaaaaaaaaaaaa", "ServiceID": "svc", "Slot": 1, "NodeID": "n1",
                   "CreatedAt": "2024-01-01T12:00:00Z", "DesiredState": "running",
                   "Spec": {"ContainerSpec": {"Image": "nginx:1.25@sha256:00"}},
                   "Status": {"State": "running", "Timestamp": "2024-01-01T12:00:00Z"}}),
            json!({"ID": "task0aaaaaaaaaaaaaaa", "ServiceID": "svc", "Slot": 1, "NodeID": "n1",
                   "CreatedAt": "2024-01-01T11:00:00Z", "DesiredState": "shutdown",
                   "Spec": {"ContainerSpec": {"Image": "nginx:1.24"}},
                   "Status": {"State": "failed", "Timestamp": "2024-01-01T11:55:00Z",
                              "Err": "task: non-zero exit (1)"}}),
        ];
        let services = HashMap::from([("svc".to_string(), "web".to_string())]);
        let nodes = HashMap::from([("n1".to_string(), "node-1".to_string())]);
        let listing = build_task_listing(&tasks, &services, &nodes, &TaskOptions::default(), now);
        assert_eq!(listing.rows[0][1], "web.1");
        assert_eq!(listing.rows[0][5], "Running 5 minutes ago");
        assert_eq!(listing.rows[1][1], " \\_ web.1");
        assert_eq!(listing.rows[1][4], "Shutdown");
        assert_eq!(listing.rows[1][6], "\"task: non-zero exit (1)\"");
        assert_eq!(listing.rows[0][3], "node-1");
        assert_eq!(listing.rows[0][2], "nginx:1.25");
    }
}
