//! `shoal service …`: builds ServiceSpecs from flags exactly as the docker CLI shapes them,
//! sends them to `/services`, and prints services and their tasks the way `docker service`
//! does. Names of networks, secrets and configs are resolved to IDs here, on the client, as
//! docker does; every other reference goes to the daemon as typed.

use std::collections::{BTreeMap, HashMap};

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::client::{encode, Client, Filters, Query};
use super::logs::{service_logs, LogsArgs};
use super::opts::{self, FileReference, Kind};
use super::table::{self, str_at, Listing};
use super::task::{list_tasks, task_listing, TaskOptions};
use super::{inspect, join_errors, object_at, version_index};

#[derive(clap::Subcommand, Debug)]
pub enum ServiceCmd {
    /// Create a new service
    Create(Box<CreateArgs>),
    /// List services
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more services
    Inspect(InspectArgs),
    /// Update a service
    Update(Box<UpdateArgs>),
    /// Scale one or multiple replicated services (SERVICE=REPLICAS…)
    Scale(ScaleArgs),
    /// Remove one or more services
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// List the tasks of one or more services
    Ps(PsArgs),
    /// Revert changes to a service's configuration
    Rollback(RollbackArgs),
    /// Fetch the logs of a service or task
    Logs(LogsArgs),
}

/// Resource limits and reservations (`--limit-*`, `--reserve-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ResourceFlags {
    /// Limit CPUs
    #[arg(long, value_name = "decimal")]
    pub limit_cpu: Option<String>,
    /// Limit memory (e.g. 100M)
    #[arg(long, value_name = "bytes")]
    pub limit_memory: Option<String>,
    /// Limit the number of processes (0 = unlimited)
    #[arg(long, value_name = "int")]
    pub limit_pids: Option<i64>,
    /// Reserve CPUs
    #[arg(long, value_name = "decimal")]
    pub reserve_cpu: Option<String>,
    /// Reserve memory (e.g. 100M)
    #[arg(long, value_name = "bytes")]
    pub reserve_memory: Option<String>,
}

/// The restart policy (`--restart-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RestartFlags {
    /// Restart when condition is met ("none", "on-failure", "any")
    #[arg(long, value_parser = ["none", "on-failure", "any"])]
    pub restart_condition: Option<String>,
    /// Delay between restart attempts (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub restart_delay: Option<String>,
    /// Maximum number of restarts before giving up
    #[arg(long, value_name = "uint")]
    pub restart_max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub restart_window: Option<String>,
}

/// The rolling-update configuration (`--update-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct UpdateConfigFlags {
    /// Maximum number of tasks updated simultaneously (0 to update all at once)
    #[arg(long, value_name = "uint")]
    pub update_parallelism: Option<u64>,
    /// Delay between updates (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub update_delay: Option<String>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub update_monitor: Option<String>,
    /// Action on update failure ("pause", "continue", "rollback")
    #[arg(long, value_parser = ["pause", "continue", "rollback"])]
    pub update_failure_action: Option<String>,
    /// Failure rate to tolerate during an update
    #[arg(long, value_name = "float")]
    pub update_max_failure_ratio: Option<f32>,
    /// Update order ("start-first", "stop-first")
    #[arg(long, value_parser = ["start-first", "stop-first"])]
    pub update_order: Option<String>,
}

/// The rollback configuration (`--rollback-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RollbackConfigFlags {
    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once)
    #[arg(long, value_name = "uint")]
    pub rollback_parallelism: Option<u64>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub rollback_delay: Option<String>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub rollback_monitor: Option<String>,
    /// Action on rollback failure ("pause", "continue")
    #[arg(long, value_parser = ["pause", "continue"])]
    pub rollback_failure_action: Option<String>,
    /// Failure rate to tolerate during a rollback
    #[arg(long, value_name = "float")]
    pub rollback_max_failure_ratio: Option<f32>,
    /// Rollback order ("start-first", "stop-first")
    #[arg(long, value_parser = ["start-first", "stop-first"])]
    pub rollback_order: Option<String>,
}

/// Container settings both `create` and `update` take.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ContainerFlags {
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container hostname
    #[arg(long)]
    pub hostname: Option<String>,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub stop_grace_period: Option<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "command")]
    pub entrypoint: Option<String>,
    /// Endpoint mode ("vip", "dnsrr")
    #[arg(long, value_parser = ["vip", "dnsrr"])]
    pub endpoint_mode: Option<String>,
    /// Maximum number of tasks per node (0 = unlimited)
    #[arg(long, value_name = "uint")]
    pub replicas_max_per_node: Option<u64>,
    /// Exit immediately instead of waiting for the service to converge (shoal never waits)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not query the registry to resolve image digest (shoal never does)
    #[arg(long)]
    pub no_resolve_image: bool,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Service name
    #[arg(long)]
    pub name: Option<String>,
    /// Number of tasks
    #[arg(long, value_name = "uint")]
    pub replicas: Option<u64>,
    /// Maximum number of job tasks running at the same time (replicated-job mode)
    #[arg(long, value_name = "uint")]
    pub max_concurrent: Option<u64>,
    /// Service mode ("replicated", "global", "replicated-job", "global-job")
    #[arg(long, default_value = "replicated",
          value_parser = ["replicated", "global", "replicated-job", "global-job"])]
    pub mode: String,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "file")]
    pub env_file: Vec<String>,
    /// Service labels
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    /// Container labels
    #[arg(long = "container-label", value_name = "K=V")]
    pub container_labels: Vec<String>,
    /// Publish a port as a node port ([PUBLISHED:]TARGET[/PROTO] or published=,target=,…)
    #[arg(short = 'p', long = "publish", value_name = "port")]
    pub publish: Vec<String>,
    /// Placement constraints
    #[arg(long = "constraint")]
    pub constraints: Vec<String>,
    /// Network attachments
    #[arg(long = "network")]
    pub networks: Vec<String>,
    /// Specify secrets to expose to the service
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// Specify configurations to expose to the service
    #[arg(long = "config")]
    pub configs: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=…,target=…,readonly)
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Use an init inside each service container to forward signals and reap processes
    #[arg(long)]
    pub init: bool,
    #[command(flatten)]
    pub container: ContainerFlags,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub restart: RestartFlags,
    #[command(flatten)]
    pub update: UpdateConfigFlags,
    #[command(flatten)]
    pub rollback: RollbackConfigFlags,
    /// The image, then the command and its arguments. Like docker, flags end at the image:
    /// everything after it belongs to the command.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub command: Vec<String>,
}

impl CreateArgs {
    /// The image to run.
    pub fn image(&self) -> &str {
        self.command.first().map_or("", String::as_str)
    }

