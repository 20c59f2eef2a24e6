//! `service update`: the flags applied onto the current spec, changing only what they name, as
//! docker's `updateService` does ([`apply_update`], pure), then sent with the version read.
//! `--rollback` asks the managers for the previous spec instead.

use anyhow::{bail, Result};
use serde_json::{json, Map, Value};

use super::flags::{
    ContainerFlags, ResourceFlags, RestartFlags, RollbackConfigFlags, UpdateConfigFlags,
};
use super::resolve::{parse_refs, resolve_network, resolve_networks, resolve_references};
use super::spec::{
    apply_container_flags, apply_resources, parse_mount, restart_policy, rollback_config,
    update_config,
};
use super::{non_empty, print_warnings};
use crate::cli::client::{encode, Client, Query};
use crate::cli::opts::{self, Kind};
use crate::cli::stack::{images, wait};
use crate::cli::table::str_at;
use crate::cli::{object_at, version_index};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// Service image tag
    #[arg(long)]
    pub image: Option<String>,
    /// Number of tasks
    #[arg(long, value_name = "uint")]
    pub replicas: Option<u64>,
    /// Service command args
    #[arg(long)]
    pub args: Option<String>,
    /// Add or update an environment variable
    #[arg(long = "env-add", value_name = "K=V")]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long = "env-rm", value_name = "K")]
    pub env_rm: Vec<String>,
    /// Add or update a service label
    #[arg(long = "label-add", value_name = "K=V")]
    pub label_add: Vec<String>,
    /// Remove a label by its key
    #[arg(long = "label-rm", value_name = "K")]
    pub label_rm: Vec<String>,
    /// Add or update a container label
    #[arg(long = "container-label-add", value_name = "K=V")]
    pub container_label_add: Vec<String>,
    /// Remove a container label by its key
    #[arg(long = "container-label-rm", value_name = "K")]
    pub container_label_rm: Vec<String>,
    /// Add or update a published port
    #[arg(long = "publish-add", value_name = "port")]
    pub publish_add: Vec<String>,
    /// Remove a published port by its target port
    #[arg(long = "publish-rm", value_name = "port")]
    pub publish_rm: Vec<String>,
    /// Add or update a placement constraint
    #[arg(long = "constraint-add")]
    pub constraint_add: Vec<String>,
    /// Remove a constraint
    #[arg(long = "constraint-rm")]
    pub constraint_rm: Vec<String>,
    /// Add a network
    #[arg(long = "network-add")]
    pub network_add: Vec<String>,
    /// Remove a network
    #[arg(long = "network-rm")]
    pub network_rm: Vec<String>,
    /// Add or update a secret on a service
    #[arg(long = "secret-add")]
    pub secret_add: Vec<String>,
    /// Remove a secret
    #[arg(long = "secret-rm")]
    pub secret_rm: Vec<String>,
    /// Add or update a config file on a service
    #[arg(long = "config-add")]
    pub config_add: Vec<String>,
    /// Remove a configuration file
    #[arg(long = "config-rm")]
    pub config_rm: Vec<String>,
    /// Add or update a mount on a service
    #[arg(long = "mount-add")]
    pub mount_add: Vec<String>,
    /// Remove a mount by its target path
    #[arg(long = "mount-rm")]
    pub mount_rm: Vec<String>,
    /// Force update even if no changes require it
    #[arg(long)]
    pub force: bool,
    /// Rollback to previous specification
    #[arg(long)]
    pub rollback: bool,
    #[command(flatten)]
    pub container: ContainerFlags,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub restart: RestartFlags,
    #[command(flatten)]
    pub update: UpdateConfigFlags,
    #[command(flatten)]
    pub rollback_config: RollbackConfigFlags,
    /// Service to update
    pub service: String,
}

/// What `update` resolved on the client before changing the spec.
#[derive(Debug, Default)]
pub struct UpdateResolved {
    pub network_add: Vec<String>,
    pub network_rm: Vec<String>,
    pub secret_add: Vec<Value>,
    pub config_add: Vec<Value>,
}

