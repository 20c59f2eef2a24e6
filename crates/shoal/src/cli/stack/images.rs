//! `stack deploy --resolve-image` and `--with-registry-auth`, as `docker stack deploy` does
//! them: each service's image is pinned to the digest the managers answer for it
//! (`GET /distribution/NAME/json`, from the nodes' engines), its platforms become placement
//! platforms, and an image nobody can resolve is left as it is with Docker's warning. With
//! `changed`, a service whose file image did not change keeps the image (and platforms) it
//! was pinned to before, so that nothing rolls for nothing.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde_json::Value;
use shoal_compose::convert::{Stack, LABEL_IMAGE};
use shoal_types::registry::{ImageRef, RegistryAuth};
use shoal_types::swarm::{Placement, Platform, ServiceSpec};

use super::super::client::{encode, Client};
use super::labelled;

/// `--resolve-image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    Always,
    Changed,
    Never,
}

impl Resolve {
    /// Docker's values; the default is `always`.
    pub fn parse(value: Option<&str>) -> Result<Resolve> {
        Ok(match value.unwrap_or("always") {
            "always" => Resolve::Always,
            "changed" => Resolve::Changed,
            "never" => Resolve::Never,
            other => bail!("Invalid option {other} for flag --resolve-image"),
        })
    }
}

/// Docker's warning for an image it could not pin.
pub(in crate::cli) fn digest_warning(image: &str) -> String {
    format!("image {image} could not be accessed on a registry to record\nits digest. Each node will access {image} independently,\npossibly leading to different nodes running different versions of the image.\n")
}

/// `image` pinned to `digest` (`name:tag@digest`); an image already pinned stays as it is.
pub(in crate::cli) fn pinned(image: &str, digest: &str) -> String {
    match ImageRef::parse(image) {
        Ok(r) if r.digest.is_none() => {
            let tag = r.tag.as_deref().unwrap_or("latest");
            format!("{}:{tag}@{digest}", r.repository)
        }
        _ => image.to_string(),
    }
}