    /// The command and arguments given after the image.
    pub fn args(&self) -> &[String] {
        self.command.get(1..).unwrap_or_default()
    }
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only display IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (id, label, mode, name)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Print the information in a human friendly format
    #[arg(long)]
    pub pretty: bool,
    /// Format output using a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct UpdateArgs {
    /// Service image tag
    #[arg(long)]
    pub image: Option<String>,
    /// Number of tasks
    #[arg(long, value_name = "uint")]
    pub replicas: Option<u64>,
    /// Service command args
    #[arg(long)]
    pub args: Option<String>,
    /// Add or update an environment variable
    #[arg(long = "env-add", value_name = "K=V")]
    pub env_add: Vec<String>,
    /// Remove an environment variable
    #[arg(long = "env-rm", value_name = "K")]
    pub env_rm: Vec<String>,
    /// Add or update a service label
    #[arg(long = "label-add", value_name = "K=V")]
    pub label_add: Vec<String>,
    /// Remove a label by its key
    #[arg(long = "label-rm", value_name = "K")]
    pub label_rm: Vec<String>,
    /// Add or update a container label
    #[arg(long = "container-label-add", value_name = "K=V")]
    pub container_label_add: Vec<String>,
    /// Remove a container label by its key
    #[arg(long = "container-label-rm", value_name = "K")]
    pub container_label_rm: Vec<String>,
    /// Add or update a published port
    #[arg(long = "publish-add", value_name = "port")]
    pub publish_add: Vec<String>,
    /// Remove a published port by its target port
    #[arg(long = "publish-rm", value_name = "port")]
    pub publish_rm: Vec<String>,
    /// Add or update a placement constraint
    #[arg(long = "constraint-add")]
    pub constraint_add: Vec<String>,
    /// Remove a constraint
    #[arg(long = "constraint-rm")]
    pub constraint_rm: Vec<String>,
    /// Add a network
    #[arg(long = "network-add")]
    pub network_add: Vec<String>,
    /// Remove a network
    #[arg(long = "network-rm")]
    pub network_rm: Vec<String>,
    /// Add or update a secret on a service
    #[arg(long = "secret-add")]
    pub secret_add: Vec<String>,
    /// Remove a secret
    #[arg(long = "secret-rm")]
    pub secret_rm: Vec<String>,
    /// Add or update a config file on a service
    #[arg(long = "config-add")]
    pub config_add: Vec<String>,
    /// Remove a configuration file
    #[arg(long = "config-rm")]
    pub config_rm: Vec<String>,
    /// Add or update a mount on a service
    #[arg(long = "mount-add")]
    pub mount_add: Vec<String>,
    /// Remove a mount by its target path
    #[arg(long = "mount-rm")]
    pub mount_rm: Vec<String>,
    /// Force update even if no changes require it
    #[arg(long)]
    pub force: bool,
    /// Rollback to previous specification
    #[arg(long)]
    pub rollback: bool,
    #[command(flatten)]
    pub container: ContainerFlags,
    #[command(flatten)]
    pub resources: ResourceFlags,
    #[command(flatten)]
    pub restart: RestartFlags,
    #[command(flatten)]
    pub update: UpdateConfigFlags,
    #[command(flatten)]
    pub rollback_config: RollbackConfigFlags,
    /// Service to update
    pub service: String,
}

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge (shoal never waits)
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub scales: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(clap::Args, Debug, Default)]
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
    /// Filter output based on conditions provided (desired-state, id, name, node)
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// Exit immediately instead of waiting for the service to converge (shoal never waits)
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    pub service: String,
}

