//! `stack deploy --dry-run` / `stack diff`: what a deploy of the files would do to the stack as
//! it is — networks, configs and secrets to create (or rotate), services to create or update
//! (with the changed fields of their spec, one JSON path a line) and services `--prune` would
//! remove. It only reads; nothing is created, updated or removed.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use serde_json::Value;
use shoal_types::swarm::ServiceSpec;

use super::super::client::Client;
use super::super::table::str_at;
use super::rotate::{rotated_name, ROTATED_FROM_LABEL};
use super::{labelled, DeployArgs};

/// What deploy would do, as lines to print, and whether anything would change.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub lines: Vec<String>,
    pub changes: usize,
}

impl Plan {
    fn change(&mut self, line: String) {
        self.changes += 1;
        self.lines.push(line);
    }

    fn note(&mut self, line: String) {
        self.lines.push(line);
    }
}

/// Reads the stack's current objects and compares them with `stack`.
pub(super) async fn plan(
    client: &Client,
    args: &DeployArgs,
    stack: &shoal_compose::convert::Stack,
) -> Result<Plan> {
    let mut plan = Plan::default();
    let all_networks = client.get("/networks").await?;
    let all_networks = all_networks.as_array().cloned().unwrap_or_default();
    let network_names: BTreeMap<String, String> = all_networks
        .iter()
        .map(|n| {
            (
                str_at(n, &["Id"]).to_string(),
                str_at(n, &["Name"]).to_string(),
            )
        })
        .collect();

    for name in &stack.external_networks {
        let found = all_networks.iter().find(|n| str_at(n, &["Name"]) == name);
        match found {
            Some(n) if str_at(n, &["Scope"]) == "swarm" => {}
            Some(_) => plan.change(format!(
                "! network {name}: declared external, but not swarm-scoped (deploy will fail)"
            )),
            None => plan.change(format!(
                "! network {name}: declared external, but not found (deploy will fail)"
            )),
        }
    }
    let existing_networks = labelled(client, "/networks", &args.name).await?;
    for network in &stack.networks {
        if !existing_networks
            .iter()
            .any(|n| str_at(n, &["Name"]) == network.name)
        {
            plan.change(format!("+ network {}", network.name));
        }
    }

    // Configs and secrets: the name each will be referenced by after the deploy.
    let mut renames = BTreeMap::new();
    let configs = labelled(client, "/configs", &args.name).await?;
    let all_configs = client.get("/configs").await?;
    for config in &stack.configs {
        let data = base64_of(&config.data);
        let rotated = rotated_name(&config.name, &config.data);
        let named = |n: &str| {
            all_configs
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| str_at(c, &["Spec", "Name"]) == n)
                .cloned()
        };
        let family = family_of(&configs, &config.name);
        if args.rotate && named(&rotated).is_some() {
            renames.insert(config.name.clone(), rotated);
            continue;
        }
        match named(&config.name) {
            None if args.rotate && !family.is_empty() => {
                plan.change(format!(
                    "~ config {}: content changed, rotate to {rotated}",
                    config.name
                ));
                renames.insert(config.name.clone(), rotated);
            }
            None => plan.change(format!("+ config {}", config.name)),
            Some(current) => {
                if str_at(&current, &["Spec", "Data"]) == data {
                    if labels_of(&current) != config.labels {
                        plan.change(format!("~ config {}: labels", config.name));
                    }
                } else if args.rotate {
                    plan.change(format!(
                        "~ config {}: content changed, rotate to {rotated}",
                        config.name
                    ));
                    renames.insert(config.name.clone(), rotated);
                } else {
                    plan.change(format!(
                        "! config {}: content changed; deploy will fail (only updates to Labels are allowed), use --rotate",
                        config.name
                    ));
                }
            }
        }
    }
    let secrets = labelled(client, "/secrets", &args.name).await?;
    let all_secrets = client.get("/secrets").await?;
    for secret in &stack.secrets {
        let data = secret.data.clone().unwrap_or_default();
        let rotated = rotated_name(&secret.name, &data);
        let exists = |n: &str| {
            all_secrets
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| str_at(s, &["Spec", "Name"]) == n)
        };
        if args.rotate && exists(&rotated) {
            renames.insert(secret.name.clone(), rotated);
        } else if exists(&secret.name) {
            plan.note(format!(
                "  secret {}: exists (the API never returns secret data, so a content change shows only at deploy)",
                secret.name
            ));
        } else if args.rotate && !family_of(&secrets, &secret.name).is_empty() {
            plan.change(format!(
                "~ secret {}: content changed, rotate to {rotated}",
                secret.name
            ));
            renames.insert(secret.name.clone(), rotated);
        } else {
            plan.change(format!("+ secret {}", secret.name));
        }
    }

    let existing = labelled(client, "/services", &args.name).await?;
    let mut wanted = BTreeSet::new();
    for (short, spec) in &stack.services {
        let name = format!("{}_{short}", args.name);
        wanted.insert(name.clone());
        let mut spec = spec.clone();
        super::rotate::rename_references(&mut spec, &renames);
        if let Some(c) = &mut spec.task_template.container_spec {
            c.image = shoal_compose::convert::tagged_image(&c.image);
        }
        let Some(current) = existing
            .iter()
            .find(|s| str_at(s, &["Spec", "Name"]) == name)
        else {
            let image = spec
                .task_template
                .container_spec
                .as_ref()
                .map(|c| c.image.clone())
                .unwrap_or_default();
            plan.change(format!("+ service {name} ({image})"));
            continue;
        };
        let current_spec = current.get("Spec").cloned().unwrap_or(Value::Null);
        spec.task_template.force_update = current
            .pointer("/Spec/TaskTemplate/ForceUpdate")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let old = comparable(current_spec, &network_names)?;
        let new = comparable(serde_json::to_value(&spec)?, &network_names)?;
        let mut diff = Vec::new();
        json_diff("", &old, &new, &mut diff);
        if !diff.is_empty() {
            plan.change(format!("~ service {name}"));
            for line in diff {
                plan.note(format!("    {line}"));
            }
        }
    }
    for service in &existing {
        let name = str_at(service, &["Spec", "Name"]);
        if wanted.contains(name) {
            continue;
        }
        if args.prune {
            plan.change(format!("- service {name} (--prune)"));
        } else {
            plan.note(format!(
                "  service {name}: no longer in the files (--prune would remove it)"
            ));
        }
    }
    Ok(plan)
}

