//! The control API of stacks: a whole stack is validated, turned into the objects it owns
//! (fresh IDs, Docker's defaults, secret data sealed) and proposed as one command. Before
//! proposing, the deploy is tried on a copy of the state, so that a stack with problems is
//! answered with all of them without a Raft entry, a dry run says what would change, and a
//! deploy that would change nothing is not proposed at all.

use super::stack_rotation as rotation;
use super::{network_from_request, normalize_spec, MAX_CONFIG_SIZE, MAX_SECRET_SIZE};
use crate::cluster::Manager;
use crate::error::{ApiError, Result};
use shoal_store::stacks::{SealedAuth, StackDeploy, StackVersion};
use shoal_store::{Command, StoreError};
use shoal_types::ids::new_id;
use shoal_types::names;
use shoal_types::stack::{StackChange, StackDeployResponse, StackSpec, NAMESPACE_LABEL};
use shoal_types::swarm::{Config, Secret, Service};
use std::collections::BTreeMap;

/// A stack name: what docker accepts (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`), at most 63 characters
/// so that `NAME_service` stays a valid service name.
pub fn validate_stack_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid stack name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63 characters"
        ))
    }
}

fn at(pos: &str) -> String {
    if pos.is_empty() {
        String::new()
    } else {
        format!("{pos}: ")
    }
}

impl Manager {
    /// Deploys (or with `dry_run`, only plans) a whole stack.
    pub async fn deploy_stack(
        &self,
        spec: StackSpec,
        dry_run: bool,
    ) -> Result<StackDeployResponse> {
        self.deploy_prepared(spec, "deploy".into(), dry_run).await
    }

