//! `shoal swarm …` (alias `cluster`): init, join, join-token, leave, update, unlock-key and
//! unlock through `/swarm`, printing what `docker swarm` prints, with `shoal` in the commands
//! it suggests.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::client::{encode, Client, Query};
use super::table::str_at;
use super::{object_at, opts, version_index};

#[derive(clap::Subcommand, Debug)]
pub enum SwarmCmd {
    /// Initialize a swarm
    Init(Box<InitArgs>),
    /// Join a swarm as a node and/or manager
    Join(JoinArgs),
    /// Manage join tokens
    JoinToken(JoinTokenArgs),
    /// Leave the swarm
    Leave(LeaveArgs),
    /// Update the swarm
    Update(UpdateArgs),
    /// Manage the unlock key
    UnlockKey(UnlockKeyArgs),
    /// Unlock swarm (reads the key from STDIN)
    Unlock,
}

/// Cluster settings `init` and `update` both take.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct SpecFlags {
    /// Task history retention limit
    #[arg(long, value_name = "int")]
    pub task_history_limit: Option<i64>,
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub dispatcher_heartbeat: Option<String>,
    /// Validity period for node certificates (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub cert_expiry: Option<String>,
    /// Number of log entries between Raft snapshots
    #[arg(long, value_name = "uint")]
    pub snapshot_interval: Option<u64>,
    /// Number of additional Raft snapshots to retain
    #[arg(long, value_name = "uint")]
    pub max_snapshots: Option<u64>,
    /// Change manager autolocking setting (true|false)
    #[arg(long, value_name = "bool", num_args = 0..=1, default_missing_value = "true")]
    pub autolock: Option<bool>,
}

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Advertised address (format: <ip|interface>[:port])
    #[arg(long)]
    pub advertise_addr: Option<String>,
    /// Listen address (format: <ip|interface>[:port])
    #[arg(long, default_value = "0.0.0.0:2377")]
    pub listen_addr: String,
    /// Address or interface to use for data path traffic
    #[arg(long)]
    pub data_path_addr: Option<String>,
    /// Port number to use for data path traffic (1024 - 49151)
    #[arg(long)]
    pub data_path_port: Option<u32>,
    /// Default address pool in CIDR format
    #[arg(long = "default-addr-pool")]
    pub default_addr_pool: Vec<String>,
    /// Default address pool subnet mask length
    #[arg(long, default_value_t = 24)]
    pub default_addr_pool_mask_length: u32,
    /// Force create a new cluster from current state
    #[arg(long)]
    pub force_new_cluster: bool,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_parser = ["active", "pause", "drain"])]
    pub availability: Option<String>,
    #[command(flatten)]
    pub spec: SpecFlags,
}

#[derive(clap::Args, Debug)]
pub struct JoinArgs {
    /// Token for entry into the swarm
    #[arg(long, required = true)]
    pub token: String,
    /// Advertised address (format: <ip|interface>[:port])
    #[arg(long)]
    pub advertise_addr: Option<String>,
    /// Listen address (format: <ip|interface>[:port])
    #[arg(long, default_value = "0.0.0.0:2377")]
    pub listen_addr: String,
    /// Address or interface to use for data path traffic
    #[arg(long)]
    pub data_path_addr: Option<String>,
    /// Availability of the node ("active", "pause", "drain")
    #[arg(long, value_parser = ["active", "pause", "drain"])]
    pub availability: Option<String>,
    /// A manager's address (HOST:PORT)
    pub remote: String,
}

#[derive(clap::Args, Debug)]
pub struct JoinTokenArgs {
    /// Only display token
    #[arg(short, long)]
    pub quiet: bool,
    /// Rotate join token
    #[arg(long)]
    pub rotate: bool,
    /// "worker" or "manager"
    #[arg(value_parser = ["worker", "manager"])]
    pub role: String,
}

#[derive(clap::Args, Debug)]
pub struct LeaveArgs {
    /// Force this node to leave the swarm, ignoring warnings
    #[arg(short, long)]
    pub force: bool,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub spec: SpecFlags,
}

