//! `shoal`: the node daemon (`shoal daemon`) and the command-line client (everything else).

mod agent;
mod cli;
mod daemon;
mod mesh;
mod net;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "shoal",
    version,
    about = "A container orchestrator that does what Docker Swarm does with stacks"
)]
struct Opts {
    /// Daemon socket(s): `unix:///path.sock` or `tcp://127.0.0.1:PORT`. The client uses the
    /// first; `shoal daemon` listens on all of them.
    #[arg(short = 'H', long = "host", global = true, env = "SHOAL_HOST")]
    host: Vec<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a node
    Daemon(daemon::DaemonArgs),
    #[command(flatten)]
    Client(cli::Command),
}

fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("shoal: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match opts.cmd {
            Cmd::Daemon(args) => {
                tracing_subscriber::fmt()
                    .with_env_filter(
                        tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                            .unwrap_or_else(|_| "info,openraft=warn".into()),
                    )
                    .with_writer(std::io::stderr)
                    .init();
                daemon::run(opts.host, args).await
            }
            Cmd::Client(cmd) => cli::run(opts.host.into_iter().next(), cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
