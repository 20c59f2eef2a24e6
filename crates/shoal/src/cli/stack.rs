//! `shoal stack …`: a stack is the set of services, networks, secrets and configs labelled
//! `com.docker.stack.namespace=NAME`. These commands deploy, list, inspect and remove such sets
//! the way `docker stack` does. `deploy` reads the Compose files with `shoal-compose` and sends
//! the same requests as `docker stack deploy`, in the same order. Beyond docker, `deploy` can
//! wait for convergence (`--wait`, also `stack wait`), show a plan instead of deploying
//! (`--dry-run`, also `stack diff`), rotate changed configs and secrets (`--rotate`) and honour
//! Compose's `depends_on` (`--order`).

mod api;
pub(super) mod images;
mod order;
mod plan;
mod rotate;
pub(super) mod wait;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::client::{encode, Client, Filters, Query};
use super::service::{list_services, service_listing};
use super::table::{self, str_at, Listing};
use super::task::{list_tasks, task_listing, TaskOptions};

/// The label that ties an object to its stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

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
    /// Show what `stack deploy` would change (the same as `stack deploy --dry-run`)
    Diff(DeployArgs),
    /// Wait until every service of the stack converged
    Wait(WaitArgs),
    /// Show the versions of a stack the managers keep (the last 10)
    History(HistoryArgs),
    /// Deploy a stored version of a stack again (by default the one before the current)
    Rollback(RollbackArgs),
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display version numbers
    #[arg(short, long)]
    pub quiet: bool,
    /// Stack name
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The version to go back to (see `shoal stack history`)
    #[arg(long, value_name = "VERSION")]
    pub to: Option<u64>,
    /// Print what the rollback would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Stack name
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    /// Give up after this long ("5m", "90s")
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Stack name
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin
    #[arg(short = 'c', long = "compose-file")]
    pub compose_files: Vec<String>,
    /// Variables for interpolation from these files instead of the .env next to the first
    /// Compose file (the environment still wins)
    #[arg(long = "env-file", value_name = "PATH")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Prune services that are no longer referenced. A shoal stack is its files: services,
    /// networks, configs and secrets that left them are always removed, with or without this
    /// flag (except with --order or --rotate, which deploy request by request as before)
    #[arg(long)]
    pub prune: bool,
    /// Exit once the managers accepted the stack, instead of waiting with live progress until
    /// every service converged (the default: it exits non-zero naming the failing service and
    /// its task's error)
    #[arg(short = 'd', long, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    /// Pin each service's image to the digest the nodes' engines agree on, and its platforms
    /// ("always", "changed", "never"; default "always")
    #[arg(long)]
    pub resolve_image: Option<String>,
    /// Send the registry credentials of `docker login` (the docker CLI's configuration) to
    /// the nodes that pull the services' images
    #[arg(long)]
    pub with_registry_auth: bool,
    /// Wait until every service converged, even with --detach (fails on a paused or
    /// rolled-back update, a rejected or repeatedly failing task, or the timeout)
    #[arg(long)]
    pub wait: bool,
    /// How long the deploy waits for convergence ("5m", "90s")
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub timeout: String,
    /// Print what deploy would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: exit with status 2 when there are changes
    #[arg(long)]
    pub exit_code: bool,
    /// A config or secret whose content changed is created under a new name (NAME-<hash>)
    /// and the services move to it. Always done now; the flag stays for scripts
    #[arg(long, hide = true)]
    pub rotate: bool,
    /// Also deploy the services in depends_on order from the client (the managers hold
    /// dependents' tasks anyway): wait before each wave for its dependencies' conditions, then
    /// wait for the stack
    #[arg(long)]
    pub order: bool,
    /// Stack name (default: the Compose file's top-level `name:`)
    #[arg(default_value = "")]
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
        StackCmd::Deploy(args) => deploy(client, args).await,
        StackCmd::Ls(args) => {
            let stacks = api::list(client).await?;
            stack_listing(&stacks).print(args.format.as_deref(), false)
        }
        StackCmd::History(args) => {
            let info = api::history(client, &args.name).await?;
            if info.versions.is_empty() && args.format.is_none() && !args.quiet {
                eprintln!(
                    "Stack {} has no stored versions: it was deployed by the docker CLI (shoal stack deploy stores its versions)",
                    args.name
                );
                return Ok(());
            }
            if args.quiet {
                for v in &info.versions {
                    outln!("{}", v.version);
                }
                return Ok(());
            }
            api::history_listing(&info).print(args.format.as_deref(), false)
        }
        StackCmd::Rollback(args) => {
            let answer = api::rollback(client, &args.name, args.to, args.dry_run).await?;
            if args.dry_run {
                for line in api::plan_lines(&args.name, &answer).0 {
                    outln!("{line}");
                }
                return Ok(());
            }
            for line in api::change_lines(&answer.changes) {
                outln!("{line}");
            }
            outln!("Stack {}: version {}", args.name, answer.version);
            Ok(())
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
        StackCmd::Diff(mut args) => {
            args.dry_run = true;
            deploy(client, args).await
        }
        StackCmd::Wait(args) => {
            let timeout = parse_timeout(&args.timeout)?;
            wait::wait_for_stack(client, &args.name, timeout, args.quiet).await
        }
    }
}