pub(super) async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let service = client
        .get(&format!("/services/{}", encode(&args.service)))
        .await?;
    let id = str_at(&service, &["ID"]).to_string();
    let version = version_index(&service);
    let current = service.get("Spec").cloned().unwrap_or_else(|| json!({}));

    let resolved = UpdateResolved {
        network_add: resolve_networks(client, &args.network_add).await?,
        network_rm: {
            // A network that no longer exists can still be detached by the name typed.
            let mut ids = Vec::new();
            for name in &args.network_rm {
                ids.push(
                    resolve_network(client, name)
                        .await
                        .unwrap_or_else(|_| name.clone()),
                );
            }
            ids
        },
        secret_add: resolve_references(client, Kind::Secret, &parse_refs(&args.secret_add)?)
            .await?,
        config_add: resolve_references(client, Kind::Config, &parse_refs(&args.config_add)?)
            .await?,
    };
    let mut spec = current.clone();
    apply_update(&mut spec, &args, &resolved)?;
    // As docker: a new image is pinned unless --no-resolve-image.
    let warning = if args.image.is_some() && !args.container.no_resolve_image {
        images::resolve_spec_image(client, &mut spec).await
    } else {
        None
    };

    let mut query = Query::new().push("version", version.to_string());
    if args.rollback {
        anyhow::ensure!(
            spec == current,
            "other flags may not be combined with --rollback"
        );
        query = query.push("rollback", "previous");
    }
    let response = client
        .post(
            &query.to_path(&format!("/services/{}/update", encode(&id))),
            &spec,
        )
        .await?;
    if let Some(w) = warning {
        eprint!("{w}");
    }
    print_warnings(&response);
    outln!("{}", args.service);
    if !args.container.detach {
        wait::wait_for_services(client, &[id], args.container.quiet).await?;
    }
    Ok(())
}

/// Applies `service update` flags onto a ServiceSpec, as docker's `updateService` does.
pub fn apply_update(spec: &mut Value, args: &UpdateArgs, resolved: &UpdateResolved) -> Result<()> {
    // Service labels.
    if !args.label_add.is_empty() || !args.label_rm.is_empty() {
        let labels = object_at(spec, &["Labels"]);
        for key in &args.label_rm {
            labels.remove(key);
        }
        for (k, v) in opts::kv_map(&args.label_add) {
            labels.insert(k, json!(v));
        }
    }

    // Replicas.
    if let Some(replicas) = args.replicas {
        let mode = object_at(spec, &["Mode"]);
        if let Some(replicated) = mode.get_mut("Replicated") {
            *object_at(replicated, &[])
                .entry("Replicas")
                .or_insert(json!(0)) = json!(replicas);
        } else if let Some(job) = mode.get_mut("ReplicatedJob") {
            *object_at(job, &[])
                .entry("TotalCompletions")
                .or_insert(json!(0)) = json!(replicas);
        } else {
            bail!("replicas can only be used with replicated or replicated-job mode");
        }
    }

    // Container spec.
    if !spec
        .pointer("/TaskTemplate/ContainerSpec")
        .is_some_and(Value::is_object)
    {
        object_at(spec, &["TaskTemplate", "ContainerSpec"]);
    }
    let container = spec
        .pointer_mut("/TaskTemplate/ContainerSpec")
        .expect("ensured above");
    update_container(container, args, resolved)?;

    // Task template: placement, resources, restart policy, networks, force.
    update_task_template(object_at(spec, &["TaskTemplate"]), args, resolved)?;

    // Update and rollback configs.
    let obj = object_at(spec, &[]);
    if let Some(config) = update_config(obj.get("UpdateConfig"), &args.update)? {
        obj.insert("UpdateConfig".into(), config);
    }
    if let Some(config) = rollback_config(obj.get("RollbackConfig"), &args.rollback_config)? {
        obj.insert("RollbackConfig".into(), config);
    }

    // Endpoint: mode and published ports.
    update_endpoint(spec, args)
}

