//! Rotation for `stack deploy --order`, which deploys request by request (without it, the
//! managers rotate within the deploy's one entry: manager::controlapi::stack_rotation). Swarm refuses new content for an existing config or secret ("only
//! updates to Labels are allowed"), so a changed one is created under a new name,
//! `NAME-<first 8 hex of the content's SHA-256>`, labelled `com.shoal.rotated-from=NAME`; the
//! services are pointed at it (same target file, so a rolling update brings the new content)
//! and the objects it replaced are removed once no service uses them. Deploying the same
//! content again finds the rotated object by its name and changes nothing.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value;
use sha2::{Digest, Sha256};
use shoal_types::swarm::ServiceSpec;

use super::super::client::{encode, is_not_found, Client};
use super::super::table::str_at;
use super::{create_or_update, labelled};

pub use shoal_types::stack::ROTATED_FROM_LABEL;

/// The name a rotated object with `data` gets.
pub fn rotated_name(name: &str, data: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(data));
    format!("{name}-{}", &digest[..8])
}

/// Points the service's config and secret references at the objects they were renamed to.
pub fn rename_references(spec: &mut ServiceSpec, renames: &BTreeMap<String, String>) {
    let Some(c) = &mut spec.task_template.container_spec else {
        return;
    };
    for r in &mut c.configs {
        if let Some(new) = renames.get(&r.config_name) {
            r.config_name = new.clone();
        }
    }
    for r in &mut c.secrets {
        if let Some(new) = renames.get(&r.secret_name) {
            r.secret_name = new.clone();
        }
    }
}

/// An object a rotation replaced, to remove once the services moved off it.
#[derive(Debug, Clone)]
pub struct Replaced {
    kind: &'static str,
    collection: &'static str,
    name: String,
}

/// What the configs and secrets step decided: the names services must reference instead of
/// the ones in the files, and the objects to remove afterwards.
#[derive(Debug, Default)]
pub struct Outcome {
    pub renames: BTreeMap<String, String>,
    pub replaced: Vec<Replaced>,
}

/// One config or secret of the files, as the create/rotate step needs it.
pub struct Wanted {
    pub kind: &'static str,
    pub collection: &'static str,
    pub name: String,
    pub data: Vec<u8>,
    /// The create body (`ConfigSpec` or `SecretSpec` as JSON).
    pub body: Value,
}

/// Creates the configs and secrets of the files; with `rotate`, one whose content changed is
/// created under its rotated name instead of failing.
pub async fn apply(
    client: &Client,
    stack: &str,
    wanted: &[Wanted],
    rotate: bool,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let mut existing: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for w in wanted {
        if rotate && !existing.contains_key(w.collection) {
            existing.insert(w.collection, labelled(client, w.collection, stack).await?);
        }
    }
    for w in wanted {
        if !rotate {
            create_or_update(client, w.kind, w.collection, &w.name, &w.body).await?;
            continue;
        }
        let in_stack = existing.get(w.collection).cloned().unwrap_or_default();
        let family: Vec<String> = in_stack
            .iter()
            .filter(|o| {
                o.pointer("/Spec/Labels")
                    .and_then(|l| l.get(ROTATED_FROM_LABEL))
                    .and_then(Value::as_str)
                    == Some(w.name.as_str())
            })
            .map(|o| str_at(o, &["Spec", "Name"]).to_string())
            .collect();
        let base_in_stack = in_stack
            .iter()
            .any(|o| str_at(o, &["Spec", "Name"]) == w.name);
        let rotated = rotated_name(&w.name, &w.data);
        let chosen = if exists(client, w.collection, &rotated).await? {
            rotated
        } else if exists(client, w.collection, &w.name).await? {
            match create_or_update(client, w.kind, w.collection, &w.name, &w.body).await {
                Ok(()) => w.name.clone(),
                Err(err)
                    if err
                        .to_string()
                        .contains("only updates to Labels are allowed") =>
                {
                    create_rotated(client, w, &w.name, &rotated).await?;
                    rotated
                }
                Err(err) => return Err(err),
            }
        } else if let Some(previous) = family.iter().max() {
            create_rotated(client, w, previous, &rotated).await?;
            rotated
        } else {
            create_or_update(client, w.kind, w.collection, &w.name, &w.body).await?;
            w.name.clone()
        };
        let mut old = family;
        if base_in_stack {
            old.push(w.name.clone());
        }
        for name in old {
            if name != chosen {
                outcome.replaced.push(Replaced {
                    kind: w.kind,
                    collection: w.collection,
                    name,
                });
            }
        }
        if chosen != w.name {
            outcome.renames.insert(w.name.clone(), chosen);
        }
    }
    Ok(outcome)
}

async fn exists(client: &Client, collection: &str, name: &str) -> Result<bool> {
    match client.get(&format!("{collection}/{}", encode(name))).await {
        Ok(found) => Ok(str_at(&found, &["Spec", "Name"]) == name),
        Err(err) if is_not_found(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

async fn create_rotated(client: &Client, w: &Wanted, from: &str, rotated: &str) -> Result<()> {
    outln!("Rotating {} {from} -> {rotated}", w.kind);
    let mut body = w.body.clone();
    body["Name"] = Value::String(rotated.to_string());
    if !body.get("Labels").is_some_and(Value::is_object) {
        body["Labels"] = Value::Object(Default::default());
    }
    body["Labels"][ROTATED_FROM_LABEL] = Value::String(w.name.clone());
    client
        .post(&format!("{}/create", w.collection), &body)
        .await
        .map_err(|e| anyhow::anyhow!("failed to create {} {rotated}: {e}", w.kind))?;
    Ok(())
}

/// Removes the objects a rotation replaced. One still in use stays, with a note; that is not
/// an error of the deployment.
pub async fn remove_replaced(client: &Client, replaced: &[Replaced]) {
    for r in replaced {
        match client
            .delete(&format!("{}/{}", r.collection, encode(&r.name)))
            .await
        {
            Ok(()) => outln!("Removing {} {} (rotated out)", r.kind, r.name),
            Err(err) => eprintln!("Keeping {} {}: {err}", r.kind, r.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rotated_name_carries_the_first_8_hex_of_the_content_hash() {
        // sha256("hello") = 2cf24dba…
        assert_eq!(rotated_name("app_cfg", b"hello"), "app_cfg-2cf24dba");
    }
}
