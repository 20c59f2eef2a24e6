//! shoal's command-line client: the `swarm`, `node`, `service`, `config`, `secret`, `network`,
//! `stack`, `info` and `version` commands. Each one talks the Docker Engine API (1.41) to a
//! shoal daemon over HTTP and prints what `docker` would; none of them uses the daemon's Rust
//! types, only the API's JSON.

/// `print!` for command output: a closed stdout (`shoal … | head`) ends the process quietly
/// like a SIGPIPE would, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` for command output; see [`out!`].
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod client;
mod config;
mod logs;
mod network;
mod node;
mod opts;
mod registry;

pub use opts::parse_duration;
mod secret;
mod service;
mod stack;
mod swarm;
mod system;
mod table;
mod task;

use anyhow::Result;
use serde_json::Value;

use client::{Client, Endpoint};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Manage the swarm (init, join, join-token, leave, update)
    #[command(subcommand, alias = "cluster")]
    Swarm(swarm::SwarmCmd),
    /// Manage swarm nodes
    #[command(subcommand)]
    Node(node::NodeCmd),
    /// Manage services
    #[command(subcommand)]
    Service(service::ServiceCmd),
    /// Manage configs
    #[command(subcommand)]
    Config(config::ConfigCmd),
    /// Manage secrets
    #[command(subcommand)]
    Secret(secret::SecretCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCmd),
    /// Manage stacks
    #[command(subcommand)]
    Stack(stack::StackCmd),
    /// Show system-wide information (GET /info)
    Info(system::InfoArgs),
    /// Show version of client and daemon (GET /version)
    Version(system::VersionArgs),
}

/// `host` is the `-H` value (`unix:///path.sock`, `tcp://127.0.0.1:PORT`, or a bare path); None =
/// `$SHOAL_HOST`, else `unix:///var/run/shoal.sock`.
pub async fn run(host: Option<String>, cmd: Command) -> Result<()> {
    let host = host
        .or_else(|| std::env::var("SHOAL_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| client::DEFAULT_HOST.to_string());
    let client = Client::new(Endpoint::parse(&host)?);
    match cmd {
        Command::Swarm(cmd) => swarm::run(&client, cmd).await,
        Command::Node(cmd) => node::run(&client, cmd).await,
        Command::Service(cmd) => service::run(&client, cmd).await,
        Command::Config(cmd) => config::run(&client, cmd).await,
        Command::Secret(cmd) => secret::run(&client, cmd).await,
        Command::Network(cmd) => network::run(&client, cmd).await,
        Command::Stack(cmd) => stack::run(&client, cmd).await,
        Command::Info(args) => system::info(&client, args).await,
        Command::Version(args) => system::version(&client, args).await,
    }
}

/// Writes command output to stdout; when the reader has gone away, exits with the status a
/// shell reports for SIGPIPE.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(err) = stdout.write_fmt(args).and_then(|()| stdout.flush()) {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("shoal: cannot write the output: {err}");
        std::process::exit(1);
    }
}

/// One error out of several per-argument failures, one per line, like docker's `rm` commands.
fn join_errors(errors: Vec<String>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(errors.join("\n")))
    }
}

/// The objects `GET {collection}/{ref}` answers for each reference, as the daemon's text; the
/// references that failed are reported after the ones that worked are printed.
async fn fetch_each(
    client: &Client,
    collection: &str,
    refs: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for reference in refs {
        match client
            .get_raw(&format!("{collection}/{}", client::encode(reference)))
            .await
        {
            Ok(raw) => found.push(raw),
            Err(err) => errors.push(err.to_string()),
        }
    }
    (found, errors)
}

/// `docker inspect` for objects under `collection`: an indented JSON array, or one line per
/// object through a `--format` template, or `pretty(object)` for `--pretty`.
async fn inspect(
    client: &Client,
    collection: &str,
    refs: &[String],
    format: Option<&str>,
    pretty: Option<&dyn Fn(&Value) -> String>,
) -> Result<()> {
    let (found, errors) = fetch_each(client, collection, refs).await;
    let values = || {
        found
            .iter()
            .map(|raw| serde_json::from_str::<Value>(raw))
            .collect::<Result<Vec<_>, _>>()
    };
    match (pretty, format.map(str::trim).filter(|f| !f.is_empty())) {
        (Some(pretty), _) => {
            for value in values()? {
                outln!("{}", pretty(&value));
            }
        }
        (None, None) | (None, Some("json")) => out!("{}", table::inspect_array(&found)),
        (None, Some(format)) => {
            let template = table::Template::parse(format)?;
            for value in values()? {
                outln!("{}", template.execute(&value)?);
            }
        }
    }
    join_errors(errors)
}

/// The object at `path` inside `value`, created (as `{}`) where missing.
fn object_at<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut serde_json::Map<String, Value> {
    let mut current = value;
    for part in path {
        if !current.is_object() {
            *current = Value::Object(Default::default());
        }
        current = current
            .as_object_mut()
            .expect("just made an object")
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
    }
    if !current.is_object() {
        *current = Value::Object(Default::default());
    }
    current.as_object_mut().expect("just made an object")
}

/// An object's `Version.Index`, which an update must send back.
fn version_index(object: &Value) -> u64 {
    object
        .pointer("/Version/Index")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Command,
    }

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn docker_style_command_lines_parse() {
        for line in [
            "shoal cluster init --advertise-addr 10.0.0.1",
            "shoal swarm join --token SWMTKN-1-x 10.0.0.1:2377",
            "shoal swarm join-token -q worker",
            "shoal node ls -q --filter role=manager",
            "shoal node update --label-add a=b --availability drain n1",
            "shoal service create --name web -p 8080:80 --replicas 2 nginx",
            "shoal service update --image nginx:2 --force web",
            "shoal service scale web=3 api=2",
            "shoal service ps --no-trunc web",
            "shoal service logs -f --tail 10 -t --since 10m --no-task-ids web",
            "shoal service logs -n 5 --raw --details --no-resolve --no-trunc web.1",
            "shoal config create -l a=b app.conf ./app.conf",
            "shoal secret inspect --pretty db",
            "shoal network create -d overlay --attachable front",
            "shoal stack rm todo blog",
            "shoal stack deploy -c docker-compose.yml todo",
            "shoal info --format json",
            "shoal version",
        ] {
            let argv = line.split_whitespace();
            if let Err(err) = Cli::try_parse_from(argv) {
                panic!("{line}: {err}");
            }
        }
    }
}
