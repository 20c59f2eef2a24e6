//! The client of shoal's stack API (`/shoal/v1/stacks`): a stack goes to the managers whole,
//! as one request, and they deploy all of it or none of it. This module builds that request
//! from the converted Compose files (with each object's `file:line:col`), and prints what
//! the managers answer: what changed, a stack's history, a dry run.

use anyhow::Result;
use serde_json::Value;
use shoal_types::stack::{
    ExternalObject, ObjectKind, SourceFile, StackChange, StackDeployResponse, StackInfo, StackItem,
    StackSource, StackSpec, StackSummary,
};

use super::super::client::{encode, Client};
use super::super::table::Listing;

/// The whole stack, as the managers take it.
pub fn stack_spec(
    name: &str,
    stack: &shoal_compose::Stack,
    project: &shoal_compose::Project,
) -> StackSpec {
    let services = stack
        .services
        .iter()
        .map(|(short, spec)| {
            let mut spec = spec.clone();
            let full = format!("{name}_{short}");
            spec.name = full.clone();
            // The docker client sends the image with its tag made explicit.
            if let Some(c) = &mut spec.task_template.container_spec {
                c.image = shoal_compose::convert::tagged_image(&c.image);
            }
            StackItem {
                pos: stack.position("service", &full),
                spec,
            }
        })
        .collect();
    let mut external = Vec::new();
    for (kind, names) in [
        (ObjectKind::Network, &stack.external_networks),
        (ObjectKind::Config, &stack.external_configs),
        (ObjectKind::Secret, &stack.external_secrets),
    ] {
        for n in names {
            external.push(ExternalObject {
                kind,
                name: n.clone(),
                pos: stack.position(kind.as_str(), n),
            });
        }
    }
    StackSpec {
        name: name.to_string(),
        registry_auth: Default::default(),
        source: StackSource {
            files: project
                .sources
                .iter()
                .map(|s| SourceFile {
                    name: s.name.clone(),
                    text: s.text.clone(),
                })
                .collect(),
            env: project.used_env.clone(),
        },
        networks: stack
            .networks
            .iter()
            .map(|n| StackItem {
                pos: stack.position("network", &n.name),
                spec: n.request.clone(),
            })
            .collect(),
        configs: stack
            .configs
            .iter()
            .map(|c| StackItem {
                pos: stack.position("config", &c.name),
                spec: c.clone(),
            })
            .collect(),
        secrets: stack
            .secrets
            .iter()
            .map(|s| StackItem {
                pos: stack.position("secret", &s.name),
                spec: s.clone(),
            })
            .collect(),
        services,
        external,
    }
}

fn answer<T: serde::de::DeserializeOwned>(v: Value) -> Result<T> {
    Ok(serde_json::from_value(v)?)
}

/// Sends the stack; with `dry_run` the managers only say what would change.
pub async fn deploy(
    client: &Client,
    spec: &StackSpec,
    dry_run: bool,
) -> Result<StackDeployResponse> {
    let path = format!(
        "/shoal/v1/stacks/{}/deploy{}",
        encode(&spec.name),
        if dry_run { "?dry-run=1" } else { "" }
    );
    answer(client.post(&path, &serde_json::to_value(spec)?).await?)
}

pub async fn rollback(
    client: &Client,
    name: &str,
    to: Option<u64>,
    dry_run: bool,
) -> Result<StackDeployResponse> {
    let mut query = Vec::new();
    if let Some(v) = to {
        query.push(format!("version={v}"));
    }
    if dry_run {
        query.push("dry-run=1".to_string());
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    answer(
        client
            .post_empty(&format!(
                "/shoal/v1/stacks/{}/rollback{query}",
                encode(name)
            ))
            .await?,
    )
}

pub async fn list(client: &Client) -> Result<Vec<StackSummary>> {
    answer(client.get("/shoal/v1/stacks").await?)
}

pub async fn history(client: &Client, name: &str) -> Result<StackInfo> {
    answer(
        client
            .get(&format!("/shoal/v1/stacks/{}", encode(name)))
            .await?,
    )
}

pub async fn remove(client: &Client, name: &str) -> Result<Vec<StackChange>> {
    answer(
        client
            .delete_json(&format!("/shoal/v1/stacks/{}", encode(name)))
            .await?,
    )
}

/// One line per object a deploy changed, as docker's `stack deploy` words them.
pub fn change_lines(changes: &[StackChange]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| {
            let verb = match c.action.as_str() {
                "create" => "Creating",
                "update" => "Updating",
                "remove" => "Removing",
                "rotate" => {
                    return Some(format!(
                        "Rotating {} {} -> {}",
                        c.kind, c.rotated_from, c.name
                    ))
                }
                _ => return None,
            };
            Some(format!("{verb} {} {}", c.kind, c.name))
        })
        .collect()
}

