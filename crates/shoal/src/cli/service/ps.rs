//! `service ps`: the tasks of the services named, as `docker service ps` lists them.

use std::collections::HashMap;

use anyhow::Result;

use crate::cli::client::{encode, is_not_found, Client, Filters};
use crate::cli::join_errors;
use crate::cli::table::str_at;
use crate::cli::task::{list_tasks, task_listing, TaskOptions};

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

pub(super) async fn ps(client: &Client, args: PsArgs) -> Result<()> {
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
            Err(err) if is_not_found(&err) => errors.push(format!("no such service: {reference}")),
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