    /// Deploys again the stack as it was at version `to` (by default the one before the
    /// current): one command, services updated (rolling with their update settings), not
    /// recreated; volumes are not part of a stack's state and stay as they are.
    pub async fn rollback_stack(
        &self,
        name: &str,
        to: Option<u64>,
        dry_run: bool,
    ) -> Result<StackDeployResponse> {
        let version: StackVersion = {
            let state = self.replica().read();
            let stack = state.stacks.get(name).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "stack {name} has no stored versions (only stacks deployed with `shoal stack deploy` have a history)"
                ))
            })?;
            let current = stack.current().map(|v| v.number).unwrap_or_default();
            let target = match to {
                Some(n) => n,
                None => stack
                    .versions
                    .iter()
                    .rev()
                    .map(|v| v.number)
                    .find(|n| *n < current)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "stack {name} has no version before {current} to roll back to"
                        ))
                    })?,
            };
            stack.version(target).cloned().ok_or_else(|| {
                let kept: Vec<String> = stack
                    .versions
                    .iter()
                    .map(|v| v.number.to_string())
                    .collect();
                ApiError::NotFound(format!(
                    "stack {name} has no version {target} (versions kept: {})",
                    kept.join(", ")
                ))
            })?
        };
        let mut spec = version.spec;
        // The stored data is sealed; the deploy compares and seals plain data.
        for s in &mut spec.secrets {
            if let Some(sealed) = s.spec.data.take() {
                let plain = self.keys.data_key.open(&sealed).map_err(|e| {
                    ApiError::Internal(format!(
                        "secret {} of stack {name} version {}: {e}",
                        s.spec.name, version.number
                    ))
                })?;
                s.spec.data = Some(plain);
            }
        }
        self.deploy_prepared(
            spec,
            format!("rollback to version {}", version.number),
            dry_run,
        )
        .await
    }

    /// Removes every object of a stack (also of a stack the docker CLI made) and its history,
    /// in one command; returns what was removed.
    pub async fn remove_stack(&self, name: &str) -> Result<Vec<StackChange>> {
        let changes = {
            let mut copy = self.replica().read().clone();
            copy.remove_stack(u64::MAX, chrono::Utc::now(), name)?
        };
        self.propose(Command::RemoveStack {
            name: name.to_string(),
        })
        .await?;
        Ok(changes)
    }

    async fn deploy_prepared(
        &self,
        spec: StackSpec,
        note: String,
        dry_run: bool,
    ) -> Result<StackDeployResponse> {
        let name = spec.name.clone();
        let deploy = self.prepare_stack(spec, note)?;
        // Tried on a copy first: every problem at once, and no entry when nothing changes.
        let (changes, recorded, before) = {
            let state = self.replica().read();
            let before = state
                .stacks
                .get(&name)
                .and_then(|s| s.current().map(|v| v.number))
                .unwrap_or_default();
            let mut copy = state.clone();
            drop(state);
            let changes = copy.deploy_stack(u64::MAX, chrono::Utc::now(), &deploy)?;
            let after = copy
                .stacks
                .get(&name)
                .and_then(|s| s.current().map(|v| v.number))
                .unwrap_or_default();
            (changes, after != before, before)
        };
        // Credentials are stored even when nothing else changes (docker's deploy sends them
        // with every service update).
        if dry_run || (!recorded && deploy.registry_auth.is_empty()) {
            return Ok(StackDeployResponse {
                version: before,
                changes,
            });
        }
        self.propose(Command::DeployStack {
            deploy: Box::new(deploy),
        })
        .await?;
        let version = self
            .replica()
            .read()
            .stacks
            .get(&name)
            .and_then(|s| s.current().map(|v| v.number))
            .unwrap_or_default();
        Ok(StackDeployResponse { version, changes })
    }

    /// Checks everything that does not depend on the state, fills Docker's defaults, labels
    /// every object with the stack's namespace, gives each a fresh ID (used if it is created)
    /// and seals secret data (reusing the stored sealed data of a secret whose data is the
    /// same, so that an unchanged stack is the same stack).
    fn prepare_stack(&self, mut spec: StackSpec, note: String) -> Result<StackDeploy> {
        let stack = spec.name.clone();
        validate_stack_name(&stack).map_err(ApiError::Invalid)?;
        // Credentials go beside the services, sealed; never into the stored version.
        let registry_auth = std::mem::take(&mut spec.registry_auth);
        let mut problems = Vec::new();
        let label = |labels: &mut std::collections::BTreeMap<String, String>| {
            labels.insert(NAMESPACE_LABEL.to_string(), stack.clone());
        };
        let mut deploy = StackDeploy {
            note,
            ..Default::default()
        };
        for item in &mut spec.networks {
            label(&mut item.spec.labels);
            match network_from_request(&new_id(), &item.spec) {
                Ok(n) => deploy.networks.push(n),
                Err(e) => {
                    problems.push(format!("{}network {}: {e}", at(&item.pos), item.spec.name))
                }
            }
        }
        for item in &mut spec.configs {
            label(&mut item.spec.labels);
            let name = &item.spec.name;
            if let Err(e) = names::validate_config_name(name) {
                problems.push(format!("{}config {name}: {e}", at(&item.pos)));
            } else if item.spec.data.len() >= MAX_CONFIG_SIZE {
                problems.push(format!(
                    "{}config {name}: config data must be smaller than {} KB",
                    at(&item.pos),
                    MAX_CONFIG_SIZE / 1024
                ));
            }
            deploy.configs.push(Config {
                id: new_id(),
                spec: item.spec.clone(),
                ..Default::default()
            });
        }
        let mut config_renames = BTreeMap::new();
        let mut secret_renames = BTreeMap::new();
        {
            let state = self.replica().read();
            for (c, item) in deploy.configs.iter_mut().zip(&spec.configs) {
                let name = item.spec.name.clone();
                let found = rotation::config_candidates(&state, &stack, &name, &c.spec.data);
                let tag = rotation::config_tag(&c.spec.data);
                if let Some(new) = rotation::choose(&name, &found, &tag) {
                    if let Err(e) = names::validate_config_name(&new) {
                        problems.push(format!(
                            "{}config {name}: rotated to {new}: {e}",
                            at(&item.pos)
                        ));
                    }
                    rotation::rename_config(c, &name, &new);
                    config_renames.insert(name, new);
                }
            }
            for item in &mut spec.secrets {
                label(&mut item.spec.labels);
                let name = item.spec.name.clone();
                if let Err(e) = names::validate_secret_name(&name) {
                    problems.push(format!("{}secret {name}: {e}", at(&item.pos)));
                }
                if item
                    .spec
                    .driver
                    .as_ref()
                    .is_some_and(|d| !d.name.is_empty())
                {
                    problems.push(format!(
                        "{}secret {name}: secret drivers are not supported",
                        at(&item.pos)
                    ));
                }
                let data = item.spec.data.take().unwrap_or_default();
                if data.is_empty() || data.len() >= MAX_SECRET_SIZE {
                    problems.push(format!(
                        "{}secret {name}: secret data must be larger than 0 and less than {MAX_SECRET_SIZE} bytes",
                        at(&item.pos)
                    ));
                }
                let found = rotation::secret_candidates(&state, &stack, &name, |s| {
                    s.spec.data.as_ref().is_some_and(|sealed| {
                        self.keys.data_key.open(sealed).is_ok_and(|old| {
                            bool::from(subtle::ConstantTimeEq::ct_eq(&old[..], &data[..]))
                        })
                    })
                });
                let candidates: Vec<_> = found.iter().map(|(c, _)| c.clone()).collect();
                let tag = self.keys.data_key.content_tag(&data);
                let new = rotation::choose(&name, &candidates, &tag);
                let final_name = new.clone().unwrap_or_else(|| name.clone());
                let stored = found
                    .iter()
                    .find(|(c, _)| c.same_content && c.name == final_name)
                    .and_then(|(_, s)| s.spec.data.clone());
                let sealed = match stored {
                    Some(sealed) => {
                        deploy.unchanged_secrets.insert(final_name.clone());
                        sealed
                    }
                    None => self.keys.data_key.seal(&data),
                };
                item.spec.data = Some(sealed);
                let mut secret = Secret {
                    id: new_id(),
                    spec: item.spec.clone(),
                    ..Default::default()
                };
                if let Some(new) = new {
                    if let Err(e) = names::validate_secret_name(&new) {
                        problems.push(format!(
                            "{}secret {name}: rotated to {new}: {e}",
                            at(&item.pos)
                        ));
                    }
                    rotation::rename_secret(&mut secret, &name, &new);
                    secret_renames.insert(name, new);
                }
                deploy.secrets.push(secret);
            }
        }
        for item in &mut spec.services {
            label(&mut item.spec.labels);
            let name = item.spec.name.clone();
            match normalize_spec(&mut item.spec) {
                Ok(_) => {}
                Err(e) => problems.push(format!("{}service {name}: {e}", at(&item.pos))),
            }
            let mut service = Service {
                id: new_id(),
                spec: item.spec.clone(),
                ..Default::default()
            };
            rotation::rename_references(&mut service.spec, &config_renames, &secret_renames);
            deploy.services.push(service);
        }
        for name in registry_auth.keys() {
            if !spec.services.iter().any(|s| &s.spec.name == name) {
                problems.push(format!(
                    "registry credentials for service {name}, which is not part of stack {stack}"
                ));
            }
        }
        deploy.registry_auth = registry_auth
            .iter()
            .map(|(name, auth)| {
                let given = (auth != &Default::default()).then_some(auth);
                (name.clone(), SealedAuth(self.seal_registry_auth(given)))
            })
            .collect();
        if !problems.is_empty() {
            return Err(StoreError::StackRefused { stack, problems }.into());
        }
        deploy.spec = spec;
        Ok(deploy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_follow_dockers_rule_and_leave_room_for_service_names() {
        assert!(validate_stack_name("todo").is_ok());
        assert!(validate_stack_name("my-app_2.v1").is_ok());
        for bad in ["", "_x", "a b", "a/b", &"x".repeat(64)] {
            assert!(validate_stack_name(bad).is_err(), "{bad:?}");
        }
    }
}
