//! moby's `api/types/system` `Info` (`GET /info`) and `api/types` `Version` (`GET /version`):
//! what `docker info` and `docker version` print. shoal fills the engine fields with what it
//! knows of itself and the swarm fields from the cluster; nothing here is computed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::swarm;
use crate::wire::{is_default, null_default};

/// `GET /info` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    pub driver: String,
    #[serde(deserialize_with = "null_default")]
    pub driver_status: Vec<[String; 2]>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub system_status: Vec<[String; 2]>,
    pub plugins: PluginsInfo,
    pub memory_limit: bool,
    pub swap_limit: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub kernel_memory: bool,
    #[serde(rename = "KernelMemoryTCP", skip_serializing_if = "is_default")]
    pub kernel_memory_tcp: bool,
    #[serde(rename = "CpuCfsPeriod")]
    pub cpu_cfs_period: bool,
    #[serde(rename = "CpuCfsQuota")]
    pub cpu_cfs_quota: bool,
    #[serde(rename = "CPUShares")]
    pub cpu_shares: bool,
    #[serde(rename = "CPUSet")]
    pub cpu_set: bool,
    pub pids_limit: bool,
    #[serde(rename = "IPv4Forwarding")]
    pub ipv4_forwarding: bool,
    pub debug: bool,
    #[serde(rename = "NFd")]
    pub n_fd: i64,
    pub oom_kill_disable: bool,
    #[serde(rename = "NGoroutines")]
    pub n_goroutines: i64,
    /// RFC 3339 with nanoseconds, the daemon's local time.
    pub system_time: String,
    pub logging_driver: String,
    pub cgroup_driver: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cgroup_version: String,
    #[serde(rename = "NEventsListener")]
    pub n_events_listener: i64,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSVersion")]
    pub os_version: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    pub index_server_address: String,
    /// `registry.ServiceConfig`, passed through untyped.
    pub registry_config: Option<serde_json::Value>,
    #[serde(rename = "NCPU")]
    pub ncpu: i64,
    pub mem_total: i64,
    #[serde(deserialize_with = "null_default")]
    pub generic_resources: Vec<swarm::GenericResource>,
    pub docker_root_dir: String,
    #[serde(rename = "HttpProxy")]
    pub http_proxy: String,
    #[serde(rename = "HttpsProxy")]
    pub https_proxy: String,
    pub no_proxy: String,
    /// The host name.
    pub name: String,
    /// Engine labels, `key=value`.
    #[serde(deserialize_with = "null_default")]
    pub labels: Vec<String>,
    pub experimental_build: bool,
    pub server_version: String,
    #[serde(deserialize_with = "null_default")]
    pub runtimes: BTreeMap<String, Runtime>,
    pub default_runtime: String,
    pub swarm: swarm::Info,
    pub live_restore_enabled: bool,
    pub isolation: String,
    pub init_binary: String,
    pub containerd_commit: Commit,
    pub runc_commit: Commit,
    pub init_commit: Commit,
    #[serde(deserialize_with = "null_default")]
    pub security_options: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product_license: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub default_address_pools: Vec<NetworkAddressPool>,
    #[serde(
        rename = "CDISpecDirs",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub cdi_spec_dirs: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// Plugins by kind, e.g. `Network: ["bridge", "host", "overlay"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PluginsInfo {
    #[serde(deserialize_with = "null_default")]
    pub volume: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub network: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub authorization: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub log: Vec<String>,
}

/// A container runtime the engine offers (moby gives it lowercase JSON names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Runtime {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    #[serde(
        rename = "runtimeArgs",
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub runtime_args: Vec<String>,
    #[serde(rename = "runtimeType", skip_serializing_if = "String::is_empty")]
    pub runtime_type: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub options: BTreeMap<String, serde_json::Value>,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub status: BTreeMap<String, String>,
}

/// A component's commit, and the one the engine expected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Commit {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Expected", skip_serializing_if = "String::is_empty")]
    pub expected: String,
}

