//! `shoal secret …`: the same commands as `shoal config …` (see `config.rs`), under `/secrets`.
//! Secret data goes to the daemon and never comes back: `inspect` has nothing to show of it.

use anyhow::Result;

use super::client::Client;
use super::config::{self, ConfigCmd};
use super::opts::Kind;

/// The secret commands take exactly the config commands' arguments.
pub type SecretCmd = ConfigCmd;

pub async fn run(client: &Client, cmd: SecretCmd) -> Result<()> {
    config::run_kind(client, Kind::Secret, cmd).await
}