/// The platforms of a distribution answer, as the docker CLI turns them into placement
/// platforms (an `arm` architecture is dropped, as Docker does: nodes report `armv7l`).
pub(in crate::cli) fn platforms(answer: &Value) -> Vec<Platform> {
    answer["Platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let arch = p["architecture"].as_str().unwrap_or_default();
            Platform {
                architecture: if arch.eq_ignore_ascii_case("arm") {
                    String::new()
                } else {
                    arch.to_string()
                },
                os: p["os"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

/// `docker service create/update` without `--no-resolve-image`: pins the spec's image (JSON)
/// to the digest the managers answer, with its platforms; a warning when it cannot.
pub(in crate::cli) async fn resolve_spec_image(
    client: &Client,
    spec: &mut Value,
) -> Option<String> {
    let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .filter(|i| !i.is_empty())?
        .to_string();
    let path = format!("/distribution/{}/json", encode(&image));
    let answer = client.get(&path).await.ok();
    let digest = answer
        .as_ref()
        .and_then(|a| a["Descriptor"]["digest"].as_str())
        .filter(|d| !d.is_empty());
    let (Some(answer), Some(digest)) = (&answer, digest) else {
        return Some(digest_warning(&image));
    };
    spec["TaskTemplate"]["ContainerSpec"]["Image"] = Value::String(pinned(&image, digest));
    let platforms = platforms(answer);
    if !platforms.is_empty() {
        if !spec["TaskTemplate"]["Placement"].is_object() {
            spec["TaskTemplate"]["Placement"] = serde_json::json!({});
        }
        spec["TaskTemplate"]["Placement"]["Platforms"] =
            serde_json::to_value(platforms).unwrap_or_default();
    }
    None
}

fn image_of(spec: &ServiceSpec) -> Option<&str> {
    spec.task_template
        .container_spec
        .as_ref()
        .map(|c| c.image.as_str())
        .filter(|i| !i.is_empty())
}

fn set_image(spec: &mut ServiceSpec, image: String, platforms: Vec<Platform>) {
    if let Some(c) = spec.task_template.container_spec.as_mut() {
        c.image = image;
    }
    if !platforms.is_empty() {
        spec.task_template
            .placement
            .get_or_insert_with(Placement::default)
            .platforms = platforms;
    }
}

/// Pins the stack's images as `mode` says; returns the warnings to print.
pub async fn resolve(
    client: &Client,
    stack_name: &str,
    stack: &mut Stack,
    mode: Resolve,
    auths: &BTreeMap<String, RegistryAuth>,
) -> Result<Vec<String>> {
    if mode == Resolve::Never {
        return Ok(Vec::new());
    }
    let current: BTreeMap<String, ServiceSpec> = if mode == Resolve::Changed {
        labelled(client, "/services", stack_name)
            .await?
            .into_iter()
            .filter_map(|s| serde_json::from_value::<ServiceSpec>(s["Spec"].clone()).ok())
            .map(|s| (s.name.clone(), s))
            .collect()
    } else {
        BTreeMap::new()
    };
    let mut answers: BTreeMap<String, Option<Value>> = BTreeMap::new();
    let mut warnings = Vec::new();
    for spec in stack.services.values_mut() {
        let Some(image) = image_of(spec).map(str::to_string) else {
            continue;
        };
        if let Some(cur) = current.get(&spec.name) {
            if cur.labels.get(LABEL_IMAGE) == spec.labels.get(LABEL_IMAGE) {
                // Unchanged in the file: what the last deploy pinned stays.
                let platforms = cur
                    .task_template
                    .placement
                    .as_ref()
                    .map(|p| p.platforms.clone())
                    .unwrap_or_default();
                if let Some(old) = image_of(cur).map(str::to_string) {
                    set_image(spec, old, platforms);
                }
                continue;
            }
        }
        if !answers.contains_key(&image) {
            let path = format!("/distribution/{}/json", encode(&image));
            let answer = match auths
                .get(&spec.name)
                .filter(|a| **a != RegistryAuth::default())
            {
                Some(auth) => {
                    client
                        .get_with_header(&path, "X-Registry-Auth", &auth.to_header())
                        .await
                }
                None => client.get(&path).await,
            };
            answers.insert(image.clone(), answer.ok());
        }
        match &answers[&image] {
            Some(answer) => match answer["Descriptor"]["digest"].as_str() {
                Some(digest) if !digest.is_empty() => {
                    set_image(spec, pinned(&image, digest), platforms(answer));
                }
                _ => warnings.push(digest_warning(&image)),
            },
            None => warnings.push(digest_warning(&image)),
        }
    }
    warnings.dedup();
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn modes_are_dockers() {
        assert_eq!(Resolve::parse(None).unwrap(), Resolve::Always);
        assert_eq!(Resolve::parse(Some("changed")).unwrap(), Resolve::Changed);
        assert_eq!(Resolve::parse(Some("never")).unwrap(), Resolve::Never);
        let e = Resolve::parse(Some("sometimes")).unwrap_err().to_string();
        assert_eq!(e, "Invalid option sometimes for flag --resolve-image");
    }

    #[test]
    fn an_image_is_pinned_with_its_tag() {
        assert_eq!(pinned("busybox", D), format!("busybox:latest@{D}"));
        assert_eq!(
            pinned("diamol/postgres:11.5", D),
            format!("diamol/postgres:11.5@{D}")
        );
        assert_eq!(
            pinned("127.0.0.1:5000/x:1", D),
            format!("127.0.0.1:5000/x:1@{D}")
        );
        let already = format!("busybox:1@{D}");
        assert_eq!(pinned(&already, "sha256:other"), already);
    }

    #[test]
    fn platforms_drop_a_bare_arm_architecture() {
        let answer = json!({"Platforms": [
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm", "os": "linux"},
        ]});
        let p = platforms(&answer);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].architecture.as_str(), p[0].os.as_str()),
            ("amd64", "linux")
        );
        assert_eq!(p[1].architecture, "");
    }
}