/// A local address pool of the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkAddressPool {
    pub base: String,
    pub size: i64,
}

/// `GET /version` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Version {
    pub platform: PlatformName,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub components: Vec<ComponentVersion>,
    pub version: String,
    #[serde(rename = "ApiVersion")]
    pub api_version: String,
    #[serde(rename = "MinAPIVersion", skip_serializing_if = "String::is_empty")]
    pub min_api_version: String,
    pub git_commit: String,
    pub go_version: String,
    pub os: String,
    pub arch: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    #[serde(skip_serializing_if = "is_default")]
    pub experimental: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub build_time: String,
}

/// `Version.Platform`, e.g. `{"Name": "shoal"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PlatformName {
    pub name: String,
}

/// One component of the server, e.g. `{"Name": "Engine", "Version": "0.1.0", "Details": {…}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ComponentVersion {
    pub name: String,
    pub version: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub details: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_uses_docker_field_names() {
        let v = Version {
            platform: PlatformName {
                name: "shoal".into(),
            },
            version: "0.1.0".into(),
            api_version: "1.41".into(),
            min_api_version: "1.24".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({
                "Platform": {"Name": "shoal"}, "Version": "0.1.0", "ApiVersion": "1.41",
                "MinAPIVersion": "1.24", "GitCommit": "", "GoVersion": "", "Os": "linux",
                "Arch": "amd64"
            })
        );
    }

    #[test]
    fn info_round_trips_a_docker_info_body() {
        let body: serde_json::Value = serde_json::from_str(
            r#"{
            "ID": "7TRN:IPZB:QYBB", "Containers": 3, "ContainersRunning": 2,
            "ContainersPaused": 0, "ContainersStopped": 1, "Images": 4, "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "overlay"],
                        "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": true,
            "Debug": false, "NFd": 30, "OomKillDisable": false, "NGoroutines": 40,
            "SystemTime": "2024-03-01T10:00:00.123456789Z", "LoggingDriver": "json-file",
            "CgroupDriver": "systemd", "CgroupVersion": "2", "NEventsListener": 0,
            "KernelVersion": "6.8.0", "OperatingSystem": "Ubuntu 24.04", "OSVersion": "24.04",
            "OSType": "linux", "Architecture": "x86_64",
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"IndexConfigs": {}}, "NCPU": 8, "MemTotal": 16000000000,
            "GenericResources": null, "DockerRootDir": "/var/lib/shoal", "HttpProxy": "",
            "HttpsProxy": "", "NoProxy": "", "Name": "node-1", "Labels": [],
            "ExperimentalBuild": false, "ServerVersion": "0.1.0",
            "Runtimes": {"runc": {"path": "runc", "status": {"org.opencontainers.runtime-spec.features": "{}"}}},
            "DefaultRuntime": "runc",
            "Swarm": {"NodeID": "abc", "NodeAddr": "10.0.0.1", "LocalNodeState": "active",
                      "ControlAvailable": true, "Error": "",
                      "RemoteManagers": [{"NodeID": "abc", "Addr": "10.0.0.1:2377"}],
                      "Nodes": 1, "Managers": 1},
            "LiveRestoreEnabled": false, "Isolation": "", "InitBinary": "docker-init",
            "ContainerdCommit": {"ID": "abc"}, "RuncCommit": {"ID": "def"},
            "InitCommit": {"ID": "ghi"}, "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": null
        }"#,
        )
        .unwrap();
        let info: Info = serde_json::from_value(body).unwrap();
        assert_eq!(info.swarm.local_node_state, swarm::LocalNodeState::Active);
        assert_eq!(info.driver_status[0][1], "extfs");
        let again = serde_json::to_value(&info).unwrap();
        assert_eq!(again["Swarm"]["RemoteManagers"][0]["Addr"], "10.0.0.1:2377");
        assert_eq!(again["Warnings"], json!([]));
        assert_eq!(again["Plugins"]["Authorization"], json!([]));
        assert_eq!(again["Runtimes"]["runc"]["path"], "runc");
    }
}
