//! `shoal network …`: creates, lists, inspects and removes networks through `/networks`, with
//! `docker network`'s request shapes and output. shoal networks are swarm networks, so
//! `create` defaults to the overlay driver where docker defaults to bridge.

use anyhow::Result;
use serde_json::{json, Value};

use super::client::{encode, Client, Filters, Query};
use super::opts;
use super::table::{self, str_at, Listing};
use super::{inspect, join_errors};

#[derive(clap::Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network
    Create(CreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(ListArgs),
    /// Display detailed information on one or more networks
    Inspect(InspectArgs),
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short, long, default_value = "overlay")]
    pub driver: String,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "K=V")]
    pub opts: Vec<String>,
    /// Enable manual container attachment
    #[arg(long)]
    pub attachable: bool,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Create swarm routing-mesh network
    #[arg(long)]
    pub ingress: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Control the network's scope
    #[arg(long)]
    pub scope: Option<String>,
    /// IP Address Management Driver
    #[arg(long, default_value = "default")]
    pub ipam_driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long = "subnet")]
    pub subnets: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet (the n-th gateway goes with the n-th subnet)
    #[arg(long = "gateway")]
    pub gateways: Vec<String>,
    /// Allocate container ip from a sub-range (the n-th range goes with the n-th subnet)
    #[arg(long = "ip-range")]
    pub ip_ranges: Vec<String>,
    /// Set metadata on a network
    #[arg(short = 'l', long = "label", value_name = "K=V")]
    pub labels: Vec<String>,
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Provide filter values (e.g. 'driver=overlay')
    #[arg(short, long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
    /// Format output: "table", "json" or a Go-style template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub networks: Vec<String>,
}

pub async fn run(client: &Client, cmd: NetworkCmd) -> Result<()> {
    match cmd {
        NetworkCmd::Create(args) => {
            let response = client
                .post("/networks/create", &create_request(&args)?)
                .await?;
            if let Some(warning) = response.get("Warning").and_then(Value::as_str) {
                if !warning.is_empty() {
                    eprintln!("{warning}");
                }
            }
            outln!("{}", str_at(&response, &["Id"]));
            Ok(())
        }
        NetworkCmd::Ls(args) => {
            let filters = Filters::parse(&args.filters)?;
            let networks = client
                .get(&Query::new().filters(&filters).to_path("/networks"))
                .await?;
            let networks = networks.as_array().cloned().unwrap_or_default();
            listing(&networks, args.no_trunc).print(args.format.as_deref(), args.quiet)
        }
        NetworkCmd::Inspect(args) => {
            inspect(
                client,
                "/networks",
                &args.networks,
                args.format.as_deref(),
                None,
            )
            .await
        }
        NetworkCmd::Rm(args) => {
            let mut errors = Vec::new();
            for name in &args.networks {
                match client.delete(&format!("/networks/{}", encode(name))).await {
                    Ok(()) => outln!("{name}"),
                    Err(err) => errors.push(err.to_string()),
                }
            }
            join_errors(errors)
        }
    }
}

/// The `POST /networks/create` body docker sends for these flags.
pub fn create_request(args: &CreateArgs) -> Result<Value> {
    anyhow::ensure!(
        args.gateways.len() <= args.subnets.len() && args.ip_ranges.len() <= args.subnets.len(),
        "every --gateway and --ip-range needs its own --subnet"
    );
    let config: Vec<Value> = args
        .subnets
        .iter()
        .enumerate()
        .map(|(i, subnet)| {
            let mut c = json!({"Subnet": subnet});
            if let Some(gateway) = args.gateways.get(i) {
                c["Gateway"] = json!(gateway);
            }
            if let Some(range) = args.ip_ranges.get(i) {
                c["IPRange"] = json!(range);
            }
            c
        })
        .collect();
    Ok(json!({
        "Name": args.name,
        "CheckDuplicate": true,
        "Driver": args.driver,
        "Scope": args.scope.clone().unwrap_or_default(),
        "EnableIPv6": args.ipv6,
        "IPAM": {"Driver": args.ipam_driver, "Config": config, "Options": {}},
        "Internal": args.internal,
        "Attachable": args.attachable,
        "Ingress": args.ingress,
        "ConfigOnly": false,
        "Options": opts::kv_json(&args.opts),
        "Labels": opts::kv_json(&args.labels),
    }))
}

/// The `network ls` table, sorted by name.
pub fn listing(networks: &[Value], no_trunc: bool) -> Listing {
    let mut networks: Vec<&Value> = networks.iter().collect();
    networks.sort_by(|a, b| table::natural_cmp(str_at(a, &["Name"]), str_at(b, &["Name"])));
    let mut listing = Listing::new(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"]);
    for network in networks {
        let id = str_at(network, &["Id"]);
        let id = if no_trunc {
            id.to_string()
        } else {
            table::truncate_id(id)
        };
        let row = vec![
            id,
            str_at(network, &["Name"]).to_string(),
            str_at(network, &["Driver"]).to_string(),
            str_at(network, &["Scope"]).to_string(),
        ];
        let flag = |key: &str| network.get(key).and_then(Value::as_bool).unwrap_or(false);
        let record = json!({
            "ID": row[0], "Name": row[1], "Driver": row[2], "Scope": row[3],
            "IPv6": flag("EnableIPv6"), "Internal": flag("Internal"),
            "CreatedAt": str_at(network, &["Created"]),
        });
        listing.push(row, record);
    }
    listing
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CreateArgs,
    }

    #[test]
    fn create_request_matches_docker_shape() {
        let args = Cli::try_parse_from([
            "create",
            "--attachable",
            "--subnet",
            "10.10.0.0/24",
            "-l",
            "team=a",
            "backend",
        ])
        .unwrap()
        .args;
        assert_eq!(
            create_request(&args).unwrap(),
            json!({
                "Name": "backend", "CheckDuplicate": true, "Driver": "overlay", "Scope": "",
                "EnableIPv6": false,
                "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.10.0.0/24"}], "Options": {}},
                "Internal": false, "Attachable": true, "Ingress": false, "ConfigOnly": false,
                "Options": {}, "Labels": {"team": "a"}
            })
        );
    }

    #[test]
    fn network_ls_truncates_ids_and_sorts_by_name() {
        let networks = vec![
            json!({"Id": "bbbbbbbbbbbbbbbbbbbbbbbbb", "Name": "web_default", "Driver": "overlay", "Scope": "swarm"}),
            json!({"Id": "aaaaaaaaaaaaaaaaaaaaaaaaa", "Name": "ingress", "Driver": "overlay", "Scope": "swarm"}),
        ];
        let out = listing(&networks, false).render(None, false).unwrap();
        let expected = [
            "NETWORK ID     NAME          DRIVER    SCOPE",
            "aaaaaaaaaaaa   ingress       overlay   swarm",
            "bbbbbbbbbbbb   web_default   overlay   swarm",
        ];
        assert_eq!(out, expected.join("\n") + "\n");
    }
}
