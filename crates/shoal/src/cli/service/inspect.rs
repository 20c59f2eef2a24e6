//! `service inspect`: the services as JSON (or through `--format`), or `--pretty` as
//! `docker service inspect --pretty` reads ([`pretty`], pure).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::Value;

use super::ls::mode_name;
use crate::cli::client::{encode, Client};
use crate::cli::table::{self, str_at};
use crate::cli::{fetch_each, inspect, join_errors};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// Format output using a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub(super) async fn inspect_services(client: &Client, args: InspectArgs) -> Result<()> {
    if !args.pretty {
        return inspect(
            client,
            "/services",
            &args.services,
            args.format.as_deref(),
            None,
        )
        .await;
    }
    let (found, errors) = fetch_each(client, "/services", &args.services).await;
    for raw in found {
        let service: Value = serde_json::from_str(&raw).context("decoding a service")?;
        let mut network_names = BTreeMap::new();
        for network in service
            .pointer("/Spec/TaskTemplate/Networks")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let target = str_at(network, &["Target"]);
            if let Ok(n) = client.get(&format!("/networks/{}", encode(target))).await {
                network_names.insert(target.to_string(), str_at(&n, &["Name"]).to_string());
            }
        }
        outln!("{}", pretty(&service, &network_names, chrono::Utc::now()));
    }
    join_errors(errors)
}

