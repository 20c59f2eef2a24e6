//! Rotation of a stack's configs and secrets on the managers. Swarm refuses new content for
//! an existing config or secret ("only updates to Labels are allowed"); `shoal stack deploy`
//! instead creates one whose content changed under a new name, `NAME-<8 hex>`, labelled
//! [`ROTATED_FROM_LABEL`]` = NAME`, and points the stack's services at it, all in the deploy's
//! one Raft entry. Deploying content one of the stack's objects already holds (the same file
//! again, or a rollback) reuses that object. Pure functions of the state: the proposer
//! decides, the entry carries the decision.

use shoal_store::stacks::owned;
use shoal_store::State;
use shoal_types::stack::ROTATED_FROM_LABEL;
use shoal_types::swarm::{Config, Secret, ServiceSpec};
use std::collections::BTreeMap;

/// One object of the stack that a Compose name can stand for: the object with that name or
/// one rotated from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    /// It holds the content the deploy asks for.
    pub same_content: bool,
}

/// The name the object the file calls `file_name` gets: `None` to keep `file_name`. The
/// object holding the content already wins; a changed content whose name is taken gets the
/// rotated name `file_name-tag`.
pub fn choose(file_name: &str, candidates: &[Candidate], tag: &str) -> Option<String> {
    if let Some(same) = candidates.iter().find(|c| c.same_content) {
        return (same.name != file_name).then(|| same.name.clone());
    }
    candidates
        .iter()
        .any(|c| c.name == file_name)
        .then(|| format!("{file_name}-{tag}"))
}

fn stands_for(labels: &BTreeMap<String, String>, name: &str, file_name: &str) -> bool {
    name == file_name
        || labels
            .get(ROTATED_FROM_LABEL)
            .is_some_and(|f| f == file_name)
}

/// The stack's configs that `file_name` can stand for, compared with `data`.
pub fn config_candidates(
    state: &State,
    stack: &str,
    file_name: &str,
    data: &[u8],
) -> Vec<Candidate> {
    state
        .configs
        .iter()
        .filter(|c| {
            owned(&c.spec.labels, stack) && stands_for(&c.spec.labels, &c.spec.name, file_name)
        })
        .map(|c| Candidate {
            name: c.spec.name.clone(),
            same_content: c.spec.data == data,
        })
        .collect()
}

/// The stack's secrets that `file_name` can stand for; `same` tells whether one holds the
/// deploy's data (only a manager holding the data key can).
pub fn secret_candidates<'a>(
    state: &'a State,
    stack: &str,
    file_name: &str,
    mut same: impl FnMut(&Secret) -> bool,
) -> Vec<(Candidate, &'a Secret)> {
    state
        .secrets
        .iter()
        .filter(|s| {
            owned(&s.spec.labels, stack) && stands_for(&s.spec.labels, &s.spec.name, file_name)
        })
        .map(|s| {
            (
                Candidate {
                    name: s.spec.name.clone(),
                    same_content: same(s),
                },
                s,
            )
        })
        .collect()
}

/// The tag of a config's content: the first 8 hex digits of its SHA-256 (configs are not
/// secret; a secret's tag is keyed, see `DataKey::content_tag`).
pub fn config_tag(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(data))[..8].to_string()
}

/// Gives a config the name `new` it was rotated to (or found under).
pub fn rename_config(config: &mut Config, file_name: &str, new: &str) {
    config.spec.name = new.to_string();
    config
        .spec
        .labels
        .insert(ROTATED_FROM_LABEL.to_string(), file_name.to_string());
}

/// Gives a secret the name `new` it was rotated to (or found under).
pub fn rename_secret(secret: &mut Secret, file_name: &str, new: &str) {
    secret.spec.name = new.to_string();
    secret
        .spec
        .labels
        .insert(ROTATED_FROM_LABEL.to_string(), file_name.to_string());
}

/// Points a service's config and secret references at the names they were rotated to.
pub fn rename_references(
    spec: &mut ServiceSpec,
    configs: &BTreeMap<String, String>,
    secrets: &BTreeMap<String, String>,
) {
    let Some(c) = &mut spec.task_template.container_spec else {
        return;
    };
    for r in &mut c.configs {
        if let Some(new) = configs.get(&r.config_name) {
            r.config_name = new.clone();
        }
    }
    for r in &mut c.secrets {
        if let Some(new) = secrets.get(&r.secret_name) {
            r.secret_name = new.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, same: bool) -> Candidate {
        Candidate {
            name: name.into(),
            same_content: same,
        }
    }

    #[test]
    fn a_new_name_or_unchanged_content_keeps_the_files_name() {
        assert_eq!(choose("s_app", &[], "1234abcd"), None);
        assert_eq!(choose("s_app", &[cand("s_app", true)], "1234abcd"), None);
    }

    #[test]
    fn changed_content_under_a_taken_name_is_rotated() {
        assert_eq!(
            choose("s_app", &[cand("s_app", false)], "1234abcd").as_deref(),
            Some("s_app-1234abcd")
        );
    }

    #[test]
    fn content_an_object_of_the_stack_holds_is_reused() {
        // Rolled back to the first content: the original object holds it.
        let c = [cand("s_app", true), cand("s_app-1234abcd", false)];
        assert_eq!(choose("s_app", &c, "ffffffff"), None);
        // Deployed the second content again: the rotated object holds it.
        let c = [cand("s_app", false), cand("s_app-1234abcd", true)];
        assert_eq!(
            choose("s_app", &c, "1234abcd").as_deref(),
            Some("s_app-1234abcd")
        );
    }

    #[test]
    fn only_rotated_objects_left_means_the_files_name_is_free_again() {
        let c = [cand("s_app-1234abcd", false)];
        assert_eq!(choose("s_app", &c, "ffffffff"), None);
    }

    #[test]
    fn references_follow_the_renames() {
        use shoal_types::swarm::{ConfigReference, ContainerSpec, SecretReference};
        let mut spec = ServiceSpec::default();
        spec.task_template.container_spec = Some(ContainerSpec {
            configs: vec![ConfigReference {
                config_name: "s_app".into(),
                ..Default::default()
            }],
            secrets: vec![SecretReference {
                secret_name: "s_token".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let configs = BTreeMap::from([("s_app".to_string(), "s_app-1".to_string())]);
        let secrets = BTreeMap::from([("s_token".to_string(), "s_token-2".to_string())]);
        rename_references(&mut spec, &configs, &secrets);
        let c = spec.task_template.container_spec.unwrap();
        assert_eq!(c.configs[0].config_name, "s_app-1");
        assert_eq!(c.secrets[0].secret_name, "s_token-2");
    }

    #[test]
    fn a_configs_tag_is_its_contents_hash() {
        assert_eq!(config_tag(b"color=blue\n").len(), 8);
        assert_ne!(config_tag(b"a"), config_tag(b"b"));
    }
}
