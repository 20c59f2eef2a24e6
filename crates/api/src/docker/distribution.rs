//! `GET /distribution/{name}/json`, which the docker CLI asks before `service create` and
//! `service update --image` to pin the image to a digest. No registry is asked: the answer
//! comes from the engines of the up nodes, each inspecting the image it has under that name.
//!
//! - The nodes that have the image agree when their images have the same ID. The pin is then
//!   a `RepoDigests` digest of that repository every one of them has (a pulled image: every
//!   engine resolves `name@digest` itself), else the image ID (a locally built image; the
//!   agent runs such a pin by ID, see `shoal_agent`'s controller).
//! - Nodes whose images differ: an error naming them (the CLI then warns, as it should: the
//!   nodes would run different images). No node has it: not found, as Docker answers for a
//!   manifest no registry has. Nodes that do not answer are left out.
//! - `name@sha256:D` that no engine resolves (a pin of an image ID) is looked up by ID, and
//!   counts only on a node whose image of that ID is tagged with that repository.

use super::node_engine::ask;
use super::volumes::ask_all;
use super::*;
use shoal_types::engine_call::EngineCall;
use shoal_types::registry::ImageRef;

/// The media type of an image's config, which its ID is the digest of.
const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";

pub(super) async fn distribution(State(d): S, Path(path): Path<String>) -> HttpResult<Json<Value>> {
    let Some(image) = path.strip_suffix("/json") else {
        return Err(HttpError::not_found("page not found"));
    };
    let reference = ImageRef::parse(image).map_err(|e| HttpError::bad_request(e.to_string()))?;
    let m = d.manager()?;
    let nodes: Vec<_> = m.engine_nodes().into_iter().filter(|n| !n.down).collect();
    let call = EngineCall::ImageInspect {
        name: image.to_string(),
    };
    let answers = ask_all(&d, &m, &nodes, &call).await;
    let mut found = Vec::new();
    let mut failed = Vec::new();
    let mut missing = Vec::new();
    for (node, a) in nodes.iter().zip(answers) {
        match a {
            Ok(v) => found.push((node.name.clone(), v)),
            Err(e) if e.0 == StatusCode::NOT_FOUND => missing.push(node.clone()),
            Err(e) => failed.push(format!("{}: {}", node.name, e.1)),
        }
    }
    // A pin of an image ID: the engines do not resolve it by name, but by ID.
    if let Some(digest) = reference.digest.as_ref().filter(|_| found.is_empty()) {
        let by_id = EngineCall::ImageInspect {
            name: digest.clone(),
        };
        for node in &missing {
            if let Ok(v) = ask(&d, &m, node, &by_id).await {
                if tagged_with(&reference, &v) {
                    found.push((node.name.clone(), v));
                }
            }
        }
    }
    resolve(&reference, image, &found, &failed).map(Json)
}

/// Whether one of the image's names is of the reference's repository.
fn tagged_with(reference: &ImageRef, inspect: &Value) -> bool {
    ["RepoTags", "RepoDigests"].iter().any(|key| {
        inspect[key].as_array().is_some_and(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .any(|e| reference.is_repository_of(e))
        })
    })
}

/// The image's ID, and the digests of its `RepoDigests` entries for the reference's
/// repository (sorted).
fn identity<'a>(reference: &ImageRef, inspect: &'a Value) -> Option<(&'a str, Vec<&'a str>)> {
    let id = inspect["Id"]
        .as_str()
        .filter(|id| id.starts_with("sha256:"))?;
    let mut of_repo: Vec<&str> = inspect["RepoDigests"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|e| reference.is_repository_of(e))
        .filter_map(|e| e.split_once('@').map(|(_, d)| d))
        .collect();
    of_repo.sort_unstable();
    Some((id, of_repo))
}

/// The nodes that have one image (by ID), with its repository digests on each.
struct Holders<'a> {
    id: &'a str,
    nodes: Vec<&'a str>,
    digests: Vec<Vec<&'a str>>,
    inspect: &'a Value,
}

