//! `service ls`: services with their replica counts, image and ingress ports, as
//! `docker service ls` prints them ([`service_listing`], pure; `stack services` uses it too).

use anyhow::Result;
use serde_json::{json, Value};

use super::non_empty;
use crate::cli::client::{Client, Filters, Query};
use crate::cli::table::{self, str_at, Listing};

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (id, label, mode, name)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
}

pub(super) async fn list(client: &Client, args: ListArgs) -> Result<()> {
    let filters = Filters::parse(&args.filters)?;
    let services = list_services(client, &filters).await?;
    service_listing(&services).print(args.format.as_deref(), args.quiet)
}

/// `GET /services?status=true` with these filters.
pub async fn list_services(client: &Client, filters: &Filters) -> Result<Vec<Value>> {
    let path = Query::new()
        .push("status", "true")
        .filters(filters)
        .to_path("/services");
    let services = client.get(&path).await?;
    Ok(services.as_array().cloned().unwrap_or_default())
}

/// The `service ls` table (sorted by name) and its records.
pub fn service_listing(services: &[Value]) -> Listing {
    let mut services: Vec<&Value> = services.iter().collect();
    services.sort_by(|a, b| {
        table::natural_cmp(str_at(a, &["Spec", "Name"]), str_at(b, &["Spec", "Name"]))
    });
    let mut listing = Listing::new(&["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]);
    for service in services {
        let row = vec![
            table::truncate_id(str_at(service, &["ID"])),
            str_at(service, &["Spec", "Name"]).to_string(),
            mode_name(service).to_string(),
            replicas(service),
            table::image_without_digest(str_at(
                service,
                &["Spec", "TaskTemplate", "ContainerSpec", "Image"],
            )),
            ports(service),
        ];
        let record = json!({
            "ID": row[0], "Name": row[1], "Mode": row[2],
            "Replicas": row[3], "Image": row[4], "Ports": row[5],
        });
        listing.push(row, record);
    }
    listing
}

pub(super) fn mode_name(service: &Value) -> &'static str {
    let mode = service.pointer("/Spec/Mode");
    let has = |key: &str| mode.and_then(|m| m.get(key)).is_some_and(|v| !v.is_null());
    if has("Global") {
        "global"
    } else if has("Replicated") {
        "replicated"
    } else if has("ReplicatedJob") {
        "replicated job"
    } else if has("GlobalJob") {
        "global job"
    } else {
        ""
    }
}

fn replicas(service: &Value) -> String {
    let count = |key: &str| {
        service
            .pointer(&format!("/ServiceStatus/{key}"))
            .and_then(Value::as_u64)
    };
    let desired_from_spec = service
        .pointer("/Spec/Mode/Replicated/Replicas")
        .and_then(Value::as_u64);
    let running = count("RunningTasks").unwrap_or(0);
    let desired = count("DesiredTasks").or(desired_from_spec).unwrap_or(0);
    let completed = count("CompletedTasks").unwrap_or(0);
    if let Some(job) = service
        .pointer("/Spec/Mode/ReplicatedJob")
        .filter(|j| !j.is_null())
    {
        let total = job
            .get("TotalCompletions")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        return format!("{running}/{desired} ({completed}/{total} completed)");
    }
    if service
        .pointer("/Spec/Mode/GlobalJob")
        .is_some_and(|j| !j.is_null())
    {
        return format!(
            "{running}/{desired} ({completed}/{} completed)",
            desired + completed
        );
    }
    let max = service
        .pointer("/Spec/TaskTemplate/Placement/MaxReplicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if max > 0 && mode_name(service) == "replicated" {
        return format!("{running}/{desired} (max {max} per node)");
    }
    format!("{running}/{desired}")
}

/// Ingress-published ports, grouped into ranges like `docker service ls` does: consecutive
/// published ports onto consecutive (or one) target ports become `*:8080-8081->80-81/tcp`.
fn ports(service: &Value) -> String {
    let mut ports: Vec<(String, i64, i64)> = service
        .pointer("/Endpoint/Ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|p| non_empty(str_at(p, &["PublishMode"]), "ingress") == "ingress")
        .map(|p| {
            (
                str_at(p, &["Protocol"]).to_string(),
                p.get("PublishedPort").and_then(Value::as_i64).unwrap_or(0),
                p.get("TargetPort").and_then(Value::as_i64).unwrap_or(0),
            )
        })
        .collect();
    ports.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));

    struct Range {
        protocol: String,
        p_start: i64,
        p_end: i64,
        t_start: i64,
        t_end: i64,
    }
    let show = |r: &Range| {
        let side = |s: i64, e: i64| {
            if e > s {
                format!("{s}-{e}")
            } else {
                s.to_string()
            }
        };
        format!(
            "*:{}->{}/{}",
            side(r.p_start, r.p_end),
            side(r.t_start, r.t_end),
            r.protocol
        )
    };
    let mut out = Vec::new();
    let mut current: Option<Range> = None;
    for (protocol, published, target) in ports {
        if let Some(r) = current.as_mut() {
            let is_range = r.t_end != r.t_start;
            let gap = |d: i64| !(0..=1).contains(&d);
            let starts_new = r.protocol != protocol
                || gap(published - r.p_end)
                || gap(target - r.t_end)
                || (is_range && target <= r.t_end);
            if !starts_new {
                r.p_end = published;
                r.t_end = target;
                continue;
            }
            if r.p_start > 0 {
                out.push(show(r));
            }
        }
        current = Some(Range {
            protocol,
            p_start: published,
            p_end: published,
            t_start: target,
            t_end: target,
        });
    }
    if let Some(r) = current.filter(|r| r.p_start > 0) {
        out.push(show(&r));
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ls_shows_replicas_image_and_port_ranges() {
        let services = vec![
            json!({
                "ID": "abcdefghijklmnopqrstuvwxy",
                "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.25@sha256:0123"}}},
                "Endpoint": {"Ports": [
                    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "ingress"},
                    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 2222, "PublishMode": "host"}
                ]},
                "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 3, "CompletedTasks": 0}
            }),
            json!({
                "ID": "zyxwvutsrqponmlkjihgfedcb",
                "Spec": {"Name": "agent", "Mode": {"Global": {}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}},
                "Endpoint": {},
                "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1, "CompletedTasks": 0}
            }),
        ];
        let out = service_listing(&services).render(None, false).unwrap();
        let expected = [
            "ID             NAME      MODE         REPLICAS   IMAGE            PORTS",
            // No ports: the line ends in the IMAGE cell's padding, as docker's does.
            "zyxwvutsrqpo   agent     global       1/1        busybox:latest   ",
            "abcdefghijkl   web       replicated   2/3        nginx:1.25       *:8080-8081->80-81/tcp, *:53->53/udp",
        ];
        assert_eq!(out, expected.join("\n") + "\n");
        assert_eq!(
            service_listing(&services).render(None, true).unwrap(),
            "zyxwvutsrqpo\nabcdefghijkl\n"
        );
    }
}