fn parse_timeout(text: &str) -> Result<Duration> {
    let nanos =
        super::opts::parse_duration(text).with_context(|| format!("invalid --timeout {text:?}"))?;
    Ok(Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)))
}

fn namespace_filter(stack: &str) -> String {
    format!("{NAMESPACE_LABEL}={stack}")
}

/// The `stack ls` table: stacks by name with how many services each has and the version the
/// managers keep (`-` for a stack the docker CLI made).
pub fn stack_listing(stacks: &[shoal_types::stack::StackSummary]) -> Listing {
    let mut stacks: Vec<&shoal_types::stack::StackSummary> = stacks.iter().collect();
    stacks.sort_by(|a, b| table::natural_cmp(&a.name, &b.name));
    let mut listing = Listing::new(&["NAME", "SERVICES", "VERSION"]);
    for s in stacks {
        let version = if s.version == 0 {
            "-".to_string()
        } else {
            s.version.to_string()
        };
        listing.push(
            vec![s.name.clone(), s.services.to_string(), version.clone()],
            json!({"Name": s.name, "Services": s.services.to_string(), "Orchestrator": "Swarm", "Version": version}),
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

/// `stack rm`: each stack goes in one command on the managers (its objects and its
/// history), or, when something refuses, nothing of it goes and the error says why.
async fn remove(client: &Client, args: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for stack in &args.names {
        match api::remove(client, stack).await {
            Ok(changes) => {
                for line in api::change_lines(&changes) {
                    outln!("{line}");
                }
            }
            Err(err) if super::client::is_not_found(&err) => {
                eprintln!("Nothing found in stack: {stack}");
            }
            Err(err) => {
                eprintln!("{err}");
                errors.push(format!(
                    "Failed to remove some resources from stack: {stack}"
                ));
            }
        }
    }
    super::join_errors(errors)
}

// ----- deploy -----

/// Loads the Compose files and converts them to the stack's objects, as `docker stack deploy`
/// does, printing the loader's warnings; with `--order`, also the order of `depends_on`.
fn load_stack(
    args: &mut DeployArgs,
) -> Result<(
    shoal_compose::convert::Stack,
    Option<shoal_compose::depends::Order>,
    shoal_compose::Project,
)> {
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let project = if args.compose_files.len() == 1 && args.compose_files[0] == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading the Compose file from stdin")?;
        let dir = std::env::current_dir()?;
        let source = shoal_compose::Source {
            name: "-".into(),
            text,
        };
        let mut vars = std::collections::BTreeMap::new();
        for file in &args.env_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the env file {}", file.display()))?;
            vars.extend(shoal_compose::interpolate::parse_env_file(&text));
        }
        vars.extend(env);
        shoal_compose::load_sources(&[source], &dir, vars)?
    } else {
        let paths: Vec<std::path::PathBuf> = args
            .compose_files
            .iter()
            .map(std::path::PathBuf::from)
            .collect();
        shoal_compose::load_files_with_env_files(&paths, &env, &args.env_file)?
    };
    if args.name.is_empty() {
        args.name = project.name().map(str::to_string).ok_or_else(|| {
            anyhow::anyhow!(
                "a stack name is needed: give it after the options (shoal stack deploy -c FILE NAME) or as the Compose file's top-level `name:`"
            )
        })?;
    }
    // depends_on, which Swarm ignores, is honoured: by the managers (a label on each
    // dependent service, see `shoal_types::depends`), and with `--order` also by deploying in
    // waves.
    let order = if shoal_compose::depends::has_depends_on(&project) {
        let order = shoal_compose::depends::order(&project)?;
        for warning in shoal_compose::depends::honoured_warnings(&project.warnings) {
            eprintln!("{warning}\n");
        }
        for warning in &order.warnings {
            eprintln!("{warning}");
        }
        Some(order)
    } else {
        for warning in &project.warnings {
            eprintln!("{warning}\n");
        }
        None
    };
    let mut stack = shoal_compose::convert(&project, &args.name)?;
    for warning in &stack.warnings {
        eprintln!("{warning}");
    }
    if let Some(order) = &order {
        shoal_compose::depends::label_services(order, &mut stack);
    }
    let order = order.filter(|_| args.order);
    Ok((stack, order, project))
}

/// `--with-registry-auth`: what `docker login` keeps for each service's image registry, by
/// full service name (empty credentials where it has none, as the docker CLI sends `{}`).
fn registry_auths(
    stack: &shoal_compose::convert::Stack,
) -> Result<std::collections::BTreeMap<String, shoal_types::registry::RegistryAuth>> {
    let config = super::registry::load_config()?;
    let mut out = std::collections::BTreeMap::new();
    for spec in stack.services.values() {
        let Some(image) = spec.task_template.container_spec.as_ref().map(|c| &c.image) else {
            continue;
        };
        let auth = super::registry::credentials_for(&config, image)?.unwrap_or_default();
        out.insert(spec.name.clone(), auth);
    }
    Ok(out)
}

/// `stack deploy`: the whole stack in one request; the managers deploy all of it or none
/// (`--dry-run`: they say what would change), rotating changed configs and secrets. `--order`
/// still deploys request by request, in waves, as `docker stack deploy` would.
async fn deploy(client: &Client, mut args: DeployArgs) -> Result<()> {
    let started = Instant::now();
    let resolve_mode = images::Resolve::parse(args.resolve_image.as_deref())?;
    if args.with_registry_auth && args.order {
        bail!("--with-registry-auth cannot be combined with --order (which deploys request by request from the client): deploy without --order, the managers hold dependents back anyway");
    }
    let (mut stack, order, project) = load_stack(&mut args)?;
    let info = client.get("/info").await?;
    if info.pointer("/Swarm/ControlAvailable") != Some(&Value::Bool(true)) {
        bail!("this node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again");
    }
    let auths = if args.with_registry_auth {
        registry_auths(&stack)?
    } else {
        Default::default()
    };
    for warning in images::resolve(client, &args.name, &mut stack, resolve_mode, &auths).await? {
        eprint!("{warning}");
    }
    if args.order {
        // Request by request, as the docker CLI does; changed configs and secrets rotate
        // there too.
        args.rotate = true;
        return deploy_by_requests(client, args, stack, order, started).await;
    }
    let mut spec = api::stack_spec(&args.name, &stack, &project);
    spec.registry_auth = auths;
    if args.dry_run {
        let answer = api::deploy(client, &spec, true).await?;
        let (lines, changes) = api::plan_lines(&args.name, &answer);
        for line in lines {
            outln!("{line}");
        }
        if args.exit_code && changes > 0 {
            std::process::exit(2);
        }
        return Ok(());
    }
    let timeout = parse_timeout(&args.timeout)?;
    let answer = api::deploy(client, &spec, false).await?;
    let lines = api::change_lines(&answer.changes);
    for line in &lines {
        outln!("{line}");
    }
    if lines.is_empty() {
        outln!(
            "Stack {}: no changes (version {})",
            args.name,
            answer.version
        );
    } else {
        outln!("Stack {}: version {}", args.name, answer.version);
    }
    if args.wait || !args.detach {
        return wait::wait_for_stack(client, &args.name, timeout, args.quiet).await;
    }
    Ok(())
}

/// `stack deploy --order/--rotate`: what `docker stack deploy` does, request for request:
/// prune, external networks checked, networks created, secrets and configs created (or
/// updated, which the daemon refuses for data), then every service created or updated with
/// the version read. `--dry-run` stops after reading.
async fn deploy_by_requests(
    client: &Client,
    args: DeployArgs,
    stack: shoal_compose::convert::Stack,
    order: Option<shoal_compose::depends::Order>,
    started: Instant,
) -> Result<()> {
    if args.dry_run {
        let plan = plan::plan(client, &args, &stack).await?;
        plan::print(&args.name, &plan);
        if let Some(order) = &order {
            for line in order::wave_lines(&args.name, order) {
                outln!("{line}");
            }
        }
        if args.exit_code && plan.changes > 0 {
            std::process::exit(2);
        }
        return Ok(());
    }
    let timeout = parse_timeout(&args.timeout)?;

    if args.prune {
        let wanted: std::collections::BTreeSet<String> = stack
            .services
            .keys()
            .map(|k| format!("{}_{k}", args.name))
            .collect();
        let mut existing = labelled(client, "/services", &args.name).await?;
        existing.sort_by(|a, b| str_at(a, &["Spec", "Name"]).cmp(str_at(b, &["Spec", "Name"])));
        for service in existing {
            let name = str_at(&service, &["Spec", "Name"]);
            if wanted.contains(name) {
                continue;
            }
            outln!("Removing service {name}");
            let id = str_at(&service, &["ID"]);
            if let Err(err) = client.delete(&format!("/services/{}", encode(id))).await {
                eprintln!("Failed to remove service {name}: {err}");
            }
        }
    }

    for name in &stack.external_networks {
        match client.get(&format!("/networks/{}", encode(name))).await {
            Ok(network) => {
                let scope = str_at(&network, &["Scope"]);
                if scope != "swarm" {
                    bail!("network {name:?} is declared as external, but it is not in the right scope: {scope:?} instead of \"swarm\"");
                }
            }
            Err(err) if super::client::is_not_found(&err) => bail!(
                "network {name:?} is declared as external, but could not be found. You need to create a swarm-scoped network before the stack is deployed"
            ),
            Err(err) => return Err(err),
        }
    }

    let existing_networks = labelled(client, "/networks", &args.name).await?;
    for network in &stack.networks {
        if existing_networks
            .iter()
            .any(|n| str_at(n, &["Name"]) == network.name)
        {
            continue;
        }
        outln!("Creating network {}", network.name);
        client
            .post("/networks/create", &serde_json::to_value(&network.request)?)
            .await
            .map_err(|e| anyhow::anyhow!("failed to create network {}: {e}", network.name))?;
    }

    let mut wanted = Vec::new();
    for secret in &stack.secrets {
        wanted.push(rotate::Wanted {
            kind: "secret",
            collection: "/secrets",
            name: secret.name.clone(),
            data: secret.data.clone().unwrap_or_default(),
            body: serde_json::to_value(secret)?,
        });
    }
    for config in &stack.configs {
        wanted.push(rotate::Wanted {
            kind: "config",
            collection: "/configs",
            name: config.name.clone(),
            data: config.data.clone(),
            body: serde_json::to_value(config)?,
        });
    }
    let rotation = rotate::apply(client, &args.name, &wanted, args.rotate).await?;

    let mut services = stack.services.clone();
    for spec in services.values_mut() {
        rotate::rename_references(spec, &rotation.renames);
    }
    resolve_references(client, &mut services).await?;

    let existing = labelled(client, "/services", &args.name).await?;
    match &order {
        None => {
            for (short, spec) in services {
                deploy_service(client, &existing, &args.name, &short, spec).await?;
            }
        }
        Some(order) => {
            let deadline = started + timeout;
            let deployed = deploy_in_order(
                client,
                &args,
                order,
                services,
                &existing,
                (started, deadline),
            )
            .await;
            if let Err(err) = deployed {
                if !rotation.replaced.is_empty() {
                    eprintln!(
                        "The rotated-out configs and secrets stay until the stack converged."
                    );
                }
                return Err(err);
            }
        }
    }
    let waiting = args.wait || !args.detach || args.order;
    // Running tasks still use the replaced objects until the rolling update replaced them:
    // when waiting, they go once the stack converged.
    if !waiting {
        rotate::remove_replaced(client, &rotation.replaced).await;
        return Ok(());
    }
    let remaining = if args.order {
        timeout.saturating_sub(started.elapsed())
    } else {
        timeout
    };
    let result = wait::wait_for_stack(client, &args.name, remaining, args.quiet).await;
    if result.is_ok() {
        rotate::remove_replaced(client, &rotation.replaced).await;
    } else if !rotation.replaced.is_empty() {
        eprintln!("The rotated-out configs and secrets stay until the stack converged.");
    }
    result
}

/// Creates service `short` of `stack`, or updates it with the version read when it is in
/// `existing` — the request `docker stack deploy` sends.
async fn deploy_service(
    client: &Client,
    existing: &[Value],
    stack: &str,
    short: &str,
    mut spec: shoal_types::swarm::ServiceSpec,
) -> Result<()> {
    let name = format!("{stack}_{short}");
    // The docker client sends the image with its tag made explicit.
    if let Some(c) = &mut spec.task_template.container_spec {
        c.image = shoal_compose::convert::tagged_image(&c.image);
    }
    let current = existing
        .iter()
        .find(|s| str_at(s, &["Spec", "Name"]) == name);
    match current {
        Some(current) => {
            let id = str_at(current, &["ID"]).to_string();
            outln!("Updating service {name} (id: {id})");
            let version = current
                .pointer("/Version/Index")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            spec.task_template.force_update = current
                .pointer("/Spec/TaskTemplate/ForceUpdate")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            let answer = client
                .post(
                    &format!("/services/{}/update?version={version}", encode(&id)),
                    &serde_json::to_value(&spec)?,
                )
                .await
                .map_err(|e| anyhow::anyhow!("failed to update service {name}: {e}"))?;
            print_warnings(&answer);
        }
        None => {
            outln!("Creating service {name}");
            let answer = client
                .post("/services/create", &serde_json::to_value(&spec)?)
                .await
                .map_err(|e| anyhow::anyhow!("failed to create service {name}: {e}"))?;
            print_warnings(&answer);
        }
    }
    Ok(())
}

/// `--order`: the services wave by wave, each wave once its dependencies' conditions hold.
/// A dependency that fails stops the deploy; what was deployed stays, and the error says
/// which services were and which were not.
async fn deploy_in_order(
    client: &Client,
    args: &DeployArgs,
    order: &shoal_compose::depends::Order,
    mut services: BTreeMap<String, shoal_types::swarm::ServiceSpec>,
    existing: &[Value],
    (started, deadline): (Instant, Instant),
) -> Result<()> {
    let stack = &args.name;
    // Failures from before this deploy say nothing about it.
    let seen_failures = wait::failures_of(client, existing).await?;
    let mut deployed: Vec<String> = Vec::new();
    for (index, wave) in order.waves.iter().enumerate() {
        for gate in order::gates(order, index) {
            let waited = tokio::select! {
                result = order::wait_for(
                    client, stack, &gate, deadline, started, &seen_failures, args.quiet,
                ) => result,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("\nStopped; the services deployed so far stay: {}", deployed.join(", "));
                    std::process::exit(130);
                }
            };
            match waited {
                Ok(()) => {}
                Err(err) if !gate.required => {
                    eprintln!(
                        "warning: {err:#}; deploying anyway (the dependency is not required)"
                    );
                }
                Err(err) => {
                    let pending: Vec<String> = order.waves[index..]
                        .iter()
                        .flatten()
                        .map(|s| format!("{stack}_{s}"))
                        .collect();
                    let stayed = if deployed.is_empty() {
                        "none".to_string()
                    } else {
                        deployed.join(", ")
                    };
                    bail!(
                        "{err:#}\nThe deploy of stack {stack} stopped there. The services already deployed stay ({stayed}); not deployed: {}",
                        pending.join(", ")
                    );
                }
            }
        }
        for short in wave {
            let Some(spec) = services.remove(short) else {
                continue;
            };
            deploy_service(client, existing, stack, short, spec).await?;
            deployed.push(format!("{stack}_{short}"));
        }
    }
    Ok(())
}

