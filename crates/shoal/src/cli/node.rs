//! `shoal node …`: lists, inspects, updates, promotes, demotes and removes swarm nodes through
//! `/nodes`, printing what `docker node` prints. A node update always starts from the node's
//! current spec and version, so it changes only what the flags name.

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::client::{encode, Client, Filters, Query};
use super::table::{self, str_at, Listing};
use super::task::{list_tasks, task_listing, TaskOptions};
use super::{inspect, join_errors, object_at, opts, version_index};

#[derive(clap::Subcommand, Debug)]
pub enum NodeCmd {
    /// List nodes in the swarm
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more nodes
    Inspect(InspectArgs),
    /// Update a node
    Update(UpdateArgs),
    /// Promote one or more nodes to manager in the swarm
    Promote(NodesArgs),
    /// Demote one or more nodes from manager in the swarm
    Demote(NodesArgs),
    /// Remove one or more nodes from the swarm
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List tasks running on one or more nodes, defaults to current node
    Ps(PsArgs),
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (id, label, membership, name, node.label, role)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// Format output using a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Nodes (ID, hostname or "self")
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
}

#[derive(clap::Args, Debug, Default)]
pub struct UpdateArgs {
    /// Add or update a node label (key=value)
    #[arg(long = "label-add", value_name = "K=V")]
    pub label_add: Vec<String>,
    /// Remove a node label if exists
    #[arg(long = "label-rm", value_name = "K")]
    pub label_rm: Vec<String>,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_parser = ["active", "pause", "drain"])]
    pub availability: Option<String>,
    /// Role of the node ("worker", "manager")
    #[arg(long, value_parser = ["worker", "manager"])]
    pub role: Option<String>,
    #[arg(value_name = "NODE")]
    pub node: String,
}

#[derive(clap::Args, Debug)]
pub struct NodesArgs {
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force remove a node from the swarm
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "NODE")]
    pub nodes: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Only display task IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Do not map IDs to names
    #[arg(long)]
    pub no_resolve: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}

pub async fn run(client: &Client, cmd: NodeCmd) -> Result<()> {
    match cmd {
        NodeCmd::Ls(args) => list(client, args).await,
        NodeCmd::Inspect(args) => inspect_nodes(client, args).await,
        NodeCmd::Update(args) => {
            let node = args.node.clone();
            update_nodes(
                client,
                &[node],
                |_, spec| apply_update(spec, &args),
                |n| outln!("{n}"),
            )
            .await
        }
        NodeCmd::Promote(args) => {
            update_nodes(
                client,
                &args.nodes,
                |node, spec| set_role(node, spec, "manager"),
                |n| outln!("Node {n} promoted to a manager in the swarm."),
            )
            .await
        }
        NodeCmd::Demote(args) => {
            update_nodes(
                client,
                &args.nodes,
                |node, spec| set_role(node, spec, "worker"),
                |n| outln!("Manager {n} demoted in the swarm."),
            )
            .await
        }
        NodeCmd::Rm(args) => remove(client, args).await,
        NodeCmd::Ps(args) => ps(client, args).await,
    }
}

async fn list(client: &Client, args: ListArgs) -> Result<()> {
    let filters = Filters::parse(&args.filters)?;
    let nodes = client
        .get(&Query::new().filters(&filters).to_path("/nodes"))
        .await?;
    let self_id = if args.quiet {
        String::new()
    } else {
        let info = client.get("/info").await?;
        str_at(&info, &["Swarm", "NodeID"]).to_string()
    };
    let nodes = nodes.as_array().cloned().unwrap_or_default();
    node_listing(&nodes, &self_id).print(args.format.as_deref(), args.quiet)
}