#[derive(clap::Args, Debug)]
pub struct UnlockKeyArgs {
    /// Only display token
    #[arg(short, long)]
    pub quiet: bool,
    /// Rotate unlock key
    #[arg(long)]
    pub rotate: bool,
}

pub async fn run(client: &Client, cmd: SwarmCmd) -> Result<()> {
    match cmd {
        SwarmCmd::Init(args) => init(client, *args).await,
        SwarmCmd::Join(args) => join(client, args).await,
        SwarmCmd::JoinToken(args) => join_token(client, args).await,
        SwarmCmd::Leave(args) => {
            let path = Query::new()
                .push("force", args.force.to_string())
                .to_path("/swarm/leave");
            client.post_empty(&path).await?;
            outln!("Node left the swarm.");
            Ok(())
        }
        SwarmCmd::Update(args) => update(client, args).await,
        SwarmCmd::UnlockKey(args) => unlock_key(client, args).await,
        SwarmCmd::Unlock => {
            eprint!("Please enter unlock key: ");
            let mut key = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut key)
                .context("reading the unlock key from STDIN")?;
            client
                .post("/swarm/unlock", &json!({"UnlockKey": key.trim()}))
                .await?;
            Ok(())
        }
    }
}

/// `init` flags as the `POST /swarm/init` body.
pub fn init_request(args: &InitArgs) -> Result<Value> {
    let mut spec = json!({});
    apply_spec_flags(&mut spec, &args.spec)?;
    let mut request = json!({
        "ListenAddr": args.listen_addr,
        "AdvertiseAddr": args.advertise_addr.clone().unwrap_or_default(),
        "DataPathAddr": args.data_path_addr.clone().unwrap_or_default(),
        "DataPathPort": args.data_path_port.unwrap_or(0),
        "ForceNewCluster": args.force_new_cluster,
        "Spec": spec,
        "AutoLockManagers": args.spec.autolock.unwrap_or(false),
        "SubnetSize": args.default_addr_pool_mask_length,
    });
    if !args.default_addr_pool.is_empty() {
        request["DefaultAddrPool"] = json!(args.default_addr_pool);
    }
    if let Some(availability) = &args.availability {
        request["Availability"] = json!(availability);
    }
    Ok(request)
}

async fn init(client: &Client, args: InitArgs) -> Result<()> {
    let request = init_request(&args)?;
    let node_id = match client.post("/swarm/init", &request).await {
        Ok(id) => id.as_str().unwrap_or_default().to_string(),
        Err(err) => {
            let text = err.to_string();
            let unknown_address = text.contains("could not choose an IP address to advertise")
                || text.contains("could not find the system's IP address");
            if unknown_address && !text.contains("--advertise-addr") {
                bail!("{text} - specify one with --advertise-addr");
            }
            return Err(err);
        }
    };
    outln!("Swarm initialized: current node ({node_id}) is now a manager.\n");
    print_join_command(client, &node_id, true, false).await?;
    out!("To add a manager to this swarm, run 'shoal swarm join-token manager' and follow the instructions.\n\n");
    if args.spec.autolock == Some(true) {
        let key = client
            .get("/swarm/unlockkey")
            .await
            .context("could not fetch unlock key")?;
        print_unlock_command(str_at(&key, &["UnlockKey"]));
    }
    Ok(())
}

async fn join(client: &Client, args: JoinArgs) -> Result<()> {
    let mut request = json!({
        "ListenAddr": args.listen_addr,
        "AdvertiseAddr": args.advertise_addr.clone().unwrap_or_default(),
        "DataPathAddr": args.data_path_addr.clone().unwrap_or_default(),
        "RemoteAddrs": [args.remote],
        "JoinToken": args.token,
    });
    if let Some(availability) = &args.availability {
        request["Availability"] = json!(availability);
    }
    client.post("/swarm/join", &request).await?;
    let info = client.get("/info").await?;
    let manager = info
        .pointer("/Swarm/ControlAvailable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if manager {
        outln!("This node joined a swarm as a manager.");
    } else {
        outln!("This node joined a swarm as a worker.");
    }
    Ok(())
}