/// Docker's `DistributionInspect` from what the nodes that have the image answered. The
/// nodes agree when their images have the same ID; the pin is then a repository digest
/// every one of them has (the reference's own first), which every engine resolves by name,
/// else the image ID.
fn resolve(
    reference: &ImageRef,
    image: &str,
    found: &[(String, Value)],
    failed: &[String],
) -> HttpResult<Value> {
    let mut by_id: Vec<Holders> = Vec::new();
    for (node, inspect) in found {
        let Some((id, repo_digests)) = identity(reference, inspect) else {
            continue;
        };
        match by_id.iter_mut().find(|h| h.id == id) {
            Some(h) => {
                h.nodes.push(node);
                h.digests.push(repo_digests);
            }
            None => by_id.push(Holders {
                id,
                nodes: vec![node],
                digests: vec![repo_digests],
                inspect,
            }),
        }
    }
    match by_id.as_slice() {
        [] => {
            let mut msg = format!(
                "manifest for {image} not found: no node of the swarm has this image (shoal \
                 resolves images on the nodes' engines, not on a registry)"
            );
            if !failed.is_empty() {
                msg.push_str(&format!(
                    "; nodes that did not answer: {}",
                    failed.join("; ")
                ));
            }
            Err(HttpError::not_found(msg))
        }
        [Holders {
            id,
            digests,
            inspect,
            ..
        }] => {
            let everywhere = |d: &&str| digests.iter().all(|l| l.contains(d));
            let common = reference
                .digest
                .as_deref()
                .filter(everywhere)
                .or_else(|| digests[0].iter().copied().find(everywhere));
            // A repository digest is of a manifest or an index (the engine does not say
            // which); an ID is the digest of the image's config.
            let (digest, media_type) = match common {
                Some(d) => (d, ""),
                None => (*id, CONFIG_MEDIA_TYPE),
            };
            let mut platform = serde_json::Map::new();
            for (key, field) in [
                ("architecture", "Architecture"),
                ("os", "Os"),
                ("variant", "Variant"),
            ] {
                if let Some(v) = inspect[field].as_str().filter(|v| !v.is_empty()) {
                    platform.insert(key.into(), Value::String(v.into()));
                }
            }
            let platforms = if platform.is_empty() {
                Vec::new()
            } else {
                vec![Value::Object(platform)]
            };
            Ok(json!({
                "Descriptor": {
                    "mediaType": media_type,
                    "digest": digest,
                    // The size of the manifest or config blob: engines do not keep it.
                    "size": 0,
                },
                "Platforms": platforms,
            }))
        }
        several => {
            let list: Vec<String> = several
                .iter()
                .map(|h| format!("{} on {}", h.id, h.nodes.join(", ")))
                .collect();
            Err(HttpError(
                StatusCode::CONFLICT,
                format!(
                    "image {image} is not the same on every node that has it: {}",
                    list.join("; ")
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn built(id: &str) -> Value {
        json!({"Id": id, "RepoTags": ["app/web:1"], "RepoDigests": [], "Architecture": "amd64", "Os": "linux"})
    }

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[test]
    fn a_built_image_every_node_has_is_pinned_to_its_id() {
        let found = vec![("n1".into(), built(A)), ("n2".into(), built(A))];
        let v = resolve(&r("app/web:1"), "app/web:1", &found, &[]).unwrap();
        assert_eq!(v["Descriptor"]["digest"], A);
        assert_eq!(v["Descriptor"]["mediaType"], CONFIG_MEDIA_TYPE);
        assert_eq!(
            v["Platforms"],
            json!([{"architecture": "amd64", "os": "linux"}])
        );
    }

    #[test]
    fn a_pulled_image_is_pinned_to_its_repository_digest_when_every_node_has_it() {
        let mut pulled = built(A);
        pulled["RepoDigests"] = json!([format!("other/x@{A}"), format!("app/web@{B}")]);
        let both = vec![("n1".into(), pulled.clone()), ("n2".into(), pulled.clone())];
        let v = resolve(&r("app/web:1"), "app/web:1", &both, &[]).unwrap();
        assert_eq!(v["Descriptor"]["digest"], B);
        assert_eq!(v["Descriptor"]["mediaType"], "");
        // The same image built on another node: the same image, pinned by ID.
        let mixed = vec![("n1".into(), pulled), ("n2".into(), built(A))];
        let v = resolve(&r("app/web:1"), "app/web:1", &mixed, &[]).unwrap();
        assert_eq!(v["Descriptor"]["digest"], A);
        // Another repository's digest is not this one's.
        let mut other = built(A);
        other["RepoDigests"] = json!([format!("other/x@{B}")]);
        let v = resolve(&r("app/web:1"), "app/web:1", &[("n1".into(), other)], &[]).unwrap();
        assert_eq!(v["Descriptor"]["digest"], A);
    }

    #[test]
    fn nodes_that_disagree_are_named_in_the_error() {
        let found = vec![
            ("n1".into(), built(A)),
            ("n2".into(), built(B)),
            ("n3".into(), built(A)),
        ];
        let e = resolve(&r("app/web:1"), "app/web:1", &found, &[]).unwrap_err();
        assert_eq!(e.0, StatusCode::CONFLICT);
        assert!(e.1.contains(&format!("{A} on n1, n3")), "{}", e.1);
        assert!(e.1.contains(&format!("{B} on n2")), "{}", e.1);
    }

    #[test]
    fn an_image_no_node_has_is_not_found() {
        let e = resolve(&r("app/web:1"), "app/web:1", &[], &["n2: timed out".into()]).unwrap_err();
        assert_eq!(e.0, StatusCode::NOT_FOUND);
        assert!(
            e.1.starts_with("manifest for app/web:1 not found"),
            "{}",
            e.1
        );
        assert!(e.1.contains("n2: timed out"), "{}", e.1);
    }

    #[test]
    fn an_id_pin_counts_only_for_an_image_of_that_repository() {
        assert!(tagged_with(&r(&format!("app/web@{A}")), &built(A)));
        assert!(!tagged_with(&r(&format!("app/db@{A}")), &built(A)));
    }
}