/// The `node ls` table, sorted by hostname, the current node's ID marked with ` *`.
pub fn node_listing(nodes: &[Value], self_id: &str) -> Listing {
    let mut nodes: Vec<&Value> = nodes.iter().collect();
    nodes.sort_by(|a, b| {
        table::natural_cmp(
            str_at(a, &["Description", "Hostname"]),
            str_at(b, &["Description", "Hostname"]),
        )
    });
    let mut listing = Listing::new(&[
        "ID",
        "HOSTNAME",
        "STATUS",
        "AVAILABILITY",
        "MANAGER STATUS",
        "ENGINE VERSION",
    ]);
    for node in nodes {
        let id = str_at(node, &["ID"]);
        let is_self = !self_id.is_empty() && id == self_id;
        let manager_status = match node.get("ManagerStatus").filter(|m| m.is_object()) {
            Some(m) if m.get("Leader").and_then(Value::as_bool).unwrap_or(false) => {
                "Leader".to_string()
            }
            Some(m) => table::capitalize(str_at(m, &["Reachability"])),
            None => String::new(),
        };
        let hostname = str_at(node, &["Description", "Hostname"]).to_string();
        let status = table::capitalize(str_at(node, &["Status", "State"]));
        let availability = table::capitalize(str_at(node, &["Spec", "Availability"]));
        let engine = str_at(node, &["Description", "Engine", "EngineVersion"]).to_string();
        let tls = if str_at(node, &["Description", "TLSInfo", "TrustRoot"]).is_empty() {
            "Unknown"
        } else {
            "Ready"
        };
        let record = json!({
            "ID": id, "Self": is_self, "Hostname": hostname, "Status": status,
            "Availability": availability, "ManagerStatus": manager_status,
            "EngineVersion": engine, "TLSStatus": tls,
        });
        let shown_id = if is_self {
            format!("{id} *")
        } else {
            id.to_string()
        };
        listing.push(
            vec![
                shown_id,
                hostname,
                status,
                availability,
                manager_status,
                engine,
            ],
            record,
        );
    }
    listing
}

/// Docker's node `Reference`: `self` means this node, anything else goes to the daemon as typed.
async fn node_reference(client: &Client, reference: &str) -> Result<String> {
    if reference != "self" {
        return Ok(reference.to_string());
    }
    let info = client.get("/info").await?;
    let id = str_at(&info, &["Swarm", "NodeID"]);
    if id.is_empty() {
        // Not a manager, probably: a swarm endpoint explains it better.
        client.get("/nodes").await?;
        bail!("node ID not found in /info");
    }
    Ok(id.to_string())
}

async fn inspect_nodes(client: &Client, args: InspectArgs) -> Result<()> {
    let mut nodes = Vec::new();
    for reference in &args.nodes {
        nodes.push(node_reference(client, reference).await?);
    }
    let pretty_fn: &dyn Fn(&Value) -> String = &pretty;
    let pretty_fn = args.pretty.then_some(pretty_fn);
    inspect(client, "/nodes", &nodes, args.format.as_deref(), pretty_fn).await
}

/// `docker node inspect --pretty`.
pub fn pretty(node: &Value) -> String {
    let s = |path: &[&str]| str_at(node, path).to_string();
    let mut out = format!("ID:\t\t\t{}", s(&["ID"]));
    if !s(&["Spec", "Name"]).is_empty() {
        out += &format!("\nName:\t\t\t{}", s(&["Spec", "Name"]));
    }
    push_labels(&mut out, "Labels", node.pointer("/Spec/Labels"));
    out += &format!(
        "\nHostname:              \t{}",
        s(&["Description", "Hostname"])
    );
    out += &format!(
        "\nJoined at:             \t{}",
        table::pretty_time(str_at(node, &["CreatedAt"]))
    );
    out += &format!(
        "\nStatus:\n State:\t\t\t{}",
        table::capitalize(str_at(node, &["Status", "State"]))
    );
    if !s(&["Status", "Message"]).is_empty() {
        out += &format!(
            "\n Message:              \t{}",
            table::capitalize(str_at(node, &["Status", "Message"]))
        );
    }
    out += &format!(
        "\n Availability:         \t{}",
        table::capitalize(str_at(node, &["Spec", "Availability"]))
    );
    if !s(&["Status", "Addr"]).is_empty() {
        out += &format!("\n Address:\t\t{}", s(&["Status", "Addr"]));
    }
    if let Some(manager) = node.get("ManagerStatus").filter(|m| m.is_object()) {
        let leader = manager
            .get("Leader")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out += &format!(
            "\nManager Status:\n Address:\t\t{}\n Raft Status:\t\t{}\n Leader:\t\t{}",
            str_at(manager, &["Addr"]),
            table::capitalize(str_at(manager, &["Reachability"])),
            if leader { "Yes" } else { "No" }
        );
    }
    out += &format!(
        "\nPlatform:\n Operating System:\t{}\n Architecture:\t\t{}",
        s(&["Description", "Platform", "OS"]),
        s(&["Description", "Platform", "Architecture"])
    );
    let cpus = node
        .pointer("/Description/Resources/NanoCPUs")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        / 1_000_000_000;
    let memory = node
        .pointer("/Description/Resources/MemoryBytes")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let memory = if memory == 0 {
        String::new()
    } else {
        table::bytes_size(memory as f64)
    };
    out += &format!("\nResources:\n CPUs:\t\t\t{cpus}\n Memory:\t\t{memory}");
    out += &format!(
        "\nEngine Version:\t\t{}",
        s(&["Description", "Engine", "EngineVersion"])
    );
    push_labels(
        &mut out,
        "Engine Labels",
        node.pointer("/Description/Engine/Labels"),
    );
    let trust_root = s(&["Description", "TLSInfo", "TrustRoot"]);
    if !trust_root.is_empty() {
        out += &format!(
            "\nTLS Info:\n TrustRoot:\n{}\n Issuer Subject:\t{}\n Issuer Public Key:\t{}",
            trust_root,
            s(&["Description", "TLSInfo", "CertIssuerSubject"]),
            s(&["Description", "TLSInfo", "CertIssuerPublicKey"])
        );
    }
    out
}