/// The container part of `service update`: image, args, env, container labels, mounts,
/// secrets, configs and the flags `create` shares.
fn update_container(
    container: &mut Value,
    args: &UpdateArgs,
    resolved: &UpdateResolved,
) -> Result<()> {
    if let Some(image) = &args.image {
        container["Image"] = json!(opts::image_with_tag(image));
    }
    if let Some(a) = &args.args {
        let words: Vec<&str> = a.split_whitespace().collect();
        let c = object_at(container, &[]);
        if words.is_empty() {
            c.remove("Args");
        } else {
            c.insert("Args".into(), json!(words));
        }
    }
    update_env(container, &args.env_add, &args.env_rm);
    if !args.container_label_add.is_empty() || !args.container_label_rm.is_empty() {
        let c = object_at(container, &[]);
        let mut labels = c.get("Labels").cloned().unwrap_or_else(|| json!({}));
        let l = object_at(&mut labels, &[]);
        for key in &args.container_label_rm {
            l.remove(key);
        }
        for (k, v) in opts::kv_map(&args.container_label_add) {
            l.insert(k, json!(v));
        }
        if l.is_empty() {
            c.remove("Labels");
        } else {
            c.insert("Labels".into(), labels);
        }
    }
    update_list(
        container,
        "Mounts",
        |m| args.mount_rm.iter().any(|t| str_at(m, &["Target"]) == t),
        args.mount_add
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>>>()?,
        |a, b| str_at(a, &["Target"]) == str_at(b, &["Target"]),
    );
    update_list(
        container,
        "Secrets",
        |s| {
            args.secret_rm
                .iter()
                .any(|r| str_at(s, &["SecretName"]) == r || str_at(s, &["SecretID"]) == r)
        },
        resolved.secret_add.clone(),
        |a, b| str_at(a, &["File", "Name"]) == str_at(b, &["File", "Name"]),
    );
    update_list(
        container,
        "Configs",
        |s| {
            args.config_rm
                .iter()
                .any(|r| str_at(s, &["ConfigName"]) == r || str_at(s, &["ConfigID"]) == r)
        },
        resolved.config_add.clone(),
        |a, b| str_at(a, &["File", "Name"]) == str_at(b, &["File", "Name"]),
    );
    apply_container_flags(container, &args.container)
}

/// The task template part of `service update`: placement, resources, restart policy,
/// networks, forced update.
fn update_task_template(
    task: &mut Map<String, Value>,
    args: &UpdateArgs,
    resolved: &UpdateResolved,
) -> Result<()> {
    if !args.constraint_add.is_empty() || !args.constraint_rm.is_empty() {
        let mut placement = task.get("Placement").cloned().unwrap_or_else(|| json!({}));
        let p = object_at(&mut placement, &[]);
        let mut constraints: Vec<String> = p
            .get("Constraints")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        constraints.extend(args.constraint_add.iter().cloned());
        constraints.retain(|c| !args.constraint_rm.contains(c));
        constraints.sort();
        constraints.dedup();
        if constraints.is_empty() {
            p.remove("Constraints");
        } else {
            p.insert("Constraints".into(), json!(constraints));
        }
        task.insert("Placement".into(), placement);
    }
    if let Some(max) = args.container.replicas_max_per_node {
        let p = object_at(task.entry("Placement").or_insert_with(|| json!({})), &[]);
        if max == 0 {
            p.remove("MaxReplicas");
        } else {
            p.insert("MaxReplicas".into(), json!(max));
        }
    }
    let mut resources = task.get("Resources").cloned().unwrap_or_else(|| json!({}));
    apply_resources(&mut resources, &args.resources)?;
    if resources != json!({}) {
        task.insert("Resources".into(), resources);
    }
    if let Some(policy) = restart_policy(task.get("RestartPolicy"), &args.restart)? {
        task.insert("RestartPolicy".into(), policy);
    }
    if !resolved.network_add.is_empty() || !resolved.network_rm.is_empty() {
        let mut networks: Vec<Value> = task
            .get("Networks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        networks.retain(|n| {
            !resolved
                .network_rm
                .iter()
                .any(|r| str_at(n, &["Target"]) == r)
        });
        for id in &resolved.network_add {
            if !networks.iter().any(|n| str_at(n, &["Target"]) == id) {
                networks.push(json!({"Target": id}));
            }
        }
        networks.sort_by(|a, b| str_at(a, &["Target"]).cmp(str_at(b, &["Target"])));
        if networks.is_empty() {
            task.remove("Networks");
        } else {
            task.insert("Networks".into(), json!(networks));
        }
    }
    if args.force {
        let force = task.get("ForceUpdate").and_then(Value::as_u64).unwrap_or(0);
        task.insert("ForceUpdate".into(), json!(force + 1));
    }
    Ok(())
}

