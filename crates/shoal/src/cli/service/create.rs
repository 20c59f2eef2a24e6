//! `service create`: the ServiceSpec `docker service create` sends for its flags
//! ([`build_spec`], pure), then `POST /services/create`.

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use super::flags::{
    ContainerFlags, ResourceFlags, RestartFlags, RollbackConfigFlags, UpdateConfigFlags,
};
use super::print_warnings;
use super::resolve::{parse_refs, resolve_networks, resolve_references};
use super::spec::{
    apply_container_flags, apply_resources, parse_mount, restart_policy, rollback_config,
    update_config,
};
use crate::cli::client::Client;
use crate::cli::opts::{self, Kind};
use crate::cli::stack::{images, wait};
use crate::cli::table::str_at;

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

/// Names already resolved to IDs for a spec: network IDs, secret and config references.
#[derive(Debug, Default)]
pub struct Resolved {
    pub networks: Vec<String>,
    pub secrets: Vec<Value>,
    pub configs: Vec<Value>,
}

pub(super) async fn create(client: &Client, args: CreateArgs) -> Result<()> {
    let resolved = Resolved {
        networks: resolve_networks(client, &args.networks).await?,
        secrets: resolve_references(client, Kind::Secret, &parse_refs(&args.secrets)?).await?,
        configs: resolve_references(client, Kind::Config, &parse_refs(&args.configs)?).await?,
    };
    let mut spec = build_spec(&args, &resolved)?;
    let warning = if args.container.no_resolve_image {
        None
    } else {
        images::resolve_spec_image(client, &mut spec).await
    };
    let response = client.post("/services/create", &spec).await?;
    if let Some(w) = warning {
        eprint!("{w}");
    }
    print_warnings(&response);
    let id = str_at(&response, &["ID"]).to_string();
    outln!("{id}");
    if !args.container.detach {
        wait::wait_for_services(client, &[id], args.container.quiet).await?;
    }
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::cli::opts::FileReference;
    use crate::cli::service::resolve::reference_json;
    use clap::Parser;

    #[derive(Parser)]
    struct CreateCli {
        #[command(flatten)]
        args: CreateArgs,
    }

    pub(in crate::cli::service) fn create_args(line: &[&str]) -> CreateArgs {
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
}
