//! `shoal stack …`: a stack is the set of services, networks, secrets and configs labelled
//! `com.docker.stack.namespace=NAME`. These commands list, inspect and remove such sets the way
//! `docker stack` does; `deploy` (compose file → specs) lives elsewhere and is not written yet.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::client::{encode, Client, Filters, Query};
use super::service::{list_services, service_listing};
use super::table::{self, str_at, Listing};
use super::task::{list_tasks, task_listing, TaskOptions};

/// The label that ties an object to its stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// How long `stack rm` keeps retrying a network whose tasks are still shutting down.
const NETWORK_REMOVAL_PATIENCE: Duration = Duration::from_secs(30);

#[derive(clap::Subcommand, Debug)]
pub enum StackCmd {
    /// Deploy a new stack or update an existing stack
    #[command(alias = "up")]
    Deploy(DeployArgs),
    /// List stacks
    #[command(alias = "list")]
    Ls(ListArgs),
    /// List the services in the stack
    Services(ServicesArgs),
    /// List the tasks in the stack
    Ps(PsArgs),
    /// Remove one or more stacks
    #[command(aliases = ["remove", "down"])]
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin
    #[arg(short = 'c', long = "compose-file")]
    pub compose_files: Vec<String>,
    /// Prune services that are no longer referenced
    #[arg(long)]
    pub prune: bool,
    /// Exit immediately instead of waiting for the stack services to converge
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Query the registry to resolve image digest and supported platforms ("always", "changed", "never")
    #[arg(long)]
    pub resolve_image: Option<String>,
    /// Send registry authentication details to Swarm agents
    #[arg(long)]
    pub with_registry_auth: bool,
    /// Stack name
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ServicesArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
    /// Stack name
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Only display task IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Do not map IDs to names
    #[arg(long)]
    pub no_resolve: bool,
    /// Filter output based on conditions provided
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
    /// Stack name
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(required = true, value_name = "STACK")]
    pub names: Vec<String>,
}

pub async fn run(client: &Client, cmd: StackCmd) -> Result<()> {
    match cmd {
        StackCmd::Deploy(_) => {
            bail!("shoal stack deploy: not implemented yet, use `docker stack deploy`")
        }
        StackCmd::Ls(args) => {
            let filters = Filters::new().with("label", NAMESPACE_LABEL);
            let services = list_services(client, &filters).await?;
            stack_listing(&services).print(args.format.as_deref(), false)
        }
        StackCmd::Services(args) => {
            let filters =
                Filters::parse(&args.filters)?.with("label", namespace_filter(&args.name));
            let services = list_services(client, &filters).await?;
            if services.is_empty() && args.format.is_none() && !args.quiet {
                eprintln!("Nothing found in stack: {}", args.name);
                return Ok(());
            }
            service_listing(&services).print(args.format.as_deref(), args.quiet)
        }
        StackCmd::Ps(args) => ps(client, args).await,
        StackCmd::Rm(args) => remove(client, args).await,
    }
}

fn namespace_filter(stack: &str) -> String {
    format!("{NAMESPACE_LABEL}={stack}")
}

/// The `stack ls` table: stacks by name with how many services each has.
pub fn stack_listing(services: &[Value]) -> Listing {
    let mut stacks: BTreeMap<String, usize> = BTreeMap::new();
    for service in services {
        let name = service
            .pointer("/Spec/Labels")
            .and_then(|l| l.get(NAMESPACE_LABEL))
            .and_then(Value::as_str);
        if let Some(name) = name {
            *stacks.entry(name.to_string()).or_default() += 1;
        }
    }
    let mut names: Vec<(String, usize)> = stacks.into_iter().collect();
    names.sort_by(|a, b| table::natural_cmp(&a.0, &b.0));
    let mut listing = Listing::new(&["NAME", "SERVICES"]);
    for (name, count) in names {
        listing.push(
            vec![name.clone(), count.to_string()],
            json!({"Name": name, "Services": count.to_string(), "Orchestrator": "Swarm"}),
        );
    }
    listing
}

