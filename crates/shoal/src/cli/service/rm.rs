//! `service rm`: removes each service named; one failing does not stop the others.

use anyhow::Result;

use crate::cli::client::{encode, Client};
use crate::cli::join_errors;

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(required = true, value_name = "SERVICE")]
    pub services: Vec<String>,
}

pub(super) async fn remove(client: &Client, args: RmArgs) -> Result<()> {
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