pub async fn run(client: &Client, cmd: ServiceCmd) -> Result<()> {
    match cmd {
        ServiceCmd::Create(args) => create(client, *args).await,
        ServiceCmd::Ls(args) => list(client, args).await,
        ServiceCmd::Inspect(args) => inspect_services(client, args).await,
        ServiceCmd::Update(args) => update(client, *args).await,
        ServiceCmd::Scale(args) => scale(client, args).await,
        ServiceCmd::Rm(args) => remove(client, args).await,
        ServiceCmd::Ps(args) => ps(client, args).await,
        ServiceCmd::Logs(args) => service_logs(client, args).await,
        ServiceCmd::Rollback(args) => {
            let update_args = UpdateArgs {
                rollback: true,
                service: args.service,
                ..UpdateArgs::default()
            };
            update(client, update_args).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// create

/// Names already resolved to IDs for a spec: network IDs, secret and config references.
#[derive(Debug, Default)]
pub struct Resolved {
    pub networks: Vec<String>,
    pub secrets: Vec<Value>,
    pub configs: Vec<Value>,
}

async fn create(client: &Client, args: CreateArgs) -> Result<()> {
    let resolved = Resolved {
        networks: resolve_networks(client, &args.networks).await?,
        secrets: resolve_references(client, Kind::Secret, &parse_refs(&args.secrets)?).await?,
        configs: resolve_references(client, Kind::Config, &parse_refs(&args.configs)?).await?,
    };
    let spec = build_spec(&args, &resolved)?;
    let response = client.post("/services/create", &spec).await?;
    print_warnings(&response);
    outln!("{}", str_at(&response, &["ID"]));
    Ok(())
}

/// The ServiceSpec `docker service create` sends for these flags.
pub fn build_spec(args: &CreateArgs, resolved: &Resolved) -> Result<Value> {
    let mode = service_mode(args)?;
    let update_config = update_config(None, &args.update)?;
    let rollback_config = rollback_config(None, &args.rollback)?;
    let is_job = args.mode.ends_with("-job");
    if is_job && (update_config.is_some() || rollback_config.is_some()) {
        bail!("update and rollback configuration is not supported for jobs");
    }

    let mut env = Vec::new();
    for file in &args.env_file {
        env.extend(read_env_file(file)?);
    }
    env.extend(args.env.iter().cloned());
    let env = opts::env_list(&env);

    let mut container = json!({
        "Image": opts::image_with_tag(args.image()),
        "Init": args.init,
        "DNSConfig": {},
    });
    let c = container.as_object_mut().expect("object");
    if !args.args().is_empty() {
        c.insert("Args".into(), json!(args.args()));
    }
    if !env.is_empty() {
        c.insert("Env".into(), json!(env));
    }
    if !args.container_labels.is_empty() {
        c.insert("Labels".into(), opts::kv_json(&args.container_labels));
    }
    if args.tty {
        c.insert("TTY".into(), json!(true));
    }
    if args.read_only {
        c.insert("ReadOnly".into(), json!(true));
    }
    if !args.mounts.is_empty() {
        let mounts = args
            .mounts
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<Vec<_>>>()?;
        c.insert("Mounts".into(), json!(mounts));
    }
    if !resolved.secrets.is_empty() {
        c.insert("Secrets".into(), json!(resolved.secrets));
    }
    if !resolved.configs.is_empty() {
        c.insert("Configs".into(), json!(resolved.configs));
    }
    apply_container_flags(&mut container, &args.container)?;

    let mut resources = json!({"Limits": {}, "Reservations": {}});
    apply_resources(&mut resources, &args.resources)?;

    let mut placement = json!({});
    if !args.constraints.is_empty() {
        placement["Constraints"] = json!(args.constraints);
    }
    if let Some(max) = args.container.replicas_max_per_node.filter(|m| *m > 0) {
        placement["MaxReplicas"] = json!(max);
    }

    let mut task = json!({
        "ContainerSpec": container,
        "Resources": resources,
        "Placement": placement,
        "ForceUpdate": 0,
        "Runtime": "container",
    });
    if let Some(policy) = restart_policy(None, &args.restart)? {
        task["RestartPolicy"] = policy;
    }
    if !resolved.networks.is_empty() {
        let mut targets = resolved.networks.clone();
        targets.sort();
        task["Networks"] = json!(targets
            .iter()
            .map(|t| json!({"Target": t}))
            .collect::<Vec<_>>());
    }

    let mut endpoint = json!({
        "Mode": args.container.endpoint_mode.as_deref().unwrap_or("vip"),
    });
    let mut ports = Vec::new();
    for publish in &args.publish {
        ports.extend(opts::parse_publish(publish)?);
    }
    if !ports.is_empty() {
        endpoint["Ports"] = json!(ports);
    }

    let mut spec = json!({
        "Labels": opts::kv_json(&args.labels),
        "TaskTemplate": task,
        "Mode": mode,
        "EndpointSpec": endpoint,
    });
    if let Some(name) = args.name.as_deref().filter(|n| !n.is_empty()) {
        spec["Name"] = json!(name);
    }
    if let Some(config) = update_config {
        spec["UpdateConfig"] = config;
    }
    if let Some(config) = rollback_config {
        spec["RollbackConfig"] = config;
    }
    Ok(spec)
}

fn service_mode(args: &CreateArgs) -> Result<Value> {
    let max_per_node = args.container.replicas_max_per_node.unwrap_or(0) > 0;
    Ok(match args.mode.as_str() {
        "global" | "global-job" => {
            anyhow::ensure!(
                args.replicas.is_none(),
                "replicas can only be used with replicated or replicated-job mode"
            );
            anyhow::ensure!(
                !max_per_node,
                "replicas-max-per-node can only be used with replicated or replicated-job mode"
            );
            anyhow::ensure!(
                args.max_concurrent.is_none(),
                "max-concurrent can only be used with replicated-job mode"
            );
            if args.mode == "global" {
                json!({"Global": {}})
            } else {
                json!({"GlobalJob": {}})
            }
        }
        "replicated" => {
            anyhow::ensure!(
                args.max_concurrent.is_none(),
                "max-concurrent can only be used with replicated-job mode"
            );
            match args.replicas {
                Some(n) => json!({"Replicated": {"Replicas": n}}),
                None => json!({"Replicated": {}}),
            }
        }
        "replicated-job" => {
            let mut job = Map::new();
            if let Some(c) = args.max_concurrent.or(args.replicas) {
                job.insert("MaxConcurrent".into(), json!(c));
            }
            if let Some(n) = args.replicas {
                job.insert("TotalCompletions".into(), json!(n));
            }
            json!({"ReplicatedJob": job})
        }
        other => bail!("Unknown mode: {other}, only replicated and global supported"),
    })
}

fn read_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading env file {path}"))?;
    Ok(text
        .lines()
        .map(str::trim_start)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// A `--mount` value (`type=…,source=…,target=…,readonly`) as a swarm Mount.
fn parse_mount(s: &str) -> Result<Value> {
    let mut mount = Map::new();
    mount.insert("Type".into(), json!("volume"));
    for field in s.split(',') {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v)),
            None => (field.to_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("type", Some(v)) => {
                anyhow::ensure!(
                    matches!(v, "bind" | "volume" | "tmpfs"),
                    "invalid mount type {v:?}: use bind, volume or tmpfs"
                );
                mount.insert("Type".into(), json!(v));
            }
            ("source" | "src", Some(v)) => {
                mount.insert("Source".into(), json!(v));
            }
            ("target" | "dst" | "destination", Some(v)) => {
                mount.insert("Target".into(), json!(v));
            }
            ("readonly" | "ro", None) => {
                mount.insert("ReadOnly".into(), json!(true));
            }
            ("readonly" | "ro", Some(v)) => {
                let ro = matches!(v.to_lowercase().as_str(), "1" | "true");
                anyhow::ensure!(
                    ro || matches!(v.to_lowercase().as_str(), "0" | "false"),
                    "invalid value for readonly: {v}"
                );
                if ro {
                    mount.insert("ReadOnly".into(), json!(true));
                }
            }
            _ => bail!("unexpected key '{key}' in '{field}'"),
        }
    }
    anyhow::ensure!(mount.contains_key("Target"), "target is required");
    Ok(Value::Object(mount))
}

/// The container flags `create` and `update` share, applied onto a ContainerSpec (the endpoint
/// mode and max-replicas flags live elsewhere in the spec; the callers apply those).
fn apply_container_flags(container: &mut Value, flags: &ContainerFlags) -> Result<()> {
    let c = object_at(container, &[]);
    if let Some(dir) = &flags.workdir {
        c.insert("Dir".into(), json!(dir));
    }
    if let Some(user) = &flags.user {
        c.insert("User".into(), json!(user));
    }
    if let Some(hostname) = &flags.hostname {
        c.insert("Hostname".into(), json!(hostname));
    }
    if let Some(signal) = &flags.stop_signal {
        c.insert("StopSignal".into(), json!(signal));
    }
    if let Some(grace) = &flags.stop_grace_period {
        c.insert(
            "StopGracePeriod".into(),
            json!(opts::parse_duration(grace)?),
        );
    }
    if let Some(entrypoint) = &flags.entrypoint {
        let words: Vec<&str> = entrypoint.split_whitespace().collect();
        if words.is_empty() {
            c.remove("Command");
        } else {
            c.insert("Command".into(), json!(words));
        }
    }
    Ok(())
}

fn apply_resources(resources: &mut Value, flags: &ResourceFlags) -> Result<()> {
    let mut set = |section: &str, key: &str, value: Option<i64>| {
        if let Some(value) = value {
            let obj = object_at(resources, &[section]);
            if value == 0 {
                obj.remove(key);
            } else {
                obj.insert(key.into(), json!(value));
            }
        }
    };
    set(
        "Limits",
        "NanoCPUs",
        flags
            .limit_cpu
            .as_deref()
            .map(opts::parse_nano_cpus)
            .transpose()?,
    );
    set(
        "Limits",
        "MemoryBytes",
        flags
            .limit_memory
            .as_deref()
            .map(opts::parse_memory)
            .transpose()?,
    );
    set("Limits", "Pids", flags.limit_pids);
    set(
        "Reservations",
        "NanoCPUs",
        flags
            .reserve_cpu
            .as_deref()
            .map(opts::parse_nano_cpus)
            .transpose()?,
    );
    set(
        "Reservations",
        "MemoryBytes",
        flags
            .reserve_memory
            .as_deref()
            .map(opts::parse_memory)
            .transpose()?,
    );
    Ok(())
}

/// The restart policy after the flags, starting from `current` (or swarm's defaults) when any
/// restart flag is given; None when none is and there is no current policy.
fn restart_policy(current: Option<&Value>, flags: &RestartFlags) -> Result<Option<Value>> {
    let any = flags.restart_condition.is_some()
        || flags.restart_delay.is_some()
        || flags.restart_max_attempts.is_some()
        || flags.restart_window.is_some();
    if !any {
        return Ok(current.cloned());
    }
    let mut policy = match current {
        Some(p) if p.is_object() => p.clone(),
        _ => json!({"Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0}),
    };
    if let Some(condition) = &flags.restart_condition {
        policy["Condition"] = json!(condition);
    }
    if let Some(delay) = &flags.restart_delay {
        policy["Delay"] = json!(opts::parse_duration(delay)?);
    }
    if let Some(attempts) = flags.restart_max_attempts {
        policy["MaxAttempts"] = json!(attempts);
    }
    if let Some(window) = &flags.restart_window {
        policy["Window"] = json!(opts::parse_duration(window)?);
    }
    Ok(Some(policy))
}

/// Swarm's default update/rollback config, as the docker CLI fills it in.
fn default_update_config() -> Value {
    json!({
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000i64,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    })
}

struct ConfigFlags<'a> {
    parallelism: Option<u64>,
    delay: Option<&'a str>,
    monitor: Option<&'a str>,
    failure_action: Option<&'a str>,
    max_failure_ratio: Option<f32>,
    order: Option<&'a str>,
}

fn apply_config_flags(current: Option<&Value>, f: ConfigFlags<'_>) -> Result<Option<Value>> {
    let any = f.parallelism.is_some()
        || f.delay.is_some()
        || f.monitor.is_some()
        || f.failure_action.is_some()
        || f.max_failure_ratio.is_some()
        || f.order.is_some();
    if !any {
        return Ok(current.cloned());
    }
    let mut config = match current {
        Some(c) if c.is_object() => c.clone(),
        _ => default_update_config(),
    };
    let c = object_at(&mut config, &[]);
    if let Some(p) = f.parallelism {
        c.insert("Parallelism".into(), json!(p));
    }
    if let Some(d) = f.delay {
        let d = opts::parse_duration(d)?;
        if d == 0 {
            c.remove("Delay");
        } else {
            c.insert("Delay".into(), json!(d));
        }
    }
    if let Some(m) = f.monitor {
        let m = opts::parse_duration(m)?;
        if m == 0 {
            c.remove("Monitor");
        } else {
            c.insert("Monitor".into(), json!(m));
        }
    }
    if let Some(a) = f.failure_action {
        c.insert("FailureAction".into(), json!(a));
    }
    if let Some(r) = f.max_failure_ratio {
        // f32 → f64 through its decimal text, so 0.1 stays 0.1 in the JSON.
        let r: f64 = r.to_string().parse().unwrap_or(f64::from(r));
        c.insert("MaxFailureRatio".into(), json!(r));
    }
    if let Some(o) = f.order {
        c.insert("Order".into(), json!(o));
    }
    Ok(Some(config))
}

fn update_config(current: Option<&Value>, flags: &UpdateConfigFlags) -> Result<Option<Value>> {
    apply_config_flags(
        current,
        ConfigFlags {
            parallelism: flags.update_parallelism,
            delay: flags.update_delay.as_deref(),
            monitor: flags.update_monitor.as_deref(),
            failure_action: flags.update_failure_action.as_deref(),
            max_failure_ratio: flags.update_max_failure_ratio,
            order: flags.update_order.as_deref(),
        },
    )
}

fn rollback_config(current: Option<&Value>, flags: &RollbackConfigFlags) -> Result<Option<Value>> {
    apply_config_flags(
        current,
        ConfigFlags {
            parallelism: flags.rollback_parallelism,
            delay: flags.rollback_delay.as_deref(),
            monitor: flags.rollback_monitor.as_deref(),
            failure_action: flags.rollback_failure_action.as_deref(),
            max_failure_ratio: flags.rollback_max_failure_ratio,
            order: flags.rollback_order.as_deref(),
        },
    )
}

fn print_warnings(response: &Value) {
    if let Some(warnings) = response.get("Warnings").and_then(Value::as_array) {
        for warning in warnings.iter().filter_map(Value::as_str) {
            eprintln!("{warning}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// name resolution

fn parse_refs(values: &[String]) -> Result<Vec<FileReference>> {
    values.iter().map(|v| FileReference::parse(v)).collect()
}

/// Network names (or IDs) to IDs, via `GET /networks/{name}`.
async fn resolve_networks(client: &Client, names: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for name in names {
        ids.push(resolve_network(client, name).await?);
    }
    Ok(ids)
}

async fn resolve_network(client: &Client, name: &str) -> Result<String> {
    match client.get(&format!("/networks/{}", encode(name))).await {
        Ok(network) => Ok(str_at(&network, &["Id"]).to_string()),
        Err(err) if super::client::is_not_found(&err) => bail!("network {name} not found"),
        Err(err) => Err(err),
    }
}

/// Secret or config references with their IDs filled in, looked up by exact name as docker's
/// `ParseSecrets`/`ParseConfigs` do.
async fn resolve_references(
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

fn reference_json(kind: Kind, r: &FileReference, id: &str) -> Value {
    match kind {
        Kind::Secret => json!({"File": r.file_json(), "SecretID": id, "SecretName": r.source}),
        Kind::Config => json!({"File": r.file_json(), "ConfigID": id, "ConfigName": r.source}),
    }
}

// ---------------------------------------------------------------------------------------------
// update, scale, rollback

/// What `update` resolved on the client before changing the spec.
#[derive(Debug, Default)]
pub struct UpdateResolved {
    pub network_add: Vec<String>,
    pub network_rm: Vec<String>,
    pub secret_add: Vec<Value>,
    pub config_add: Vec<Value>,
}

async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let service = client
        .get(&format!("/services/{}", encode(&args.service)))
        .await?;
    let id = str_at(&service, &["ID"]).to_string();
    let version = version_index(&service);
    let current = service.get("Spec").cloned().unwrap_or_else(|| json!({}));

    let resolved = UpdateResolved {
        network_add: resolve_networks(client, &args.network_add).await?,
        network_rm: {
            // A network that no longer exists can still be detached by the name typed.
            let mut ids = Vec::new();
            for name in &args.network_rm {
                ids.push(
                    resolve_network(client, name)
                        .await
                        .unwrap_or_else(|_| name.clone()),
                );
            }
            ids
        },
        secret_add: resolve_references(client, Kind::Secret, &parse_refs(&args.secret_add)?)
            .await?,
        config_add: resolve_references(client, Kind::Config, &parse_refs(&args.config_add)?)
            .await?,
    };
    let mut spec = current.clone();
    apply_update(&mut spec, &args, &resolved)?;

    let mut query = Query::new().push("version", version.to_string());
    if args.rollback {
        anyhow::ensure!(
            spec == current,
            "other flags may not be combined with --rollback"
        );
        query = query.push("rollback", "previous");
    }
    let response = client
        .post(
            &query.to_path(&format!("/services/{}/update", encode(&id))),
            &spec,
        )
        .await?;
    print_warnings(&response);
    outln!("{}", args.service);
    Ok(())
}

/// Applies `service update` flags onto a ServiceSpec, as docker's `updateService` does.
pub fn apply_update(spec: &mut Value, args: &UpdateArgs, resolved: &UpdateResolved) -> Result<()> {
    // Service labels.
    if !args.label_add.is_empty() || !args.label_rm.is_empty() {
        let labels = object_at(spec, &["Labels"]);
        for key in &args.label_rm {
            labels.remove(key);
        }
        for (k, v) in opts::kv_map(&args.label_add) {
            labels.insert(k, json!(v));
        }
    }

    // Replicas.
    if let Some(replicas) = args.replicas {
        let mode = object_at(spec, &["Mode"]);
        if let Some(replicated) = mode.get_mut("Replicated") {
            *object_at(replicated, &[])
                .entry("Replicas")
                .or_insert(json!(0)) = json!(replicas);
        } else if let Some(job) = mode.get_mut("ReplicatedJob") {
            *object_at(job, &[])
                .entry("TotalCompletions")
                .or_insert(json!(0)) = json!(replicas);
        } else {
            bail!("replicas can only be used with replicated or replicated-job mode");
        }
    }

    // Container spec.
    {
        if !spec
            .pointer("/TaskTemplate/ContainerSpec")
            .is_some_and(Value::is_object)
        {
            object_at(spec, &["TaskTemplate", "ContainerSpec"]);
        }
        let container = spec
            .pointer_mut("/TaskTemplate/ContainerSpec")
            .expect("ensured above");
        if let Some(image) = &args.image {
            container["Image"] = json!(opts::image_with_tag(image));
        }
        if let Some(a) = &args.args {
            let words: Vec<&str> = a.split_whitespace().collect();
            let c = object_at(container, &[]);
            if words.is_empty() {
                c.remove("Args");
            } else {
                c.insert("Args".into(), json!(words));
            }
        }
        update_env(container, &args.env_add, &args.env_rm);
        if !args.container_label_add.is_empty() || !args.container_label_rm.is_empty() {
            let c = object_at(container, &[]);
            let mut labels = c.get("Labels").cloned().unwrap_or_else(|| json!({}));
            let l = object_at(&mut labels, &[]);
            for key in &args.container_label_rm {
                l.remove(key);
            }
            for (k, v) in opts::kv_map(&args.container_label_add) {
                l.insert(k, json!(v));
            }
            if l.is_empty() {
                c.remove("Labels");
            } else {
                c.insert("Labels".into(), labels);
            }
        }
        update_list(
            container,
            "Mounts",
            |m| args.mount_rm.iter().any(|t| str_at(m, &["Target"]) == t),
            args.mount_add
                .iter()
                .map(|m| parse_mount(m))
                .collect::<Result<Vec<_>>>()?,
            |a, b| str_at(a, &["Target"]) == str_at(b, &["Target"]),
        );
        update_list(
            container,
            "Secrets",
            |s| {
                args.secret_rm
                    .iter()
                    .any(|r| str_at(s, &["SecretName"]) == r || str_at(s, &["SecretID"]) == r)
            },
            resolved.secret_add.clone(),
            |a, b| str_at(a, &["File", "Name"]) == str_at(b, &["File", "Name"]),
        );
        update_list(
            container,
            "Configs",
            |s| {
                args.config_rm
                    .iter()
                    .any(|r| str_at(s, &["ConfigName"]) == r || str_at(s, &["ConfigID"]) == r)
            },
            resolved.config_add.clone(),
            |a, b| str_at(a, &["File", "Name"]) == str_at(b, &["File", "Name"]),
        );
        apply_container_flags(container, &args.container)?;
    }

    // Task template: placement, resources, restart policy, networks, force.
    {
        let task = object_at(spec, &["TaskTemplate"]);
        if !args.constraint_add.is_empty() || !args.constraint_rm.is_empty() {
            let mut placement = task.get("Placement").cloned().unwrap_or_else(|| json!({}));
            let p = object_at(&mut placement, &[]);
            let mut constraints: Vec<String> = p
                .get("Constraints")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            constraints.extend(args.constraint_add.iter().cloned());
            constraints.retain(|c| !args.constraint_rm.contains(c));
            constraints.sort();
            constraints.dedup();
            if constraints.is_empty() {
                p.remove("Constraints");
            } else {
                p.insert("Constraints".into(), json!(constraints));
            }
            task.insert("Placement".into(), placement);
        }
        if let Some(max) = args.container.replicas_max_per_node {
            let p = object_at(task.entry("Placement").or_insert_with(|| json!({})), &[]);
            if max == 0 {
                p.remove("MaxReplicas");
            } else {
                p.insert("MaxReplicas".into(), json!(max));
            }
        }
        let mut resources = task.get("Resources").cloned().unwrap_or_else(|| json!({}));
        apply_resources(&mut resources, &args.resources)?;
        if resources != json!({}) {
            task.insert("Resources".into(), resources);
        }
        if let Some(policy) = restart_policy(task.get("RestartPolicy"), &args.restart)? {
            task.insert("RestartPolicy".into(), policy);
        }
        if !resolved.network_add.is_empty() || !resolved.network_rm.is_empty() {
            let mut networks: Vec<Value> = task
                .get("Networks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            networks.retain(|n| {
                !resolved
                    .network_rm
                    .iter()
                    .any(|r| str_at(n, &["Target"]) == r)
            });
            for id in &resolved.network_add {
                if !networks.iter().any(|n| str_at(n, &["Target"]) == id) {
                    networks.push(json!({"Target": id}));
                }
            }
            networks.sort_by(|a, b| str_at(a, &["Target"]).cmp(str_at(b, &["Target"])));
            if networks.is_empty() {
                task.remove("Networks");
            } else {
                task.insert("Networks".into(), json!(networks));
            }
        }
        if args.force {
            let force = task.get("ForceUpdate").and_then(Value::as_u64).unwrap_or(0);
            task.insert("ForceUpdate".into(), json!(force + 1));
        }
    }

    // Update and rollback configs.
    let obj = object_at(spec, &[]);
    if let Some(config) = update_config(obj.get("UpdateConfig"), &args.update)? {
        obj.insert("UpdateConfig".into(), config);
    }
    if let Some(config) = rollback_config(obj.get("RollbackConfig"), &args.rollback_config)? {
        obj.insert("RollbackConfig".into(), config);
    }

    // Endpoint: mode and published ports.
    if args.container.endpoint_mode.is_some()
        || !args.publish_add.is_empty()
        || !args.publish_rm.is_empty()
    {
        let endpoint = object_at(spec, &["EndpointSpec"]);
        if let Some(mode) = &args.container.endpoint_mode {
            endpoint.insert("Mode".into(), json!(mode));
        }
        let mut ports: Vec<Value> = endpoint
            .get("Ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut remove = Vec::new();
        for p in &args.publish_rm {
            remove.extend(opts::parse_publish(p)?);
        }
        ports.retain(|port| !remove.iter().any(|r| same_target(port, r)));
        for p in &args.publish_add {
            for port in opts::parse_publish(p)? {
                if !ports
                    .iter()
                    .any(|existing| port_key(existing) == port_key(&port))
                {
                    ports.push(port);
                }
            }
        }
        ports.sort_by_key(port_key);
        if ports.is_empty() {
            endpoint.remove("Ports");
        } else {
            endpoint.insert("Ports".into(), json!(ports));
        }
    }
    Ok(())
}

fn update_env(container: &mut Value, add: &[String], remove: &[String]) {
    if add.is_empty() && remove.is_empty() {
        return;
    }
    let c = object_at(container, &[]);
    let mut env: Vec<String> = c
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    env.retain(|e| !remove.iter().any(|r| opts::env_key(e) == opts::env_key(r)));
    for entry in opts::env_list(add) {
        match env
            .iter_mut()
            .find(|e| opts::env_key(e) == opts::env_key(&entry))
        {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    if env.is_empty() {
        c.remove("Env");
    } else {
        c.insert("Env".into(), json!(env));
    }
}

/// Removes the entries of the array `key` that `remove` picks, then adds `add`, replacing an
/// entry that `same` says is the same one.
fn update_list(
    container: &mut Value,
    key: &str,
    remove: impl Fn(&Value) -> bool,
    add: Vec<Value>,
    same: impl Fn(&Value, &Value) -> bool,
) {
    let c = object_at(container, &[]);
    let mut items: Vec<Value> = c
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let before = items.clone();
    items.retain(|item| !remove(item));
    for new in add {
        items.retain(|item| !same(item, &new));
        items.push(new);
    }
    if items == before {
        return;
    }
    if items.is_empty() {
        c.remove(key);
    } else {
        c.insert(key.into(), json!(items));
    }
}

/// Docker's `portConfigToString`: `published:target/protocol/mode`.
fn port_key(port: &Value) -> String {
    format!(
        "{}:{}/{}/{}",
        port.get("PublishedPort")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        port.get("TargetPort").and_then(Value::as_u64).unwrap_or(0),
        non_empty(str_at(port, &["Protocol"]), "tcp"),
        non_empty(str_at(port, &["PublishMode"]), "ingress"),
    )
}

fn same_target(port: &Value, removal: &Value) -> bool {
    port.get("TargetPort") == removal.get("TargetPort")
        && non_empty(str_at(port, &["Protocol"]), "tcp")
            == non_empty(str_at(removal, &["Protocol"]), "tcp")
        && non_empty(str_at(port, &["PublishMode"]), "ingress")
            == non_empty(str_at(removal, &["PublishMode"]), "ingress")
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}

async fn scale(client: &Client, args: ScaleArgs) -> Result<()> {
    let mut requests = Vec::new();
    for arg in &args.scales {
        let (name, replicas) = arg.split_once('=').with_context(|| {
            format!("invalid scale specifier '{arg}'.\nSee 'shoal service scale --help'.")
        })?;
        let replicas: u64 = replicas.parse().with_context(|| {
            format!("invalid replicas value {replicas}: must be a positive integer")
        })?;
        requests.push((name.to_string(), replicas));
    }
    let mut errors = Vec::new();
    for (name, replicas) in requests {
        match scale_one(client, &name, replicas).await {
            Ok(()) => outln!("{name} scaled to {replicas}"),
            Err(err) => errors.push(format!("{name}: {err}")),
        }
    }
    join_errors(errors)
}

async fn scale_one(client: &Client, name: &str, replicas: u64) -> Result<()> {
    let service = client.get(&format!("/services/{}", encode(name))).await?;
    let mut spec = service.get("Spec").cloned().unwrap_or_else(|| json!({}));
    let mode = object_at(&mut spec, &["Mode"]);
    if let Some(replicated) = mode.get_mut("Replicated") {
        object_at(replicated, &[]).insert("Replicas".into(), json!(replicas));
    } else if let Some(job) = mode.get_mut("ReplicatedJob") {
        object_at(job, &[]).insert("TotalCompletions".into(), json!(replicas));
    } else {
        bail!("scale can only be used with replicated or replicated-job mode");
    }
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

async fn remove(client: &Client, args: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for service in &args.services {
        match client
            .delete(&format!("/services/{}", encode(service)))
            .await
        {
            Ok(()) => outln!("{service}"),
            Err(err) => errors.push(err.to_string()),
        }
    }
    join_errors(errors)
}

// ---------------------------------------------------------------------------------------------
// ls

async fn list(client: &Client, args: ListArgs) -> Result<()> {
    let filters = Filters::parse(&args.filters)?;
    let services = list_services(client, &filters).await?;
    service_listing(&services).print(args.format.as_deref(), args.quiet)
}

/// `GET /services?status=true` with these filters.
pub async fn list_services(client: &Client, filters: &Filters) -> Result<Vec<Value>> {
    let path = Query::new()
        .push("status", "true")
        .filters(filters)
        .to_path("/services");
    let services = client.get(&path).await?;
    Ok(services.as_array().cloned().unwrap_or_default())
}

/// The `service ls` table (sorted by name) and its records.
pub fn service_listing(services: &[Value]) -> Listing {
    let mut services: Vec<&Value> = services.iter().collect();
    services.sort_by(|a, b| {
        table::natural_cmp(str_at(a, &["Spec", "Name"]), str_at(b, &["Spec", "Name"]))
    });
    let mut listing = Listing::new(&["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]);
    for service in services {
        let row = vec![
            table::truncate_id(str_at(service, &["ID"])),
            str_at(service, &["Spec", "Name"]).to_string(),
            mode_name(service).to_string(),
            replicas(service),
            table::image_without_digest(str_at(
                service,
                &["Spec", "TaskTemplate", "ContainerSpec", "Image"],
            )),
            ports(service),
        ];
        let record = json!({
            "ID": row[0], "Name": row[1], "Mode": row[2],
            "Replicas": row[3], "Image": row[4], "Ports": row[5],
        });
        listing.push(row, record);
    }
    listing
}

fn mode_name(service: &Value) -> &'static str {
    let mode = service.pointer("/Spec/Mode");
    let has = |key: &str| mode.and_then(|m| m.get(key)).is_some_and(|v| !v.is_null());
    if has("Global") {
        "global"
    } else if has("Replicated") {
        "replicated"
    } else if has("ReplicatedJob") {
        "replicated job"
    } else if has("GlobalJob") {
        "global job"
    } else {
        ""
    }
}

fn replicas(service: &Value) -> String {
    let count = |key: &str| {
        service
            .pointer(&format!("/ServiceStatus/{key}"))
            .and_then(Value::as_u64)
    };
    let desired_from_spec = service
        .pointer("/Spec/Mode/Replicated/Replicas")
        .and_then(Value::as_u64);
    let running = count("RunningTasks").unwrap_or(0);
    let desired = count("DesiredTasks").or(desired_from_spec).unwrap_or(0);
    let completed = count("CompletedTasks").unwrap_or(0);
    if let Some(job) = service
        .pointer("/Spec/Mode/ReplicatedJob")
        .filter(|j| !j.is_null())
    {
        let total = job
            .get("TotalCompletions")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        return format!("{running}/{desired} ({completed}/{total} completed)");
    }
    if service
        .pointer("/Spec/Mode/GlobalJob")
        .is_some_and(|j| !j.is_null())
    {
        return format!(
            "{running}/{desired} ({completed}/{} completed)",
            desired + completed
        );
    }
    let max = service
        .pointer("/Spec/TaskTemplate/Placement/MaxReplicas")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if max > 0 && mode_name(service) == "replicated" {
        return format!("{running}/{desired} (max {max} per node)");
    }
    format!("{running}/{desired}")
}

/// Ingress-published ports, grouped into ranges like `docker service ls` does: consecutive
/// published ports onto consecutive (or one) target ports become `*:8080-8081->80-81/tcp`.
fn ports(service: &Value) -> String {
    let mut ports: Vec<(String, i64, i64)> = service
        .pointer("/Endpoint/Ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|p| non_empty(str_at(p, &["PublishMode"]), "ingress") == "ingress")
        .map(|p| {
            (
                str_at(p, &["Protocol"]).to_string(),
                p.get("PublishedPort").and_then(Value::as_i64).unwrap_or(0),
                p.get("TargetPort").and_then(Value::as_i64).unwrap_or(0),
            )
        })
        .collect();
    ports.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));

    struct Range {
        protocol: String,
        p_start: i64,
        p_end: i64,
        t_start: i64,
        t_end: i64,
    }
    let show = |r: &Range| {
        let side = |s: i64, e: i64| {
            if e > s {
                format!("{s}-{e}")
            } else {
                s.to_string()
            }
        };
        format!(
            "*:{}->{}/{}",
            side(r.p_start, r.p_end),
            side(r.t_start, r.t_end),
            r.protocol
        )
    };
    let mut out = Vec::new();
    let mut current: Option<Range> = None;
    for (protocol, published, target) in ports {
        if let Some(r) = current.as_mut() {
            let is_range = r.t_end != r.t_start;
            let gap = |d: i64| !(0..=1).contains(&d);
            let starts_new = r.protocol != protocol
                || gap(published - r.p_end)
                || gap(target - r.t_end)
                || (is_range && target <= r.t_end);
            if !starts_new {
                r.p_end = published;
                r.t_end = target;
                continue;
            }
            if r.p_start > 0 {
                out.push(show(r));
            }
        }
        current = Some(Range {
            protocol,
            p_start: published,
            p_end: published,
            t_start: target,
            t_end: target,
        });
    }
    if let Some(r) = current.filter(|r| r.p_start > 0) {
        out.push(show(&r));
    }
    out.join(", ")
}

// ---------------------------------------------------------------------------------------------
// inspect

async fn inspect_services(client: &Client, args: InspectArgs) -> Result<()> {
    if !args.pretty {
        return inspect(
            client,
            "/services",
            &args.services,
            args.format.as_deref(),
            None,
        )
        .await;
    }
    let (found, errors) = super::fetch_each(client, "/services", &args.services).await;
    for raw in found {
        let service: Value = serde_json::from_str(&raw).context("decoding a service")?;
        let mut network_names = BTreeMap::new();
        for network in service
            .pointer("/Spec/TaskTemplate/Networks")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let target = str_at(network, &["Target"]);
            if let Ok(n) = client.get(&format!("/networks/{}", encode(target))).await {
                network_names.insert(target.to_string(), str_at(&n, &["Name"]).to_string());
            }
        }
        outln!("{}", pretty(&service, &network_names, chrono::Utc::now()));
    }
    join_errors(errors)
}

/// `docker service inspect --pretty`.
pub fn pretty(
    service: &Value,
    network_names: &BTreeMap<String, String>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let spec = service.get("Spec").cloned().unwrap_or(Value::Null);
    let s = |path: &[&str]| str_at(&spec, path).to_string();
    let num = |ptr: &str| spec.pointer(ptr).and_then(Value::as_i64).unwrap_or(0);
    let mut out = String::from("\n");
    out += &format!("ID:\t\t{}\n", str_at(service, &["ID"]));
    out += &format!("Name:\t\t{}", s(&["Name"]));
    if let Some(labels) = spec
        .get("Labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
    {
        out += "\nLabels:";
        for (k, v) in labels {
            let v = v.as_str().unwrap_or("");
            out += &if v.is_empty() {
                format!("\n {k}")
            } else {
                format!("\n {k}={v}")
            };
        }
    }
    out += "\nService Mode:";
    match mode_name(service) {
        "global" => out += "\tGlobal",
        "replicated" => {
            out += "\tReplicated";
            if let Some(n) = spec
                .pointer("/Mode/Replicated/Replicas")
                .and_then(Value::as_u64)
            {
                out += &format!("\n Replicas:\t{n}");
            }
        }
        _ => {}
    }
    if let Some(status) = service
        .get("UpdateStatus")
        .filter(|u| !str_at(u, &["State"]).is_empty())
    {
        let state = str_at(status, &["State"]);
        out += &format!("\nUpdateStatus:\n State:\t\t{state}");
        let started = table::ago(str_at(status, &["StartedAt"]), now);
        if !started.is_empty() {
            out += &format!("\n Started:\t{started}");
        }
        let completed = table::ago(str_at(status, &["CompletedAt"]), now);
        if state == "completed" && !completed.is_empty() {
            out += &format!("\n Completed:\t{completed}");
        }
        out += &format!("\n Message:\t{}", str_at(status, &["Message"]));
    }
    out += "\nPlacement:";
    let constraints = strings(spec.pointer("/TaskTemplate/Placement/Constraints"));
    if !constraints.is_empty() {
        out += &format!("\n Constraints:\t[{}]", constraints.join(" "));
    }
    let max = num("/TaskTemplate/Placement/MaxReplicas");
    if max > 0 {
        out += &format!("\n Max Replicas Per Node:   {max}");
    }
    for (key, title, order_label) in [
        ("UpdateConfig", "UpdateConfig", "Update order:      "),
        ("RollbackConfig", "RollbackConfig", "Rollback order:    "),
    ] {
        let Some(config) = spec.get(key).filter(|c| c.is_object()) else {
            continue;
        };
        let n = |k: &str| config.get(k).and_then(Value::as_i64).unwrap_or(0);
        out += &format!("\n{title}:\n Parallelism:\t{}", n("Parallelism"));
        if n("Delay") > 0 {
            out += &format!("\n Delay:\t\t{}", table::go_duration(n("Delay")));
        }
        out += &format!("\n On failure:\t{}", str_at(config, &["FailureAction"]));
        if n("Monitor") > 0 {
            out += &format!("\n Monitoring Period: {}", table::go_duration(n("Monitor")));
        }
        let ratio = config
            .get("MaxFailureRatio")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        out += &format!("\n Max failure ratio: {ratio}");
        out += &format!("\n {order_label}{}", str_at(config, &["Order"]));
    }
    let container = spec
        .pointer("/TaskTemplate/ContainerSpec")
        .cloned()
        .unwrap_or(Value::Null);
    out += &format!(
        "\nContainerSpec:\n Image:\t\t{}",
        str_at(&container, &["Image"])
    );
    let args = strings(container.get("Args"));
    if !args.is_empty() {
        out += &format!(
            "\n Args:\t\t{}",
            args.iter().map(|a| format!("{a} ")).collect::<String>()
        );
    }
    let env = strings(container.get("Env"));
    if !env.is_empty() {
        out += &format!(
            "\n Env:\t\t{}",
            env.iter().map(|e| format!("{e} ")).collect::<String>()
        );
    }
    if !str_at(&container, &["Dir"]).is_empty() {
        out += &format!("\n Dir:\t\t{}", str_at(&container, &["Dir"]));
    }
    if let Some(init) = container.get("Init").and_then(Value::as_bool) {
        out += &format!("\n Init:\t\t{init}");
    }
    if !str_at(&container, &["User"]).is_empty() {
        out += &format!("\n User: {}", str_at(&container, &["User"]));
    }
    let mounts = container
        .get("Mounts")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !mounts.is_empty() {
        out += "\nMounts:";
        for m in &mounts {
            let ro = m.get("ReadOnly").and_then(Value::as_bool).unwrap_or(false);
            out += &format!(
                "\n Target:\t{}\n  Source:\t{}\n  ReadOnly:\t{ro}\n  Type:\t\t{}",
                str_at(m, &["Target"]),
                str_at(m, &["Source"]),
                str_at(m, &["Type"])
            );
        }
    }
    for (key, name_key) in [("Configs", "ConfigName"), ("Secrets", "SecretName")] {
        let refs = container
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !refs.is_empty() {
            out += &format!("\n{key}:");
            for r in &refs {
                out += &format!(
                    "\n Target:\t{}\n  Source:\t{}",
                    str_at(r, &["File", "Name"]),
                    str_at(r, &[name_key])
                );
            }
        }
    }
    if let Some(resources) = spec
        .pointer("/TaskTemplate/Resources")
        .filter(|r| r.is_object())
    {
        out += "\nResources:";
        for (section, title) in [("Reservations", "Reservations"), ("Limits", "Limits")] {
            let cpu = resources
                .pointer(&format!("/{section}/NanoCPUs"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let mem = resources
                .pointer(&format!("/{section}/MemoryBytes"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let pids = resources
                .pointer(&format!("/{section}/Pids"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if cpu > 0 || mem > 0 || (section == "Limits" && pids > 0) {
                out += &format!("\n {title}:");
                if cpu > 0 {
                    out += &format!("\n  CPU:\t\t{}", cpu as f64 / 1e9);
                }
                if mem > 0 {
                    out += &format!("\n  Memory:\t{}", table::bytes_size(mem as f64));
                }
            }
        }
    }
    let pids = num("/TaskTemplate/Resources/Limits/Pids");
    if pids > 0 {
        out += &format!("\n  PIDs:\t\t{pids}");
    }
    let networks: Vec<String> = spec
        .pointer("/TaskTemplate/Networks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|n| {
            let target = str_at(n, &["Target"]);
            network_names
                .get(target)
                .cloned()
                .unwrap_or_else(|| target.to_string())
        })
        .collect();
    if !networks.is_empty() {
        out += "\nNetworks:";
        for n in &networks {
            out += &format!(" {n}");
        }
        out += " ";
    }
    out += &format!(
        "\nEndpoint Mode:\t{}",
        str_at(&spec, &["EndpointSpec", "Mode"])
    );
    let ports = service
        .pointer("/Endpoint/Ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !ports.is_empty() {
        out += "\nPorts:";
        for p in &ports {
            let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
            out += &format!(
                "\n PublishedPort = {}\n  Protocol = {}\n  TargetPort = {}\n  PublishMode = {}",
                n("PublishedPort"),
                str_at(p, &["Protocol"]),
                n("TargetPort"),
                str_at(p, &["PublishMode"])
            );
        }
        out += " ";
    }
    out += "\n";
    out
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// ps

async fn ps(client: &Client, args: PsArgs) -> Result<()> {
    let user_filters = Filters::parse(&args.filters)?;
    let mut service_names = HashMap::new();
    let mut filters = user_filters.clone();
    let mut errors = Vec::new();
    for reference in &args.services {
        match client
            .get(&format!("/services/{}", encode(reference)))
            .await
        {
            Ok(service) => {
                let id = str_at(&service, &["ID"]).to_string();
                service_names.insert(id.clone(), str_at(&service, &["Spec", "Name"]).to_string());
                filters.add("service", id);
            }
            Err(err) if super::client::is_not_found(&err) => {
                errors.push(format!("no such service: {reference}"))
            }
            Err(err) => return Err(err),
        }
    }
    if service_names.is_empty() {
        return join_errors(errors);
    }
    let tasks = list_tasks(client, &filters).await?;
    let options = TaskOptions {
        no_trunc: args.no_trunc,
        no_resolve: args.no_resolve,
    };
    let listing = task_listing(client, &tasks, &service_names, &options).await;
    listing.print(args.format.as_deref(), args.quiet)?;
    join_errors(errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct CreateCli {
        #[command(flatten)]
        args: CreateArgs,
    }

    #[derive(Parser)]
    struct UpdateCli {
        #[command(flatten)]
        args: UpdateArgs,
    }

    fn create_args(line: &[&str]) -> CreateArgs {
        let mut argv = vec!["create"];
        argv.extend_from_slice(line);
        CreateCli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn minimal_create_sends_what_docker_sends() {
        let spec = build_spec(&create_args(&["nginx"]), &Resolved::default()).unwrap();
        assert_eq!(
            spec,
            json!({
                "Labels": {},
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "nginx:latest", "Init": false, "DNSConfig": {}},
                    "Resources": {"Limits": {}, "Reservations": {}},
                    "Placement": {},
                    "ForceUpdate": 0,
                    "Runtime": "container"
                },
                "Mode": {"Replicated": {}},
                "EndpointSpec": {"Mode": "vip"}
            })
        );
    }

    #[test]
    fn full_create_command_line_builds_docker_shaped_spec() {
        let args = create_args(&[
            "--name",
            "web",
            "--replicas",
            "3",
            "--env",
            "A=1",
            "-e",
            "B=2",
            "--label",
            "com.example.team=web",
            "--container-label",
            "tier=front",
            "--publish",
            "8080:80",
            "-p",
            "5353:53/udp",
            "--constraint",
            "node.role==worker",
            "--network",
            "frontend",
            "--secret",
            "db_pass",
            "--config",
            "source=app.conf,target=/etc/app.conf",
            "--limit-cpu",
            "0.5",
            "--limit-memory",
            "100M",
            "--restart-condition",
            "on-failure",
            "--update-parallelism",
            "2",
            "--update-delay",
            "10s",
            "--update-order",
            "start-first",
            "--update-failure-action",
            "rollback",
            "nginx:1.25",
            "nginx",
            "-g",
            "daemon off;",
        ]);
        let resolved = Resolved {
            networks: vec!["netid1".into()],
            secrets: vec![reference_json(
                Kind::Secret,
                &FileReference::parse("db_pass").unwrap(),
                "secid1",
            )],
            configs: vec![reference_json(
                Kind::Config,
                &FileReference::parse("source=app.conf,target=/etc/app.conf").unwrap(),
                "cfgid1",
            )],
        };
        let spec = build_spec(&args, &resolved).unwrap();
        // What docker 20.10 sends for the same command line (its client adds nothing else
        // when the registry is not queried).
        let docker = json!({
            "Name": "web",
            "Labels": {"com.example.team": "web"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "nginx:1.25",
                    "Labels": {"tier": "front"},
                    "Args": ["nginx", "-g", "daemon off;"],
                    "Env": ["A=1", "B=2"],
                    "Init": false,
                    "DNSConfig": {},
                    "Secrets": [{
                        "File": {"Name": "db_pass", "UID": "0", "GID": "0", "Mode": 292},
                        "SecretID": "secid1",
                        "SecretName": "db_pass"
                    }],
                    "Configs": [{
                        "File": {"Name": "/etc/app.conf", "UID": "0", "GID": "0", "Mode": 292},
                        "ConfigID": "cfgid1",
                        "ConfigName": "app.conf"
                    }]
                },
                "Resources": {
                    "Limits": {"NanoCPUs": 500000000, "MemoryBytes": 104857600},
                    "Reservations": {}
                },
                "RestartPolicy": {"Condition": "on-failure", "Delay": 5000000000i64, "MaxAttempts": 0},
                "Placement": {"Constraints": ["node.role==worker"]},
                "Networks": [{"Target": "netid1"}],
                "ForceUpdate": 0,
                "Runtime": "container"
            },
            "Mode": {"Replicated": {"Replicas": 3}},
            "UpdateConfig": {
                "Parallelism": 2,
                "Delay": 10000000000i64,
                "FailureAction": "rollback",
                "Monitor": 5000000000i64,
                "MaxFailureRatio": 0,
                "Order": "start-first"
            },
            "EndpointSpec": {
                "Mode": "vip",
                "Ports": [
                    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "ingress"}
                ]
            }
        });
        assert_eq!(spec, docker);
    }

    #[test]
    fn everything_after_the_image_is_the_command() {
        let args = create_args(&["--name", "x", "busybox", "--name", "-v", "y"]);
        assert_eq!(args.name.as_deref(), Some("x"));
        assert_eq!(args.image(), "busybox");
        assert_eq!(args.args(), ["--name", "-v", "y"]);
    }

    #[test]
    fn global_mode_refuses_replicas() {
        let err = build_spec(
            &create_args(&["--mode", "global", "--replicas", "2", "nginx"]),
            &Resolved::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("replicas can only be used"));
        let spec = build_spec(
            &create_args(&["--mode", "global", "nginx"]),
            &Resolved::default(),
        )
        .unwrap();
        assert_eq!(spec["Mode"], json!({"Global": {}}));
    }

    #[test]
    fn jobs_refuse_update_config() {
        let err = build_spec(
            &create_args(&[
                "--mode",
                "replicated-job",
                "--update-delay",
                "1s",
                "busybox",
            ]),
            &Resolved::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not supported for jobs"));
        let spec = build_spec(
            &create_args(&["--mode", "replicated-job", "--replicas", "4", "busybox"]),
            &Resolved::default(),
        )
        .unwrap();
        assert_eq!(
            spec["Mode"],
            json!({"ReplicatedJob": {"MaxConcurrent": 4, "TotalCompletions": 4}})
        );
    }

    #[test]
    fn update_changes_only_what_the_flags_name() {
        let created = build_spec(
            &create_args(&[
                "--name", "web", "-e", "A=1", "-e", "B=2", "-p", "8080:80", "--label", "x=y",
                "nginx",
            ]),
            &Resolved::default(),
        )
        .unwrap();
        let mut spec = created.clone();
        let args = UpdateCli::try_parse_from([
            "update",
            "--image",
            "nginx:1.26",
            "--replicas",
            "5",
            "--env-add",
            "A=9",
            "--env-rm",
            "B",
            "--label-add",
            "z=w",
            "--label-rm",
            "x",
            "--publish-add",
            "9090:90",
            "--publish-rm",
            "80",
            "--constraint-add",
            "node.role==manager",
            "--force",
            "--update-parallelism",
            "3",
            "web",
        ])
        .unwrap()
        .args;
        apply_update(&mut spec, &args, &UpdateResolved::default()).unwrap();
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Image"], "nginx:1.26");
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Env"], json!(["A=9"]));
        assert_eq!(spec["Mode"], json!({"Replicated": {"Replicas": 5}}));
        assert_eq!(spec["Labels"], json!({"z": "w"}));
        assert_eq!(
            spec["EndpointSpec"]["Ports"],
            json!([{"Protocol": "tcp", "TargetPort": 90, "PublishedPort": 9090, "PublishMode": "ingress"}])
        );
        assert_eq!(
            spec["TaskTemplate"]["Placement"]["Constraints"],
            json!(["node.role==manager"])
        );
        assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 1);
        assert_eq!(spec["UpdateConfig"]["Parallelism"], 3);
        assert_eq!(spec["UpdateConfig"]["Order"], "stop-first");
        assert_eq!(
            spec["TaskTemplate"]["Resources"],
            created["TaskTemplate"]["Resources"]
        );

        let mut untouched = created.clone();
        let args = UpdateCli::try_parse_from(["update", "--rollback", "web"])
            .unwrap()
            .args;
        apply_update(&mut untouched, &args, &UpdateResolved::default()).unwrap();
        assert_eq!(untouched, created);
    }

    #[test]
    fn service_ls_shows_replicas_image_and_port_ranges() {
        let services = vec![
            json!({
                "ID": "abcdefghijklmnopqrstuvwxy",
                "Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.25@sha256:0123"}}},
                "Endpoint": {"Ports": [
                    {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "ingress"},
                    {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "ingress"},
                    {"Protocol": "tcp", "TargetPort": 22, "PublishedPort": 2222, "PublishMode": "host"}
                ]},
                "ServiceStatus": {"RunningTasks": 2, "DesiredTasks": 3, "CompletedTasks": 0}
            }),
            json!({
                "ID": "zyxwvutsrqponmlkjihgfedcb",
                "Spec": {"Name": "agent", "Mode": {"Global": {}},
                         "TaskTemplate": {"ContainerSpec": {"Image": "busybox:latest"}}},
                "Endpoint": {},
                "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1, "CompletedTasks": 0}
            }),
        ];
        let out = service_listing(&services).render(None, false).unwrap();
        let expected = [
            "ID             NAME      MODE         REPLICAS   IMAGE            PORTS",
            "zyxwvutsrqpo   agent     global       1/1        busybox:latest",
            "abcdefghijkl   web       replicated   2/3        nginx:1.25       *:8080-8081->80-81/tcp, *:53->53/udp",
        ];
        assert_eq!(out, expected.join("\n") + "\n");
        assert_eq!(
            service_listing(&services).render(None, true).unwrap(),
            "zyxwvutsrqpo\nabcdefghijkl\n"
        );
    }

    #[test]
    fn pretty_inspect_reads_like_docker() {
        let service = json!({
            "ID": "svcid",
            "Spec": {
                "Name": "web",
                "Labels": {"com.label": "foo"},
                "Mode": {"Replicated": {"Replicas": 2}},
                "TaskTemplate": {
                    "ContainerSpec": {"Image": "nginx:1.25", "Env": ["A=1"], "Init": false},
                    "Resources": {"Limits": {"NanoCPUs": 500000000, "MemoryBytes": 104857600}, "Reservations": {}},
                    "Placement": {"Constraints": ["node.role==worker"]},
                    "Networks": [{"Target": "netid"}]
                },
                "UpdateConfig": {"Parallelism": 1, "Delay": 10000000000i64, "FailureAction": "pause",
                                  "Monitor": 5000000000i64, "MaxFailureRatio": 0, "Order": "stop-first"},
                "EndpointSpec": {"Mode": "vip"}
            },
            "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]}
        });
        let names = BTreeMap::from([("netid".to_string(), "front".to_string())]);
        let out = pretty(&service, &names, chrono::Utc::now());
        assert_eq!(
            out,
            "\nID:\t\tsvcid\nName:\t\tweb\nLabels:\n com.label=foo\nService Mode:\tReplicated\n Replicas:\t2\n\
             Placement:\n Constraints:\t[node.role==worker]\nUpdateConfig:\n Parallelism:\t1\n Delay:\t\t10s\n\
             \x20On failure:\tpause\n Monitoring Period: 5s\n Max failure ratio: 0\n Update order:      stop-first\n\
             ContainerSpec:\n Image:\t\tnginx:1.25\n Env:\t\tA=1 \n Init:\t\tfalse\nResources:\n Limits:\n\
             \x20 CPU:\t\t0.5\n  Memory:\t100MiB\nNetworks: front \nEndpoint Mode:\tvip\nPorts:\n\
             \x20PublishedPort = 8080\n  Protocol = tcp\n  TargetPort = 80\n  PublishMode = ingress \n"
        );
    }
}
