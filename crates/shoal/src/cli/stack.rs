//! `shoal stack …`: a stack is the set of services, networks, secrets and configs labelled
//! `com.docker.stack.namespace=NAME`. These commands deploy, list, inspect and remove such sets
//! the way `docker stack` does. `deploy` reads the Compose files with `shoal-compose` and sends
//! the whole stack to the managers, which validate it and apply it in one Raft entry (stored as
//! a numbered version: `history`, `rollback`, `diff`). Beyond docker, every deploy rotates
//! changed configs and secrets, honours Compose's `depends_on` (the managers hold dependents'
//! tasks) and waits for convergence unless `--detach` (also `stack wait`).

mod api;
pub(super) mod images;
pub(super) mod wait;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::client::{Client, Filters, Query};
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
    /// flag
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
    /// depends_on order: what every deploy does now (the managers hold each service's tasks
    /// until its dependencies' conditions hold); the flag stays for scripts
    #[arg(long, hide = true)]
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
/// does, printing the loader's warnings; each dependent service gets its `depends_on` as a
/// label the managers honour.
fn load_stack(
    args: &mut DeployArgs,
) -> Result<(
    shoal_compose::convert::Stack,
    shoal_compose::Project,
    Option<shoal_compose::depends::Order>,
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
    // depends_on, which Swarm ignores, is honoured by the managers (a label on each
    // dependent service, see `shoal_types::depends`); a cycle or an unknown service is refused
    // here, before anything is sent.
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
    Ok((stack, project, order))
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
/// (`--dry-run`: they say what would change), rotating changed configs and secrets.
async fn deploy(client: &Client, mut args: DeployArgs) -> Result<()> {
    let resolve_mode = images::Resolve::parse(args.resolve_image.as_deref())?;
    if args.order {
        eprintln!("Note: --order is what every deploy does now: the managers hold each service's tasks until its depends_on conditions hold (with --detach too, and across a leader change).");
    }
    let (mut stack, project, order) = load_stack(&mut args)?;
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
    let mut spec = api::stack_spec(&args.name, &stack, &project);
    spec.registry_auth = auths;
    if args.dry_run {
        let answer = api::deploy(client, &spec, true).await?;
        let (lines, changes) = api::plan_lines(&args.name, &answer);
        for line in lines {
            outln!("{line}");
        }
        for line in order.iter().flat_map(|o| start_order_lines(&args.name, o)) {
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

/// With `--dry-run`, the order in which the managers will let the services start: waves of
/// services, each with the dependencies' conditions it waits for.
fn start_order_lines(stack: &str, order: &shoal_compose::depends::Order) -> Vec<String> {
    let n = order.waves.len();
    let mut lines = vec![format!(
        "Start order (depends_on, held by the managers): {n} wave{}",
        if n == 1 { "" } else { "s" }
    )];
    for (i, wave) in order.waves.iter().enumerate() {
        let names: Vec<String> = wave.iter().map(|s| format!("{stack}_{s}")).collect();
        let after: std::collections::BTreeSet<String> = wave
            .iter()
            .flat_map(|s| order.dependencies.get(s).into_iter().flatten())
            .map(|d| format!("{stack}_{} ({})", d.service, d.condition))
            .collect();
        let mut line = format!("  {}. {}", i + 1, names.join(", "));
        if !after.is_empty() {
            let after: Vec<String> = after.into_iter().collect();
            line.push_str(&format!(" after {}", after.join(", ")));
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_compose::depends::{Condition, Dependency, Order};

    #[test]
    fn the_start_order_prints_each_wave_with_what_it_waits_for() {
        let dep = |service: &str, condition| Dependency {
            service: service.into(),
            condition,
            required: true,
            restart: false,
            pos: shoal_compose::yaml::Pos::new(&"f".into(), 1, 1),
        };
        let order = Order {
            dependencies: [
                ("db".to_string(), vec![]),
                ("migrate".to_string(), vec![]),
                (
                    "api".to_string(),
                    vec![
                        dep("db", Condition::Healthy),
                        dep("migrate", Condition::CompletedSuccessfully),
                    ],
                ),
                ("web".to_string(), vec![dep("api", Condition::Started)]),
            ]
            .into(),
            waves: vec![
                vec!["db".into(), "migrate".into()],
                vec!["api".into()],
                vec!["web".into()],
            ],
            warnings: vec![],
        };
        assert_eq!(
            start_order_lines("todo", &order),
            vec![
                "Start order (depends_on, held by the managers): 3 waves",
                "  1. todo_db, todo_migrate",
                "  2. todo_api after todo_db (service_healthy), todo_migrate (service_completed_successfully)",
                "  3. todo_web after todo_api (service_started)",
            ]
        );
    }

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