fn push_labels(out: &mut String, title: &str, labels: Option<&Value>) {
    if let Some(labels) = labels.and_then(Value::as_object).filter(|l| !l.is_empty()) {
        *out += &format!("\n{title}:");
        for (k, v) in labels {
            match v.as_str().unwrap_or("") {
                "" => *out += &format!("\n - {k}"),
                v => *out += &format!("\n - {k}={v}"),
            }
        }
    }
}

/// GET each node, let `change` edit its spec (given the node; `Ok(false)` = nothing to send),
/// POST it back with the version read; `done` prints the success line.
async fn update_nodes(
    client: &Client,
    nodes: &[String],
    change: impl Fn(&Value, &mut Value) -> Result<bool>,
    done: impl Fn(&str),
) -> Result<()> {
    for reference in nodes {
        let id = node_reference(client, reference).await?;
        let node = client.get(&format!("/nodes/{}", encode(&id))).await?;
        let mut spec = node.get("Spec").cloned().unwrap_or_else(|| json!({}));
        if !change(&node, &mut spec)? {
            continue;
        }
        let path = Query::new()
            .push("version", version_index(&node).to_string())
            .to_path(&format!("/nodes/{}/update", encode(str_at(&node, &["ID"]))));
        client.post(&path, &spec).await?;
        done(reference);
    }
    Ok(())
}

/// `node update` flags applied to a NodeSpec.
pub fn apply_update(spec: &mut Value, args: &UpdateArgs) -> Result<bool> {
    if !args.label_add.is_empty() || !args.label_rm.is_empty() {
        let labels = object_at(spec, &["Labels"]);
        for key in &args.label_rm {
            if labels.remove(key).is_none() {
                bail!("key {key} doesn't exist in node's labels");
            }
        }
        for (k, v) in opts::kv_map(&args.label_add) {
            labels.insert(k, json!(v));
        }
    }
    if let Some(availability) = &args.availability {
        spec["Availability"] = json!(availability);
    }
    if let Some(role) = &args.role {
        spec["Role"] = json!(role);
    }
    Ok(true)
}

fn set_role(node: &Value, spec: &mut Value, role: &str) -> Result<bool> {
    if str_at(spec, &["Role"]) == role {
        let what = if role == "manager" {
            "a manager"
        } else {
            "a worker"
        };
        outln!("Node {} is already {what}.", str_at(node, &["ID"]));
        return Ok(false);
    }
    spec["Role"] = json!(role);
    Ok(true)
}

async fn remove(client: &Client, args: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for node in &args.nodes {
        let result = async {
            let id = node_reference(client, node).await?;
            let path = Query::new()
                .push("force", args.force.to_string())
                .to_path(&format!("/nodes/{}", encode(&id)));
            client.delete(&path).await
        };
        match result.await {
            Ok(()) => outln!("{node}"),
            Err(err) => errors.push(err.to_string()),
        }
    }
    join_errors(errors)
}

