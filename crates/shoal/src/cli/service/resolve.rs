//! Names typed on the command line resolved to IDs on the client, as docker does: networks via
//! `GET /networks/{name}`, secrets and configs by exact name. Every other reference goes to the
//! daemon as typed.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::client::{encode, is_not_found, Client, Filters, Query};
use crate::cli::opts::{FileReference, Kind};
use crate::cli::table::str_at;

pub(super) fn parse_refs(values: &[String]) -> Result<Vec<FileReference>> {
    values.iter().map(|v| FileReference::parse(v)).collect()
}

/// Network names (or IDs) to IDs, via `GET /networks/{name}`.
pub(super) async fn resolve_networks(client: &Client, names: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(resolve_network(client, name).await?);
    }
    Ok(ids)
}

pub(super) async fn resolve_network(client: &Client, name: &str) -> Result<String> {
    match client.get(&format!("/networks/{}", encode(name))).await {
        Ok(network) => Ok(str_at(&network, &["Id"]).to_string()),
        Err(err) if is_not_found(&err) => bail!("network {name} not found"),
        Err(err) => Err(err),
    }
}

/// Secret or config references with their IDs filled in, looked up by exact name as docker's
/// `ParseSecrets`/`ParseConfigs` do.
pub(super) async fn resolve_references(
    client: &Client,
    kind: Kind,
    refs: &[FileReference],
) -> Result<Vec<Value>> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    let mut targets = std::collections::BTreeSet::new();
    for r in refs {
        anyhow::ensure!(
            targets.insert(r.target.clone()),
            "duplicate {} target for {} not allowed",
            kind.noun(),
            r.source
        );
    }
    let mut filters = Filters::new();
    for r in refs {
        filters.add("name", r.source.clone());
    }
    let path = Query::new()
        .filters(&filters)
        .to_path(&format!("/{}s", kind.noun()));
    let listed = client.get(&path).await?;
    let ids: HashMap<&str, &str> = listed
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|o| (str_at(o, &["Spec", "Name"]), str_at(o, &["ID"])))
        .collect();
    refs.iter()
        .map(|r| {
            let id = ids
                .get(r.source.as_str())
                .with_context(|| format!("{} not found: {}", kind.noun(), r.source))?;
            Ok(reference_json(kind, r, id))
        })
        .collect()
}

pub(super) fn reference_json(kind: Kind, r: &FileReference, id: &str) -> Value {
    match kind {
        Kind::Secret => json!({"File": r.file_json(), "SecretID": id, "SecretName": r.source}),
        Kind::Config => json!({"File": r.file_json(), "ConfigID": id, "ConfigName": r.source}),
    }
}
