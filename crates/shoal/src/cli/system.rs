//! `shoal info` and `shoal version`: the daemon's `/info` and `/version`, printed like
//! `docker info` (its server and swarm sections) and `docker version`.

use anyhow::Result;
use serde_json::{json, Value};

use super::client::{Client, CLIENT_API_VERSION};
use super::table::{self, str_at, Template};

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Format output: "json" or a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format output: "json" or a Go-style template
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Prints `value` through `--format` (`json` or a template); false when there is no format.
fn print_formatted(value: &Value, format: Option<&str>) -> Result<bool> {
    match format.map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(false),
        Some("json") => {
            outln!("{value}");
            Ok(true)
        }
        Some(template) => {
            outln!("{}", Template::parse(template)?.execute(value)?);
            Ok(true)
        }
    }
}

pub async fn info(client: &Client, args: InfoArgs) -> Result<()> {
    let info = client.get("/info").await?;
    if print_formatted(&info, args.format.as_deref())? {
        return Ok(());
    }
    out!("{}", render_info(&info));
    Ok(())
}

fn duration_words(nanos: i64) -> String {
    table::human_duration(chrono::Duration::nanoseconds(nanos))
}

/// The server part of `docker info`, with its swarm section in full.
pub fn render_info(info: &Value) -> String {
    let mut out = String::from("Server:\n");
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let s = |path: &[&str]| str_at(info, path).to_string();
    let num = |ptr: &str| info.pointer(ptr).and_then(Value::as_i64).unwrap_or(0);
    let flag = |ptr: &str| info.pointer(ptr).and_then(Value::as_bool).unwrap_or(false);
    if !s(&["ServerVersion"]).is_empty() {
        line(format!(" Server Version: {}", s(&["ServerVersion"])));
    }
    let state = s(&["Swarm", "LocalNodeState"]);
    line(format!(" Swarm: {state}"));
    if state != "inactive" && state != "locked" && !state.is_empty() {
        line(format!("  NodeID: {}", s(&["Swarm", "NodeID"])));
        if !s(&["Swarm", "Error"]).is_empty() {
            line(format!("  Error: {}", s(&["Swarm", "Error"])));
        }
        let manager = flag("/Swarm/ControlAvailable");
        line(format!("  Is Manager: {manager}"));
        let cluster = info.pointer("/Swarm/Cluster").filter(|c| c.is_object());
        if let (Some(_), true, true) = (cluster, manager, s(&["Swarm", "Error"]).is_empty()) {
            line(format!("  ClusterID: {}", s(&["Swarm", "Cluster", "ID"])));
            line(format!("  Managers: {}", num("/Swarm/Managers")));
            line(format!("  Nodes: {}", num("/Swarm/Nodes")));
            if let Some(pools) = info
                .pointer("/Swarm/Cluster/DefaultAddrPool")
                .and_then(Value::as_array)
            {
                let pools: String = pools
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|p| format!("{p}  "))
                    .collect();
                line(format!("  Default Address Pool: {pools}"));
                line(format!(
                    "  SubnetSize: {}",
                    num("/Swarm/Cluster/SubnetSize")
                ));
            }
            if num("/Swarm/Cluster/DataPathPort") > 0 {
                line(format!(
                    "  Data Path Port: {}",
                    num("/Swarm/Cluster/DataPathPort")
                ));
            }
            let spec = "/Swarm/Cluster/Spec";
            line("  Orchestration:".into());
            line(format!(
                "   Task History Retention Limit: {}",
                num(&format!("{spec}/Orchestration/TaskHistoryRetentionLimit"))
            ));
            line("  Raft:".into());
            line(format!(
                "   Snapshot Interval: {}",
                num(&format!("{spec}/Raft/SnapshotInterval"))
            ));
            if let Some(keep) = info
                .pointer(&format!("{spec}/Raft/KeepOldSnapshots"))
                .and_then(Value::as_i64)
            {
                line(format!("   Number of Old Snapshots to Retain: {keep}"));
            }
            line(format!(
                "   Heartbeat Tick: {}",
                num(&format!("{spec}/Raft/HeartbeatTick"))
            ));
            line(format!(
                "   Election Tick: {}",
                num(&format!("{spec}/Raft/ElectionTick"))
            ));
            line("  Dispatcher:".into());
            line(format!(
                "   Heartbeat Period: {}",
                duration_words(num(&format!("{spec}/Dispatcher/HeartbeatPeriod")))
            ));
            line("  CA Configuration:".into());
            line(format!(
                "   Expiry Duration: {}",
                duration_words(num(&format!("{spec}/CAConfig/NodeCertExpiry")))
            ));
            line(format!(
                "   Force Rotate: {}",
                num(&format!("{spec}/CAConfig/ForceRotate"))
            ));
            line(format!(
                "  Autolock Managers: {}",
                flag(&format!("{spec}/EncryptionConfig/AutoLockManagers"))
            ));
            line(format!(
                "  Root Rotation In Progress: {}",
                flag("/Swarm/Cluster/RootRotationInProgress")
            ));
        }
        line(format!("  Node Address: {}", s(&["Swarm", "NodeAddr"])));
        let mut managers: Vec<String> = info
            .pointer("/Swarm/RemoteManagers")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|m| str_at(m, &["Addr"]).to_string())
            .collect();
        managers.sort();
        if !managers.is_empty() {
            line("  Manager Addresses:".into());
            for m in managers {
                line(format!("   {m}"));
            }
        }
    }
    for (label, key) in [
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
    ] {
        if !s(&[key]).is_empty() {
            line(format!(" {label}: {}", s(&[key])));
        }
    }
    if num("/NCPU") > 0 {
        line(format!(" CPUs: {}", num("/NCPU")));
    }
    if num("/MemTotal") > 0 {
        line(format!(
            " Total Memory: {}",
            table::bytes_size(num("/MemTotal") as f64)
        ));
    }
    for (label, key) in [
        ("Name", "Name"),
        ("ID", "ID"),
        ("Docker Root Dir", "DockerRootDir"),
    ] {
        if !s(&[key]).is_empty() {
            line(format!(" {label}: {}", s(&[key])));
        }
    }
    out
}

