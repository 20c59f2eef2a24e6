//! `service scale SERVICE=REPLICAS…`: each service's replica count (or job completions) set
//! through an update of its current spec; one failing service does not stop the others.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::print_warnings;
use crate::cli::client::{encode, Client, Query};
use crate::cli::stack::wait;
use crate::cli::table::str_at;
use crate::cli::{join_errors, object_at, version_index};

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub scales: Vec<String>,
}

/// A `SERVICE=REPLICAS` argument.
fn parse_scale(arg: &str) -> Result<(String, u64)> {
    let (name, replicas) = arg.split_once('=').with_context(|| {
        format!("invalid scale specifier '{arg}'.\nSee 'shoal service scale --help'.")
    })?;
    let replicas: u64 = replicas.parse().with_context(|| {
        format!("invalid replicas value {replicas}: must be a positive integer")
    })?;
    Ok((name.to_string(), replicas))
}

/// Sets a replicated service's replicas, or a replicated job's total completions, in `spec`.
fn set_replicas(spec: &mut Value, replicas: u64) -> Result<()> {
    let mode = object_at(spec, &["Mode"]);
    if let Some(replicated) = mode.get_mut("Replicated") {
        object_at(replicated, &[]).insert("Replicas".into(), json!(replicas));
    } else if let Some(job) = mode.get_mut("ReplicatedJob") {
        object_at(job, &[]).insert("TotalCompletions".into(), json!(replicas));
    } else {
        bail!("scale can only be used with replicated or replicated-job mode");
    }
    Ok(())
}

pub(super) async fn scale(client: &Client, args: ScaleArgs) -> Result<()> {
    // Every specifier is checked before any service is touched.
    let requests = args
        .scales
        .iter()
        .map(|arg| parse_scale(arg))
        .collect::<Result<Vec<_>>>()?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for (name, replicas) in requests {
        match scale_one(client, &name, replicas).await {
            Ok(()) => {
                outln!("{name} scaled to {replicas}");
                scaled.push(name);
            }
            Err(err) => errors.push(format!("{name}: {err}")),
        }
    }
    // As docker: then wait for them to converge, unless --detach.
    if !args.detach && !scaled.is_empty() {
        if let Err(err) = wait::wait_for_services(client, &scaled, false).await {
            errors.push(err.to_string());
        }
    }
    join_errors(errors)
}

async fn scale_one(client: &Client, name: &str, replicas: u64) -> Result<()> {
    let service = client.get(&format!("/services/{}", encode(name))).await?;
    let mut spec = service.get("Spec").cloned().unwrap_or_else(|| json!({}));
    set_replicas(&mut spec, replicas)?;
    let path = Query::new()
        .push("version", version_index(&service).to_string())
        .to_path(&format!(
            "/services/{}/update",
            encode(str_at(&service, &["ID"]))
        ));
    let response = client.post(&path, &spec).await?;
    print_warnings(&response);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_specifier_is_a_name_and_a_replica_count() {
        assert_eq!(parse_scale("web=3").unwrap(), ("web".to_string(), 3));
        assert_eq!(
            parse_scale("a=b=1").unwrap_err().to_string(),
            "invalid replicas value b=1: must be a positive integer"
        );
        assert_eq!(
            parse_scale("web").unwrap_err().to_string(),
            "invalid scale specifier 'web'.\nSee 'shoal service scale --help'."
        );
        assert_eq!(
            parse_scale("web=-1").unwrap_err().to_string(),
            "invalid replicas value -1: must be a positive integer"
        );
    }

    #[test]
    fn scaling_sets_replicas_or_job_completions_and_refuses_global_modes() {
        let mut spec = json!({"Mode": {"Replicated": {"Replicas": 1}}, "Name": "web"});
        set_replicas(&mut spec, 4).unwrap();
        assert_eq!(
            spec,
            json!({"Mode": {"Replicated": {"Replicas": 4}}, "Name": "web"})
        );

        let mut job =
            json!({"Mode": {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}}});
        set_replicas(&mut job, 6).unwrap();
        assert_eq!(
            job["Mode"],
            json!({"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 6}})
        );

        for mode in [json!({"Global": {}}), json!({"GlobalJob": {}})] {
            let mut spec = json!({"Mode": mode});
            let err = set_replicas(&mut spec, 2).unwrap_err();
            assert_eq!(
                err.to_string(),
                "scale can only be used with replicated or replicated-job mode"
            );
        }
    }
}
