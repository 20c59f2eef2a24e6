//! The container a task runs (moby `api/types/swarm/container.go`, plus the pieces it borrows
//! from `api/types/mount` and `api/types/container`): image, command, environment, mounts,
//! health check, DNS, privileges, limits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{ConfigReference, Driver, SecretReference};
use crate::wire::{is_default, null_default, wire_enum};

/// `TaskTemplate.ContainerSpec`. Durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Container labels (not the service's labels).
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub labels: BTreeMap<String, String>,
    /// Replaces the image's entrypoint.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub command: Vec<String>,
    /// Replaces the image's CMD.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub args: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `KEY=VALUE` entries.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub env: Vec<String>,
    /// Working directory.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileges: Option<Privileges>,
    /// Run an init inside the container; `None` means the engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
    #[serde(rename = "TTY", skip_serializing_if = "is_default")]
    pub tty: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub open_stdin: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub read_only: bool,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub mounts: Vec<Mount>,
    /// Nanoseconds to wait after the stop signal before killing; `None` means 10 s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// Extra `/etc/hosts` lines, `IP_address canonical_hostname [aliases...]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub hosts: Vec<String>,
    #[serde(rename = "DNSConfig", skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<DNSConfig>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub secrets: Vec<SecretReference>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub configs: Vec<ConfigReference>,
    /// `default`, `process` or `hyperv` (Windows); empty means the engine's default.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub isolation: String,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub sysctls: BTreeMap<String, String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub capability_add: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub capability_drop: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub ulimits: Vec<Ulimit>,
    #[serde(skip_serializing_if = "is_default")]
    pub oom_score_adj: i64,
}

/// resolv.conf settings: `nameserver`, `search`, `options`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DNSConfig {
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub nameservers: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub search: Vec<String>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub options: Vec<String>,
}

/// Security options. `CredentialSpec` and `SELinuxContext` have no `omitempty` in Go, so they
/// are sent as `null` when unset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Privileges {
    pub credential_spec: Option<CredentialSpec>,
    #[serde(rename = "SELinuxContext")]
    pub selinux_context: Option<SELinuxContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<SeccompOpts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_armor: Option<AppArmorOpts>,
    pub no_new_privileges: bool,
}

/// Managed service account (Windows only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CredentialSpec {
    pub config: String,
    pub file: String,
    pub registry: String,
}

/// SELinux labels of the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SELinuxContext {
    pub disable: bool,
    pub user: String,
    pub role: String,
    pub r#type: String,
    pub level: String,
}

wire_enum! {
    /// How seccomp is set up for a container.
    pub enum SeccompMode ("seccomp mode") {
        Default = "default",
        Unconfined = "unconfined",
        Custom = "custom",
    }
    default = Default;
}

/// Seccomp options; `Profile` is the custom profile's JSON, base64 on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SeccompOpts {
    pub mode: SeccompMode,
    #[serde(with = "crate::bytes_b64", skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<u8>,
}

wire_enum! {
    /// How AppArmor is set up for a container.
    pub enum AppArmorMode ("AppArmor mode") {
        Default = "default",
        Disabled = "disabled",
    }
    default = Default;
}

/// AppArmor options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct AppArmorOpts {
    pub mode: AppArmorMode,
}

/// A resource limit (`ulimit`), e.g. `{"Name": "nofile", "Hard": 1024, "Soft": 1024}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub hard: i64,
    pub soft: i64,
}

/// `container.HealthConfig`. Durations are nanoseconds; zero means "inherit from the image".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disable, `["CMD", args...]`, `["CMD-SHELL", command]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_default")]
    pub retries: i64,
}

wire_enum! {
    /// `mount.Type`.
    pub enum MountType ("mount type") {
        Bind = "bind",
        Volume = "volume",
        Tmpfs = "tmpfs",
        Npipe = "npipe",
        Cluster = "cluster",
        Image = "image",
    }
    default = Volume;
}

/// `mount.Mount`: a bind mount, volume or tmpfs in the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Mount {
    pub r#type: MountType,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    #[serde(skip_serializing_if = "is_default")]
    pub read_only: bool,
    /// `consistent`, `cached`, `delegated` or `default` (macOS only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_options: Option<ImageOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_options: Option<ClusterOptions>,
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BindOptions {
    /// `rprivate` (default), `private`, `rshared`, `shared`, `rslave`, `slave`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(skip_serializing_if = "is_default")]
    pub non_recursive: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub create_mountpoint: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub read_only_non_recursive: bool,
    #[serde(skip_serializing_if = "is_default")]
    pub read_only_force_recursive: bool,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeOptions {
    /// Do not copy the image's content at the target into a new volume.
    #[serde(skip_serializing_if = "is_default")]
    pub no_copy: bool,
    #[serde(
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Driver>,
}

/// Options of an image mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ImageOptions {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subpath: String,
}

/// Options of a tmpfs mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(skip_serializing_if = "is_default")]
    pub size_bytes: i64,
    /// File mode bits (`os.FileMode`), e.g. `1023` for 01777.
    #[serde(skip_serializing_if = "is_default")]
    pub mode: u32,
    /// Raw mount options, e.g. `[["noexec"]]`.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub options: Vec<Vec<String>>,
}

/// Options of a cluster (CSI) volume mount; empty in API 1.41.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterOptions {}