/// The endpoint part of `service update`: mode and published ports.
fn update_endpoint(spec: &mut Value, args: &UpdateArgs) -> Result<()> {
    if args.container.endpoint_mode.is_some()
        || !args.publish_add.is_empty()
        || !args.publish_rm.is_empty()
    {
        let endpoint = object_at(spec, &["EndpointSpec"]);
        if let Some(mode) = &args.container.endpoint_mode {
            endpoint.insert("Mode".into(), json!(mode));
        }
        let mut ports: Vec<Value> = endpoint
            .get("Ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut remove = Vec::new();
        for p in &args.publish_rm {
            remove.extend(opts::parse_publish(p)?);
        }
        ports.retain(|port| !remove.iter().any(|r| same_target(port, r)));
        for p in &args.publish_add {
            for port in opts::parse_publish(p)? {
                if !ports
                    .iter()
                    .any(|existing| port_key(existing) == port_key(&port))
                {
                    ports.push(port);
                }
            }
        }
        ports.sort_by_key(port_key);
        if ports.is_empty() {
            endpoint.remove("Ports");
        } else {
            endpoint.insert("Ports".into(), json!(ports));
        }
    }
    Ok(())
}

fn update_env(container: &mut Value, add: &[String], remove: &[String]) {
    if add.is_empty() && remove.is_empty() {
        return;
    }
    let c = object_at(container, &[]);
    let mut env: Vec<String> = c
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    env.retain(|e| !remove.iter().any(|r| opts::env_key(e) == opts::env_key(r)));
    for entry in opts::env_list(add) {
        match env
            .iter_mut()
            .find(|e| opts::env_key(e) == opts::env_key(&entry))
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    if env.is_empty() {
        c.remove("Env");
    } else {
        c.insert("Env".into(), json!(env));
    }
}

/// Removes the entries of the array `key` that `remove` picks, then adds `add`, replacing an
/// entry that `same` says is the same one.
fn update_list(
    container: &mut Value,
    key: &str,
    remove: impl Fn(&Value) -> bool,
    add: Vec<Value>,
    same: impl Fn(&Value, &Value) -> bool,
) {
    let c = object_at(container, &[]);
    let mut items: Vec<Value> = c
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let before = items.clone();
    items.retain(|item| !remove(item));
    for new in add {
        items.retain(|item| !same(item, &new));
        items.push(new);
    }
    if items == before {
        return;
    }
    if items.is_empty() {
        c.remove(key);
    } else {
        c.insert(key.into(), json!(items));
    }
}

/// Docker's `portConfigToString`: `published:target/protocol/mode`.
fn port_key(port: &Value) -> String {
    format!(
        "{}:{}/{}/{}",
        port.get("PublishedPort")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        port.get("TargetPort").and_then(Value::as_u64).unwrap_or(0),
        non_empty(str_at(port, &["Protocol"]), "tcp"),
        non_empty(str_at(port, &["PublishMode"]), "ingress"),
    )
}

fn same_target(port: &Value, removal: &Value) -> bool {
    port.get("TargetPort") == removal.get("TargetPort")
        && non_empty(str_at(port, &["Protocol"]), "tcp")
            == non_empty(str_at(removal, &["Protocol"]), "tcp")
        && non_empty(str_at(port, &["PublishMode"]), "ingress")
            == non_empty(str_at(removal, &["PublishMode"]), "ingress")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::service::create::{build_spec, tests::create_args, Resolved};
    use clap::Parser;

    #[derive(Parser)]
    struct UpdateCli {
        #[command(flatten)]
        args: UpdateArgs,
    }

    #[test]
    fn update_changes_only_what_the_flags_name() {
        let created = build_spec(
            &create_args(&[
                "--name", "web", "-e", "A=1", "-e", "B=2", "-p", "8080:80", "--label", "x=y",
                "nginx",
            ]),
            &Resolved::default(),
        )
        .unwrap();
        let mut spec = created.clone();
        let args = UpdateCli::try_parse_from([
            "update",
            "--image",
            "nginx:1.26",
            "--replicas",
            "5",
            "--env-add",
            "A=9",
            "--env-rm",
            "B",
            "--label-add",
            "z=w",
            "--label-rm",
            "x",
            "--publish-add",
            "9090:90",
            "--publish-rm",
            "80",
            "--constraint-add",
            "node.role==manager",
            "--force",
            "--update-parallelism",
            "3",
            "web",
        ])
        .unwrap()
        .args;
        apply_update(&mut spec, &args, &UpdateResolved::default()).unwrap();
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Image"], "nginx:1.26");
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Env"], json!(["A=9"]));
        assert_eq!(spec["Mode"], json!({"Replicated": {"Replicas": 5}}));
        assert_eq!(spec["Labels"], json!({"z": "w"}));
        assert_eq!(
            spec["EndpointSpec"]["Ports"],
            json!([{"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}])
        );
        assert_eq!(
            spec["TaskTemplate"]["Placement"]["Constraints"],
            json!(["node.role==manager"])
        );
        assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 1);
        assert_eq!(spec["UpdateConfig"]["Parallelism"], 3);
        assert_eq!(spec["UpdateConfig"]["Order"], "stop-first");
        assert_eq!(
            spec["TaskTemplate"]["Resources"],
            created["TaskTemplate"]["Resources"]
        );

        let mut untouched = created.clone();
        let args = UpdateCli::try_parse_from(["update", "--rollback", "web"])
            .unwrap()
            .args;
        apply_update(&mut untouched, &args, &UpdateResolved::default()).unwrap();
        assert_eq!(untouched, created);
    }

    #[test]
    fn update_replaces_a_secret_by_its_target_and_moves_networks_by_id() {
        let mut spec = json!({
            "Mode": {"Replicated": {"Replicas": 1}},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "nginx:latest",
                    "Secrets": [{"File": {"Name": "pw"}, "SecretID": "s1", "SecretName": "pw_v1"}]
                },
                "Networks": [{"Target": "n2"}, {"Target": "n1"}]
            }
        });
        let args = UpdateCli::try_parse_from(["update", "--secret-add", "pw_v2", "web"])
            .unwrap()
            .args;
        let resolved = UpdateResolved {
            network_add: vec!["n0".into(), "n2".into()],
            network_rm: vec!["n1".into()],
            secret_add: vec![
                json!({"File": {"Name": "pw"}, "SecretID": "s2", "SecretName": "pw_v2"}),
            ],
            config_add: Vec::new(),
        };
        apply_update(&mut spec, &args, &resolved).unwrap();
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Secrets"],
            json!([{"File": {"Name": "pw"}, "SecretID": "s2", "SecretName": "pw_v2"}])
        );
        assert_eq!(
            spec["TaskTemplate"]["Networks"],
            json!([{"Target": "n0"}, {"Target": "n2"}])
        );
    }

    #[test]
    fn replicas_of_a_global_service_are_refused() {
        let mut spec = json!({"Mode": {"Global": {}}});
        let args = UpdateCli::try_parse_from(["update", "--replicas", "2", "web"])
            .unwrap()
            .args;
        let err = apply_update(&mut spec, &args, &UpdateResolved::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "replicas can only be used with replicated or replicated-job mode"
        );
    }
}