async fn ps(client: &Client, args: PsArgs) -> Result<()> {
    let nodes = if args.nodes.is_empty() {
        vec!["self".to_string()]
    } else {
        args.nodes.clone()
    };
    let mut filters = Filters::parse(&args.filters)?;
    for reference in &nodes {
        let id = node_reference(client, reference).await?;
        let node = client.get(&format!("/nodes/{}", encode(&id))).await?;
        filters.add("node", str_at(&node, &["ID"]));
    }
    let tasks = list_tasks(client, &filters).await?;
    let mut service_names = std::collections::HashMap::new();
    if !args.no_resolve {
        for task in &tasks {
            let id = str_at(task, &["ServiceID"]);
            if id.is_empty() || service_names.contains_key(id) {
                continue;
            }
            if let Ok(service) = client.get(&format!("/services/{}", encode(id))).await {
                service_names.insert(
                    id.to_string(),
                    str_at(&service, &["Spec", "Name"]).to_string(),
                );
            }
        }
    }
    let options = TaskOptions {
        no_trunc: args.no_trunc,
        no_resolve: args.no_resolve,
    };
    task_listing(client, &tasks, &service_names, &options)
        .await
        .print(args.format.as_deref(), args.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_nodes() -> Vec<Value> {
        serde_json::from_str(
            r#"[
            {"ID": "w2xkpq9s0sq2m3lbyh6mzdx3c", "Version": {"Index": 20},
             "Spec": {"Role": "worker", "Availability": "drain", "Labels": {}},
             "Description": {"Hostname": "worker-1", "Engine": {"EngineVersion": "0.1.0"}},
             "Status": {"State": "down", "Addr": "10.0.0.3"}},
            {"ID": "8p5ye9uk2u1shvzxnsn5ib3w6", "Version": {"Index": 12},
             "Spec": {"Role": "manager", "Availability": "active"},
             "Description": {"Hostname": "manager-1", "Engine": {"EngineVersion": "0.1.0"}},
             "Status": {"State": "ready", "Addr": "10.0.0.1"},
             "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.0.0.1:2377"}},
            {"ID": "q3dhb1ma7wdk0dxq7j8pvl6xr", "Version": {"Index": 14},
             "Spec": {"Role": "manager", "Availability": "pause"},
             "Description": {"Hostname": "manager-2", "Engine": {"EngineVersion": "0.1.0"}},
             "Status": {"State": "ready", "Addr": "10.0.0.2"},
             "ManagerStatus": {"Reachability": "unreachable", "Addr": "10.0.0.2:2377"}}
        ]"#,
        )
        .unwrap()
    }

    #[test]
    fn node_ls_table_marks_self_and_manager_status() {
        let out = node_listing(&sample_nodes(), "8p5ye9uk2u1shvzxnsn5ib3w6")
            .render(None, false)
            .unwrap();
        let expected = [
            "ID                            HOSTNAME    STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION",
            "8p5ye9uk2u1shvzxnsn5ib3w6 *   manager-1   Ready     Active         Leader           0.1.0",
            "q3dhb1ma7wdk0dxq7j8pvl6xr     manager-2   Ready     Pause          Unreachable      0.1.0",
            "w2xkpq9s0sq2m3lbyh6mzdx3c     worker-1    Down      Drain                           0.1.0",
        ];
        assert_eq!(out, expected.join("\n") + "\n");
    }

    #[test]
    fn node_ls_quiet_and_json() {
        let listing = node_listing(&sample_nodes(), "");
        assert_eq!(
            listing.render(None, true).unwrap(),
            "8p5ye9uk2u1shvzxnsn5ib3w6\nq3dhb1ma7wdk0dxq7j8pvl6xr\nw2xkpq9s0sq2m3lbyh6mzdx3c\n"
        );
        let json = listing.render(Some("json"), false).unwrap();
        let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["ManagerStatus"], "Leader");
        assert_eq!(first["Self"], false);
    }

    #[test]
    fn node_update_changes_labels_availability_and_role() {
        let mut spec = json!({"Role": "worker", "Availability": "active", "Labels": {"old": "1"}});
        let args = UpdateArgs {
            label_add: vec!["zone=a".into()],
            label_rm: vec!["old".into()],
            availability: Some("drain".into()),
            role: Some("manager".into()),
            node: "n".into(),
        };
        assert!(apply_update(&mut spec, &args).unwrap());
        assert_eq!(
            spec,
            json!({"Role": "manager", "Availability": "drain", "Labels": {"zone": "a"}})
        );
        let args = UpdateArgs {
            label_rm: vec!["missing".into()],
            node: "n".into(),
            ..UpdateArgs::default()
        };
        assert!(apply_update(&mut spec, &args).is_err());
    }
}
