//! `service rollback`: `service update --rollback` under its own name, as docker has it.

use anyhow::Result;

use super::update::{update, UpdateArgs};
use crate::cli::client::Client;

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short, long)]
    pub quiet: bool,
    pub service: String,
}

pub(super) async fn rollback(client: &Client, args: RollbackArgs) -> Result<()> {
    let mut update_args = UpdateArgs {
        rollback: true,
        service: args.service,
        ..UpdateArgs::default()
    };
    update_args.container.detach = args.detach;
    update_args.container.quiet = args.quiet;
    update(client, update_args).await
}