async fn ps(client: &Client, args: PsArgs) -> Result<()> {
    let namespace = namespace_filter(&args.name);
    let filters = Filters::parse(&args.filters)?.with("label", namespace.clone());
    let tasks = list_tasks(client, &filters).await?;
    if tasks.is_empty() {
        bail!("nothing found in stack: {}", args.name);
    }
    let services = list_services(client, &Filters::new().with("label", namespace)).await?;
    let names: HashMap<String, String> = services
        .iter()
        .map(|s| {
            (
                str_at(s, &["ID"]).to_string(),
                str_at(s, &["Spec", "Name"]).to_string(),
            )
        })
        .collect();
    let options = TaskOptions {
        no_trunc: args.no_trunc,
        no_resolve: args.no_resolve,
    };
    task_listing(client, &tasks, &names, &options)
        .await
        .print(args.format.as_deref(), args.quiet)
}

/// The objects under `collection` labelled with the stack's namespace.
async fn labelled(client: &Client, collection: &str, stack: &str) -> Result<Vec<Value>> {
    let filters = Filters::new().with("label", namespace_filter(stack));
    let objects = client
        .get(&Query::new().filters(&filters).to_path(collection))
        .await?;
    Ok(objects.as_array().cloned().unwrap_or_default())
}

async fn remove(client: &Client, args: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for stack in &args.names {
        let mut services = labelled(client, "/services", stack).await?;
        let mut secrets = labelled(client, "/secrets", stack).await?;
        let mut configs = labelled(client, "/configs", stack).await?;
        let mut networks = labelled(client, "/networks", stack).await?;
        if services.len() + secrets.len() + configs.len() + networks.len() == 0 {
            eprintln!("Nothing found in stack: {stack}");
            continue;
        }
        let by_name = |path: &'static [&'static str]| {
            move |a: &Value, b: &Value| str_at(a, path).cmp(str_at(b, path))
        };
        services.sort_by(by_name(&["Spec", "Name"]));
        secrets.sort_by(by_name(&["Spec", "Name"]));
        configs.sort_by(by_name(&["Spec", "Name"]));
        networks.sort_by(by_name(&["Name"]));

        let mut failed = false;
        for (kind, collection, objects, id_key, name_path) in [
            (
                "service",
                "/services",
                &services,
                "ID",
                &["Spec", "Name"][..],
            ),
            ("secret", "/secrets", &secrets, "ID", &["Spec", "Name"][..]),
            ("config", "/configs", &configs, "ID", &["Spec", "Name"][..]),
        ] {
            for object in objects {
                let id = str_at(object, &[id_key]);
                outln!("Removing {kind} {}", str_at(object, name_path));
                if let Err(err) = client.delete(&format!("{collection}/{}", encode(id))).await {
                    failed = true;
                    eprintln!("Failed to remove {kind} {id}: {err}");
                }
            }
        }
        let services_removed = !services.is_empty();
        for network in &networks {
            let id = str_at(network, &["Id"]);
            outln!("Removing network {}", str_at(network, &["Name"]));
            if let Err(err) = remove_network(client, id, services_removed).await {
                failed = true;
                eprintln!("Failed to remove network {id}: {err}");
            }
        }
        if failed {
            errors.push(format!(
                "Failed to remove some resources from stack: {stack}"
            ));
        }
    }
    super::join_errors(errors)
}

/// Removes a network; right after its services were removed, their tasks may still hold
/// endpoints on it, so a refusal for that reason is retried for a while instead of failing
/// (docker's `stack rm` races here).
async fn remove_network(client: &Client, id: &str, wait_for_tasks: bool) -> Result<()> {
    let started = Instant::now();
    loop {
        match client.delete(&format!("/networks/{}", encode(id))).await {
            Ok(()) => return Ok(()),
            Err(err) => {
                let text = err.to_string();
                let busy = text.contains("active endpoints") || text.contains("in use");
                if !(wait_for_tasks && busy) || started.elapsed() > NETWORK_REMOVAL_PATIENCE {
                    return Err(err);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_ls_counts_services_per_namespace() {
        let services = vec![
            json!({"Spec": {"Name": "todo_web", "Labels": {NAMESPACE_LABEL: "todo"}}}),
            json!({"Spec": {"Name": "todo_db", "Labels": {NAMESPACE_LABEL: "todo"}}}),
            json!({"Spec": {"Name": "blog_app", "Labels": {NAMESPACE_LABEL: "blog"}}}),
            json!({"Spec": {"Name": "loose", "Labels": {}}}),
        ];
        assert_eq!(
            stack_listing(&services).render(None, false).unwrap(),
            "NAME      SERVICES\nblog      1\ntodo      2\n"
        );
    }
}