pub async fn version(client: &Client, args: VersionArgs) -> Result<()> {
    let client_part = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": client.api_version().await.unwrap_or(CLIENT_API_VERSION),
        "DefaultAPIVersion": CLIENT_API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": go_arch(std::env::consts::ARCH),
    });
    let server = client.get("/version").await;
    let combined = json!({
        "Client": client_part,
        "Server": server.as_ref().ok().cloned().unwrap_or(Value::Null),
    });
    if print_formatted(&combined, args.format.as_deref())? {
        return server.map(drop);
    }
    out!("{}", render_version(&combined));
    server.map(drop)
}

/// Rust's architecture names as Go (and so docker) spells them.
fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn aligned(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<20}{value}\n"));
}

/// `docker version`'s layout for the client, and the server if it answered.
pub fn render_version(version: &Value) -> String {
    let mut out = String::from("Client:\n");
    let c = |key: &str| str_at(version, &["Client", key]).to_string();
    aligned(&mut out, " Version:", &c("Version"));
    let mut api = c("ApiVersion");
    if api != c("DefaultAPIVersion") {
        api = format!("{api} (downgraded from {})", c("DefaultAPIVersion"));
    }
    aligned(&mut out, " API version:", &api);
    aligned(&mut out, " OS/Arch:", &format!("{}/{}", c("Os"), c("Arch")));
    let server = version.get("Server").filter(|s| s.is_object());
    if let Some(server) = server {
        let s = |key: &str| str_at(server, &[key]).to_string();
        out.push_str("\nServer:");
        let platform = str_at(server, &["Platform", "Name"]);
        if !platform.is_empty() {
            out.push_str(&format!(" {platform}"));
        }
        out.push_str("\n Engine:\n");
        aligned(&mut out, "  Version:", &s("Version"));
        let mut api = s("ApiVersion");
        if !s("MinAPIVersion").is_empty() {
            api = format!("{api} (minimum version {})", s("MinAPIVersion"));
        }
        aligned(&mut out, "  API version:", &api);
        for (label, key) in [
            ("  Go version:", "GoVersion"),
            ("  Git commit:", "GitCommit"),
            ("  Built:", "BuildTime"),
        ] {
            if !s(key).is_empty() {
                aligned(&mut out, label, &s(key));
            }
        }
        aligned(
            &mut out,
            "  OS/Arch:",
            &format!("{}/{}", s("Os"), s("Arch")),
        );
        if let Some(experimental) = server.get("Experimental").and_then(Value::as_bool) {
            aligned(&mut out, "  Experimental:", &experimental.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_shows_the_swarm_section_like_docker() {
        let info = json!({
            "ServerVersion": "0.1.0",
            "Swarm": {
                "LocalNodeState": "active", "NodeID": "node1", "NodeAddr": "10.0.0.1",
                "ControlAvailable": true, "Managers": 1, "Nodes": 2,
                "RemoteManagers": [{"NodeID": "node1", "Addr": "10.0.0.1:2377"}],
                "Cluster": {"ID": "cluster1", "Spec": {
                    "Orchestration": {"TaskHistoryRetentionLimit": 5},
                    "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0, "HeartbeatTick": 1, "ElectionTick": 10},
                    "Dispatcher": {"HeartbeatPeriod": 5000000000i64},
                    "CAConfig": {"NodeCertExpiry": 7776000000000000i64},
                    "EncryptionConfig": {"AutoLockManagers": false}
                }}
            }
        });
        let out = render_info(&info);
        let expected = "Server:\n Server Version: 0.1.0\n Swarm: active\n  NodeID: node1\n  Is Manager: true\n\
            \x20 ClusterID: cluster1\n  Managers: 1\n  Nodes: 2\n  Orchestration:\n   Task History Retention Limit: 5\n\
            \x20 Raft:\n   Snapshot Interval: 10000\n   Number of Old Snapshots to Retain: 0\n   Heartbeat Tick: 1\n\
            \x20  Election Tick: 10\n  Dispatcher:\n   Heartbeat Period: 5 seconds\n  CA Configuration:\n\
            \x20  Expiry Duration: 3 months\n   Force Rotate: 0\n  Autolock Managers: false\n\
            \x20 Root Rotation In Progress: false\n  Node Address: 10.0.0.1\n  Manager Addresses:\n   10.0.0.1:2377\n";
        assert_eq!(out, expected);
        let inactive = render_info(&json!({"Swarm": {"LocalNodeState": "inactive"}}));
        assert_eq!(inactive, "Server:\n Swarm: inactive\n");
    }

    #[test]
    fn version_aligns_like_docker() {
        let out = render_version(&json!({
            "Client": {"Version": "0.1.0", "ApiVersion": "1.41", "DefaultAPIVersion": "1.41", "Os": "linux", "Arch": "x86_64"},
            "Server": {"Version": "0.1.0", "ApiVersion": "1.41", "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"}
        }));
        assert!(out.starts_with("Client:\n Version:           0.1.0\n API version:       1.41\n"));
        assert!(out.contains("\nServer:\n Engine:\n  Version:          0.1.0\n  API version:      1.41 (minimum version 1.24)\n"));
    }
}