async fn join_token(client: &Client, args: JoinTokenArgs) -> Result<()> {
    let worker = args.role == "worker";
    if args.rotate {
        let swarm = client.get("/swarm").await?;
        let path = update_path(&swarm, worker, !worker, false);
        client
            .post(&path, swarm.get("Spec").unwrap_or(&json!({})))
            .await?;
        if !args.quiet {
            outln!("Successfully rotated {} join token.\n", args.role);
        }
    }
    let swarm = client.get("/swarm").await?;
    if args.quiet {
        let key = if worker { "Worker" } else { "Manager" };
        outln!("{}", str_at(&swarm, &["JoinTokens", key]));
        return Ok(());
    }
    let info = client.get("/info").await?;
    let node_id = str_at(&info, &["Swarm", "NodeID"]).to_string();
    print_join_command(client, &node_id, worker, !worker).await
}

/// `POST /swarm/update` with the version read and the rotation flags, as docker sends it.
fn update_path(
    swarm: &Value,
    rotate_worker: bool,
    rotate_manager: bool,
    rotate_unlock: bool,
) -> String {
    Query::new()
        .push("version", version_index(swarm).to_string())
        .push("rotateWorkerToken", rotate_worker.to_string())
        .push("rotateManagerToken", rotate_manager.to_string())
        .push("rotateManagerUnlockKey", rotate_unlock.to_string())
        .to_path("/swarm/update")
}

/// The address other nodes join through: the manager's own `ManagerStatus.Addr`, else what
/// `/info` says about it.
async fn manager_address(client: &Client, node_id: &str) -> Result<String> {
    if !node_id.is_empty() {
        if let Ok(node) = client.get(&format!("/nodes/{}", encode(node_id))).await {
            let addr = str_at(&node, &["ManagerStatus", "Addr"]);
            if !addr.is_empty() {
                return Ok(addr.to_string());
            }
        }
    }
    let info = client.get("/info").await?;
    if let Some(managers) = info
        .pointer("/Swarm/RemoteManagers")
        .and_then(Value::as_array)
    {
        if let Some(me) = managers.iter().find(|m| str_at(m, &["NodeID"]) == node_id) {
            return Ok(str_at(me, &["Addr"]).to_string());
        }
    }
    let addr = str_at(&info, &["Swarm", "NodeAddr"]);
    anyhow::ensure!(
        !addr.is_empty(),
        "the daemon did not say which address managers listen on"
    );
    Ok(format!("{addr}:2377"))
}

async fn print_join_command(
    client: &Client,
    node_id: &str,
    worker: bool,
    manager: bool,
) -> Result<()> {
    let swarm = client.get("/swarm").await?;
    let addr = manager_address(client, node_id).await?;
    if worker {
        out!(
            "To add a worker to this swarm, run the following command:\n\n    shoal swarm join --token {} {addr}\n\n",
            str_at(&swarm, &["JoinTokens", "Worker"])
        );
    }
    if manager {
        out!(
            "To add a manager to this swarm, run the following command:\n\n    shoal swarm join --token {} {addr}\n\n",
            str_at(&swarm, &["JoinTokens", "Manager"])
        );
    }
    Ok(())
}

fn print_unlock_command(key: &str) {
    if !key.is_empty() {
        out!(
            "To unlock a swarm manager after it restarts, run the `shoal swarm unlock`\n\
             command and provide the following key:\n\n    {key}\n\n\
             Please remember to store this key in a password manager, since without it you\n\
             will not be able to restart the manager.\n"
        );
    }
}