/// `docker service inspect --pretty`.
pub fn pretty(
    service: &Value,
    network_names: &BTreeMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let spec = service.get("Spec").cloned().unwrap_or(Value::Null);
    let s = |path: &[&str]| str_at(&spec, path).to_string();
    let num = |ptr: &str| spec.pointer(ptr).and_then(Value::as_i64).unwrap_or(0);
    let mut out = String::from("\n");
    out += &format!("ID:\t\t{}\n", str_at(service, &["ID"]));
    out += &format!("Name:\t\t{}", s(&["Name"]));
    if let Some(labels) = spec
        .get("Labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
    {
        out += "\nLabels:";
        for (k, v) in labels {
            let v = v.as_str().unwrap_or("");
            out += &if v.is_empty() {
                format!("\n {k}")
            } else {
                format!("\n {k}={v}")
            };
        }
    }
    out += "\nService Mode:";
    match mode_name(service) {
        "global" => out += "\tGlobal",
        "replicated" => {
            out += "\tReplicated";
            if let Some(n) = spec
                .pointer("/Mode/Replicated/Replicas")
                .and_then(Value::as_u64)
            {
                out += &format!("\n Replicas:\t{n}");
            }
        }
        _ => {}
    }
    if let Some(status) = service
        .get("UpdateStatus")
        .filter(|u| !str_at(u, &["State"]).is_empty())
    {
        let state = str_at(status, &["State"]);
        out += &format!("\nUpdateStatus:\n State:\t\t{state}");
        let started = table::ago(str_at(status, &["StartedAt"]), now);
        if !started.is_empty() {
            out += &format!("\n Started:\t{started}");
        }
        let completed = table::ago(str_at(status, &["CompletedAt"]), now);
        if state == "completed" && !completed.is_empty() {
            out += &format!("\n Completed:\t{completed}");
        }
        out += &format!("\n Message:\t{}", str_at(status, &["Message"]));
    }
    out += "\nPlacement:";
    let constraints = strings(spec.pointer("/TaskTemplate/Placement/Constraints"));
    if !constraints.is_empty() {
        out += &format!("\n Constraints:\t[{}]", constraints.join(" "));
    }
    let max = num("/TaskTemplate/Placement/MaxReplicas");
    if max > 0 {
        out += &format!("\n Max Replicas Per Node:   {max}");
    }
    for (key, title, order_label) in [
        ("UpdateConfig", "UpdateConfig", "Update order:      "),
        ("RollbackConfig", "RollbackConfig", "Rollback order:    "),
    ] {
        let Some(config) = spec.get(key).filter(|c| c.is_object()) else {
            continue;
        };
        let n = |k: &str| config.get(k).and_then(Value::as_i64).unwrap_or(0);
        out += &format!("\n{title}:\n Parallelism:\t{}", n("Parallelism"));
        if n("Delay") > 0 {
            out += &format!("\n Delay:\t\t{}", table::go_duration(n("Delay")));
        }
        out += &format!("\n On failure:\t{}", str_at(config, &["FailureAction"]));
        if n("Monitor") > 0 {
            out += &format!("\n Monitoring Period: {}", table::go_duration(n("Monitor")));
        }
        let ratio = config
            .get("MaxFailureRatio")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        out += &format!("\n Max failure ratio: {ratio}");
        out += &format!("\n {order_label}{}", str_at(config, &["Order"]));
    }
    let container = spec
        .pointer("/TaskTemplate/ContainerSpec")
        .cloned()
        .unwrap_or(Value::Null);
    out += &format!(
        "\nContainerSpec:\n Image:\t\t{}",
        str_at(&container, &["Image"])
    );
    let args = strings(container.get("Args"));
    if !args.is_empty() {
        out += &format!(
            "\n Args:\t\t{}",
            args.iter().map(|a| format!("{a} ")).collect::<String>()
        );
    }
    let env = strings(container.get("Env"));
    if !env.is_empty() {
        out += &format!(
            "\n Env:\t\t{}",
            env.iter().map(|e| format!("{e} ")).collect::<String>()
        );
    }
    if !str_at(&container, &["Dir"]).is_empty() {
        out += &format!("\n Dir:\t\t{}", str_at(&container, &["Dir"]));
    }
    if let Some(init) = container.get("Init").and_then(Value::as_bool) {
        out += &format!("\n Init:\t\t{init}");
    }
    if !str_at(&container, &["User"]).is_empty() {
        out += &format!("\n User: {}", str_at(&container, &["User"]));
    }
    let mounts = container
        .get("Mounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !mounts.is_empty() {
        out += "\nMounts:";
        for m in &mounts {
            let ro = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
            out += &format!(
                "\n Target:\t{}\n  Source:\t{}\n  ReadOnly:\t{ro}\n  Type:\t\t{}",
                str_at(m, &["Target"]),
                str_at(m, &["Source"]),
                str_at(m, &["Type"])
            );
        }
    }
    for (key, name_key) in [("Configs", "ConfigName"), ("Secrets", "SecretName")] {
        let refs = container
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !refs.is_empty() {
            out += &format!("\n{key}:");
            for r in &refs {
                out += &format!(
                    "\n Target:\t{}\n  Source:\t{}",
                    str_at(r, &["File", "Name"]),
                    str_at(r, &[name_key])
                );
            }
        }
    }
    if let Some(resources) = spec
        .pointer("/TaskTemplate/Resources")
        .filter(|r| r.is_object())
    {
        out += "\nResources:";
        for (section, title) in [("Reservations", "Reservations"), ("Limits", "Limits")] {
            let cpu = resources
                .pointer(&format!("/{section}/NanoCPUs"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let mem = resources
                .pointer(&format!("/{section}/MemoryBytes"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let pids = resources
                .pointer(&format!("/{section}/Pids"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if cpu > 0 || mem > 0 || (section == "Limits" && pids > 0) {
                out += &format!("\n {title}:");
                if cpu > 0 {
                    out += &format!("\n  CPU:\t\t{}", cpu as f64 / 1e9);
                }
                if mem > 0 {
                    out += &format!("\n  Memory:\t{}", table::bytes_size(mem as f64));
                }
            }
        }
    }
    let pids = num("/TaskTemplate/Resources/Limits/Pids");
    if pids > 0 {
        out += &format!("\n  PIDs:\t\t{pids}");
    }
    let networks: Vec<String> = spec
        .pointer("/TaskTemplate/Networks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let target = str_at(n, &["Target"]);
            network_names
                .get(target)
                .cloned()
                .unwrap_or_else(|| target.to_string())
        })
        .collect();
    if !networks.is_empty() {
        out += "\nNetworks:";
        for n in &networks {
            out += &format!(" {n}");
        }
        out += " ";
    }
    out += &format!(
        "\nEndpoint Mode:\t{}",
        str_at(&spec, &["EndpointSpec", "Mode"])
    );
    let ports = service
        .pointer("/Endpoint/Ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !ports.is_empty() {
        out += "\nPorts:";
        for p in &ports {
            let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
            out += &format!(
                "\n PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {}",
                n("PublishedPort"),
                str_at(p, &["Protocol"]),
                n("TargetPort"),
                str_at(p, &["PublishMode"])
            );
        }
        out += " ";
    }
    out += "\n";
    out
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_inspect_reads_like_docker() {
        let service = json!({
            "ID": "svcid",
            "Spec": {
                "Name": "web",
                "Labels": {"com.label": "foo"},
                "Mode": {"Replicated": {"Replicas": 2}},
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "nginx:1.25", "Env": ["A=1"], "Init": false},
                    "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 104857600}, "Reservations": {}},
                    "Placement": {"Constraints": ["node.role==worker"]},
                    "Networks": [{"Target": "netid"}]
                },
                "UpdateConfig": {"Parallelism": 1, "Delay": 10000000000i64, "FailureAction": "pause",
                                  "Monitor": 5000000000i64, "MaxFailureRatio": 0, "Order": "stop-first"},
                "EndpointSpec": {"Mode": "vip"}
            },
            "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}
        });
        let names = BTreeMap::from([("netid".to_string(), "front".to_string())]);
        let out = pretty(&service, &names, chrono::Utc::now());
        assert_eq!(
            out,
            "\nID:\t\tsvcid\nName:\t\tweb\nLabels:\n com.label=foo\nService Mode:\tReplicated\n Replicas:\t2\n\
             Placement:\n Constraints:\t[node.role==worker]\nUpdateConfig:\n Parallelism:\t1\n Delay:\t\t10s\n\
             \x20On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\n\
             ContainerSpec:\n Image:\t\tnginx:1.25\n Env:\t\tA=1 \n Init:\t\tfalse\nResources:\n Limits:\n\
             \x20 CPU:\t\t0.5\n  Memory:\t100MiB\nNetworks: front \nEndpoint Mode:\tvip\nPorts:\n\
             \x20PublishedPort = 8080\n  Protocol = tcp\n  TargetPort = 80\n  PublishMode = ingress \n"
        );
    }
}
