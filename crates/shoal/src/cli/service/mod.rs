//! `shoal service …`: builds ServiceSpecs from flags exactly as the docker CLI shapes them,
//! sends them to `/services`, and prints services and their tasks the way `docker service`
//! does. Names of networks, secrets and configs are resolved to IDs here, on the client, as
//! docker does; every other reference goes to the daemon as typed.
//!
//! One module per subcommand. The flag groups `create` and `update` share are in `flags`, their
//! conversion onto a ServiceSpec (pure, no requests) in `spec`, and the lookup of names in
//! `resolve`; this module only holds the command enum and its dispatch.

mod create;
mod flags;
mod inspect;
mod ls;
mod ps;
mod resolve;
mod rm;
mod rollback;
mod scale;
mod spec;
mod update;

use anyhow::Result;
use serde_json::Value;

use super::client::Client;
use super::logs::{service_logs, LogsArgs};

pub use ls::{list_services, service_listing};

use create::CreateArgs;
use inspect::InspectArgs;
use ls::ListArgs;
use ps::PsArgs;
use rm::RmArgs;
use rollback::RollbackArgs;
use scale::ScaleArgs;
use update::UpdateArgs;

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

pub async fn run(client: &Client, cmd: ServiceCmd) -> Result<()> {
    match cmd {
        ServiceCmd::Create(args) => create::create(client, *args).await,
        ServiceCmd::Ls(args) => ls::list(client, args).await,
        ServiceCmd::Inspect(args) => inspect::inspect_services(client, args).await,
        ServiceCmd::Update(args) => update::update(client, *args).await,
        ServiceCmd::Scale(args) => scale::scale(client, args).await,
        ServiceCmd::Rm(args) => rm::remove(client, args).await,
        ServiceCmd::Ps(args) => ps::ps(client, args).await,
        ServiceCmd::Logs(args) => service_logs(client, args).await,
        ServiceCmd::Rollback(args) => rollback::rollback(client, args).await,
    }
}

/// Prints the daemon's warnings (`Warnings` of a create or update answer) on stderr.
fn print_warnings(response: &Value) {
    if let Some(warnings) = response.get("Warnings").and_then(Value::as_array) {
        for warning in warnings.iter().filter_map(Value::as_str) {
            eprintln!("{warning}");
        }
    }
}

fn non_empty<'a>(s: &'a str, default: &'a str) -> &'a str {
    if s.is_empty() {
        default
    } else {
        s
    }
}