/// The plan of a dry run: `+` create, `~` update (with the spec paths that change), `-`
/// remove; the number of changes is returned for `--exit-code`.
pub fn plan_lines(stack: &str, answer: &StackDeployResponse) -> (Vec<String>, usize) {
    let mut lines = Vec::new();
    let mut changes = 0;
    for c in &answer.changes {
        let mark = match c.action.as_str() {
            "create" => "+",
            "update" => "~",
            "remove" => "-",
            "rotate" => {
                changes += 1;
                lines.push(format!(
                    "~ {} {}: content changed, rotate to {}",
                    c.kind, c.rotated_from, c.name
                ));
                continue;
            }
            _ => continue,
        };
        changes += 1;
        lines.push(format!("{mark} {} {}", c.kind, c.name));
        for p in &c.paths {
            lines.push(format!("    {p}"));
        }
    }
    let against = if answer.version == 0 {
        "nothing stored yet".to_string()
    } else {
        format!("version {}", answer.version)
    };
    lines.push(if changes == 0 {
        format!("Stack {stack}: no changes (against {against})")
    } else {
        format!(
            "Stack {stack}: {changes} change{} (against {against})",
            if changes == 1 { "" } else { "s" }
        )
    });
    (lines, changes)
}

/// `stack history`: one line per stored version, the current one last.
pub fn history_listing(info: &StackInfo) -> Listing {
    let mut listing = Listing::new(&["VERSION", "CREATED", "CHANGE", "SERVICES", "FILES"]);
    for v in &info.versions {
        listing.push(
            vec![
                if v.version == info.version {
                    format!("{} (current)", v.version)
                } else {
                    v.version.to_string()
                },
                v.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                v.note.clone(),
                v.services.len().to_string(),
                v.files.join(", "),
            ],
            serde_json::to_value(v).unwrap_or_default(),
        );
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_marks_each_change_and_counts_them() {
        let answer = StackDeployResponse {
            version: 3,
            changes: vec![
                StackChange {
                    action: "unchanged".into(),
                    kind: ObjectKind::Network,
                    name: "s_net".into(),
                    ..Default::default()
                },
                StackChange {
                    action: "update".into(),
                    kind: ObjectKind::Service,
                    name: "s_web".into(),
                    paths: vec![r#"~ TaskTemplate.ContainerSpec.Image: "a" -> "b""#.into()],
                    ..Default::default()
                },
                StackChange {
                    action: "rotate".into(),
                    kind: ObjectKind::Config,
                    name: "s_app-1234abcd".into(),
                    rotated_from: "s_app".into(),
                    ..Default::default()
                },
                StackChange {
                    action: "remove".into(),
                    kind: ObjectKind::Service,
                    name: "s_old".into(),
                    ..Default::default()
                },
            ],
        };
        let (lines, n) = plan_lines("s", &answer);
        assert_eq!(n, 3);
        assert_eq!(
            lines,
            vec![
                "~ service s_web",
                r#"    ~ TaskTemplate.ContainerSpec.Image: "a" -> "b""#,
                "~ config s_app: content changed, rotate to s_app-1234abcd",
                "- service s_old",
                "Stack s: 3 changes (against version 3)",
            ]
        );
        assert_eq!(
            change_lines(&answer.changes),
            vec![
                "Updating service s_web",
                "Rotating config s_app -> s_app-1234abcd",
                "Removing service s_old"
            ]
        );
    }
}