fn print_warnings(answer: &Value) {
    for warning in answer
        .get("Warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        eprintln!("{warning}");
    }
}

/// Creates a secret or config, or sends the same spec as an update when one of that name
/// exists (the daemon refuses a change of data, as Docker does, and that error is shown).
async fn create_or_update(
    client: &Client,
    kind: &str,
    collection: &str,
    name: &str,
    body: &Value,
) -> Result<()> {
    match client.get(&format!("{collection}/{}", encode(name))).await {
        Ok(current) => {
            let id = str_at(&current, &["ID"]);
            let version = current
                .pointer("/Version/Index")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            client
                .post(
                    &format!("{collection}/{}/update?version={version}", encode(id)),
                    body,
                )
                .await
                .map_err(|e| anyhow::anyhow!("failed to update {kind} {name}: {e}"))?;
        }
        Err(err) if super::client::is_not_found(&err) => {
            outln!("Creating {kind} {name}");
            client
                .post(&format!("{collection}/create"), body)
                .await
                .map_err(|e| anyhow::anyhow!("failed to create {kind} {name}: {e}"))?;
        }
        Err(err) => return Err(err),
    }
    Ok(())
}

/// Fills in the IDs of the configs and secrets the services use, looked up by name.
async fn resolve_references(
    client: &Client,
    services: &mut BTreeMap<String, shoal_types::swarm::ServiceSpec>,
) -> Result<()> {
    let mut secret_names = std::collections::BTreeSet::new();
    let mut config_names = std::collections::BTreeSet::new();
    for spec in services.values() {
        if let Some(c) = &spec.task_template.container_spec {
            secret_names.extend(c.secrets.iter().map(|s| s.secret_name.clone()));
            config_names.extend(c.configs.iter().map(|s| s.config_name.clone()));
        }
    }
    let ids = |objects: Value| -> HashMap<String, String> {
        objects
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                (
                    str_at(o, &["Spec", "Name"]).to_string(),
                    str_at(o, &["ID"]).to_string(),
                )
            })
            .collect()
    };
    let lookup = |collection: &'static str, names: &std::collections::BTreeSet<String>| {
        let mut filters = Filters::new();
        for name in names {
            filters.add("name", name.clone());
        }
        Query::new().filters(&filters).to_path(collection)
    };
    let secret_ids = if secret_names.is_empty() {
        HashMap::new()
    } else {
        ids(client.get(&lookup("/secrets", &secret_names)).await?)
    };
    let config_ids = if config_names.is_empty() {
        HashMap::new()
    } else {
        ids(client.get(&lookup("/configs", &config_names)).await?)
    };
    for (short, spec) in services.iter_mut() {
        let Some(c) = &mut spec.task_template.container_spec else {
            continue;
        };
        for secret in &mut c.secrets {
            secret.secret_id = secret_ids
                .get(&secret.secret_name)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!("service {short}: secret not found: {}", secret.secret_name)
                })?;
        }
        for config in &mut c.configs {
            config.config_id = config_ids
                .get(&config.config_name)
                .cloned()
                .ok_or_else(|| {
                    anyhow::anyhow!("service {short}: config not found: {}", config.config_name)
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_ls_shows_services_and_the_stored_version() {
        let stacks = |name: &str, services: usize, version: u64| shoal_types::stack::StackSummary {
            name: name.into(),
            services,
            version,
            updated_at: None,
        };
        let stacks = vec![stacks("todo", 2, 3), stacks("blog", 1, 0)];
        assert_eq!(
            stack_listing(&stacks).render(None, false).unwrap(),
            "NAME      SERVICES   VERSION\nblog      1          -\ntodo      2          3\n"
        );
    }
}