/// Cluster settings from flags, merged into a swarm Spec.
pub fn apply_spec_flags(spec: &mut Value, flags: &SpecFlags) -> Result<()> {
    if let Some(limit) = flags.task_history_limit {
        object_at(spec, &["Orchestration"])
            .insert("TaskHistoryRetentionLimit".into(), json!(limit));
    }
    if let Some(period) = &flags.dispatcher_heartbeat {
        object_at(spec, &["Dispatcher"]).insert(
            "HeartbeatPeriod".into(),
            json!(opts::parse_duration(period)?),
        );
    }
    if let Some(expiry) = &flags.cert_expiry {
        object_at(spec, &["CAConfig"]).insert(
            "NodeCertExpiry".into(),
            json!(opts::parse_duration(expiry)?),
        );
    }
    if let Some(interval) = flags.snapshot_interval {
        object_at(spec, &["Raft"]).insert("SnapshotInterval".into(), json!(interval));
    }
    if let Some(keep) = flags.max_snapshots {
        object_at(spec, &["Raft"]).insert("KeepOldSnapshots".into(), json!(keep));
    }
    if let Some(autolock) = flags.autolock {
        object_at(spec, &["EncryptionConfig"]).insert("AutoLockManagers".into(), json!(autolock));
    }
    Ok(())
}

async fn update(client: &Client, args: UpdateArgs) -> Result<()> {
    let swarm = client.get("/swarm").await?;
    let mut spec = swarm.get("Spec").cloned().unwrap_or_else(|| json!({}));
    let was_locked = spec
        .pointer("/EncryptionConfig/AutoLockManagers")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    apply_spec_flags(&mut spec, &args.spec)?;
    client
        .post(&update_path(&swarm, false, false, false), &spec)
        .await?;
    outln!("Swarm updated.");
    if args.spec.autolock == Some(true) && !was_locked {
        let key = client
            .get("/swarm/unlockkey")
            .await
            .context("could not fetch unlock key")?;
        print_unlock_command(str_at(&key, &["UnlockKey"]));
    }
    Ok(())
}

async fn unlock_key(client: &Client, args: UnlockKeyArgs) -> Result<()> {
    if args.rotate {
        let swarm = client.get("/swarm").await?;
        let locked = swarm
            .pointer("/Spec/EncryptionConfig/AutoLockManagers")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        anyhow::ensure!(locked, "cannot rotate because autolock is not turned on");
        client
            .post(
                &update_path(&swarm, false, false, true),
                swarm.get("Spec").unwrap_or(&json!({})),
            )
            .await?;
        if !args.quiet {
            outln!("Successfully rotated manager unlock key.\n");
        }
    }
    let key = client
        .get("/swarm/unlockkey")
        .await
        .context("could not fetch unlock key")?;
    let key = str_at(&key, &["UnlockKey"]);
    anyhow::ensure!(!key.is_empty(), "no unlock key is set");
    if args.quiet {
        outln!("{key}");
    } else {
        print_unlock_command(key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: InitArgs,
    }

    #[test]
    fn init_defaults_to_listening_on_2377_with_an_empty_spec() {
        let args = Cli::try_parse_from(["init", "--advertise-addr", "10.0.0.1"])
            .unwrap()
            .args;
        let request = init_request(&args).unwrap();
        assert_eq!(request["ListenAddr"], "0.0.0.0:2377");
        assert_eq!(request["AdvertiseAddr"], "10.0.0.1");
        assert_eq!(request["Spec"], json!({}));
        assert!(request.get("Availability").is_none());
    }

    #[test]
    fn spec_flags_land_where_the_api_keeps_them() {
        let mut spec = json!({"Orchestration": {"TaskHistoryRetentionLimit": 5}, "Raft": {"ElectionTick": 10}});
        let flags = SpecFlags {
            task_history_limit: Some(2),
            dispatcher_heartbeat: Some("10s".into()),
            autolock: Some(true),
            ..SpecFlags::default()
        };
        apply_spec_flags(&mut spec, &flags).unwrap();
        assert_eq!(
            spec,
            json!({
                "Orchestration": {"TaskHistoryRetentionLimit": 2},
                "Raft": {"ElectionTick": 10},
                "Dispatcher": {"HeartbeatPeriod": 10000000000i64},
                "EncryptionConfig": {"AutoLockManagers": true}
            })
        );
    }
}