/// Objects of the stack that were rotated from `name`.
fn family_of(objects: &[Value], name: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|o| {
            o.pointer("/Spec/Labels")
                .and_then(|l| l.get(ROTATED_FROM_LABEL))
                .and_then(Value::as_str)
                == Some(name)
        })
        .map(|o| str_at(o, &["Spec", "Name"]).to_string())
        .collect()
}

fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/Spec/Labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default()
}

fn base64_of(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A service spec as both sides can be compared: read through the same type, with the
/// defaults the server fills (mode, runtime, Swarm's policies) filled on both, networks by
/// name, and config and secret references by name only (their IDs are the server's).
fn comparable(spec: Value, network_names: &BTreeMap<String, String>) -> Result<Value> {
    let mut spec: ServiceSpec = serde_json::from_value(spec)?;
    if spec.task_template.runtime.is_empty() {
        spec.task_template.runtime = "container".into();
    }
    let m = &mut spec.mode;
    if m.replicated.is_none()
        && m.global.is_none()
        && m.replicated_job.is_none()
        && m.global_job.is_none()
    {
        m.replicated = Some(Default::default());
    }
    if let Some(r) = &mut m.replicated {
        r.replicas.get_or_insert(1);
    }
    if let Some(j) = &mut m.replicated_job {
        if j.total_completions.is_none() {
            j.total_completions = j.max_concurrent.or(Some(1));
        }
        j.max_concurrent.get_or_insert(1);
    }
    let spec = spec.with_defaults();
    let mut value = serde_json::to_value(&spec)?;
    for pointer in ["/TaskTemplate/Networks", "/Networks"] {
        if let Some(Value::Array(nets)) = value.pointer_mut(pointer) {
            for net in nets {
                if let Some(target) = net.get("Target").and_then(Value::as_str) {
                    if let Some(name) = network_names.get(target) {
                        net["Target"] = Value::String(name.clone());
                    }
                }
            }
        }
    }
    for (list, id) in [("Configs", "ConfigID"), ("Secrets", "SecretID")] {
        if let Some(Value::Array(refs)) =
            value.pointer_mut(&format!("/TaskTemplate/ContainerSpec/{list}"))
        {
            for r in refs {
                if let Some(obj) = r.as_object_mut() {
                    obj.remove(id);
                }
            }
        }
    }
    Ok(value)
}

pub(super) use shoal_store::stacks::json_diff;

/// Prints the plan; the number of changes is the caller's to turn into an exit code.
pub(super) fn print(stack: &str, plan: &Plan) {
    for line in &plan.lines {
        outln!("{line}");
    }
    if plan.changes == 0 {
        outln!("Stack {stack}: no changes");
    } else {
        outln!(
            "Stack {stack}: {} change{}",
            plan.changes,
            if plan.changes == 1 { "" } else { "s" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn diff(a: Value, b: Value) -> Vec<String> {
        let mut out = Vec::new();
        json_diff("", &a, &b, &mut out);
        out
    }

    #[test]
    fn a_diff_names_each_changed_path_once() {
        let a = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["X=0", "A=1"], "Image": "i"}},
                       "Mode": {"Replicated": {"Replicas": 2}}, "Labels": {"old": "1"}});
        let b = json!({"TaskTemplate": {"ContainerSpec": {"Env": ["X=0", "A=2", "B=3"], "Image": "i"}},
                       "Mode": {"Replicated": {"Replicas": 3}}, "Labels": {}});
        assert_eq!(
            diff(a, b),
            vec![
                "- Labels: {\"old\":\"1\"}",
                "~ Mode.Replicated.Replicas: 2 -> 3",
                "~ TaskTemplate.ContainerSpec.Env[1]: \"A=1\" -> \"A=2\"",
                "+ TaskTemplate.ContainerSpec.Env[2]: \"B=3\"",
            ]
        );
    }

    #[test]
    fn unset_and_absent_are_the_same() {
        assert!(diff(json!({"A": null, "B": [], "C": {}}), json!({"D": ""})).is_empty());
        assert!(diff(json!({"A": {"B": 1}}), json!({"A": {"B": 1}})).is_empty());
    }

    #[test]
    fn the_server_defaults_are_no_change() {
        let sent = json!({"Name": "s_web", "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}});
        let stored = json!({"Name": "s_web", "Mode": {"Replicated": {"Replicas": 1}},
                            "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}, "Runtime": "container"}});
        let names = BTreeMap::new();
        let a = comparable(stored, &names).unwrap();
        let b = comparable(sent, &names).unwrap();
        assert!(diff(a, b).is_empty());
    }
}
