//! Services (moby `api/types/swarm/service.go`): the spec a user deploys, its mode, its rolling
//! update and rollback settings, and the status the managers report about it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::{Endpoint, EndpointSpec, NetworkAttachmentConfig, TaskSpec, Version};
use crate::wire::{go_f32, is_default, null_default, wire_enum};

/// A service, as `GET /services/{id}` returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    pub version: Version,
    #[serde(with = "crate::wire::time")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::wire::time")]
    pub updated_at: DateTime<Utc>,
    pub spec: ServiceSpec,
    /// The spec before the last update; `rollback` restores it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_spec: Option<ServiceSpec>,
    pub endpoint: Endpoint,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Task counts, only with `GET /services?status=true` (API 1.41).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_status: Option<ServiceStatus>,
    /// Present on job services only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_status: Option<JobStatus>,
}

/// `POST /services/create` and `POST /services/{id}/update` body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceSpec {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    pub task_template: TaskSpec,
    pub mode: ServiceMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_config: Option<UpdateConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback_config: Option<UpdateConfig>,
    /// Deprecated in favour of `TaskTemplate.Networks`, still accepted.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub networks: Vec<NetworkAttachmentConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_spec: Option<EndpointSpec>,
}

/// Exactly one of the four modes is set. An empty mode means replicated with one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceMode {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicated: Option<ReplicatedService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalService>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicated_job: Option<ReplicatedJob>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global_job: Option<GlobalJob>,
}

impl ServiceMode {
    /// The mode's name as the services `mode` filter spells it: `replicated`, `global`,
    /// `replicated-job` or `global-job` (an empty mode counts as `replicated`).
    pub fn name(&self) -> &'static str {
        if self.global.is_some() {
            "global"
        } else if self.replicated_job.is_some() {
            "replicated-job"
        } else if self.global_job.is_some() {
            "global-job"
        } else {
            "replicated"
        }
    }

    /// A job mode: tasks run to completion and are not restarted once they succeed.
    pub fn is_job(&self) -> bool {
        self.replicated_job.is_some() || self.global_job.is_some()
    }
}

/// A fixed number of tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ReplicatedService {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
}

/// One task on every eligible node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GlobalService {}

/// Run tasks until `TotalCompletions` succeeded, at most `MaxConcurrent` at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ReplicatedJob {
    /// Defaults to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent: Option<u64>,
    /// Defaults to `MaxConcurrent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_completions: Option<u64>,
}

/// One run-to-completion task on every eligible node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GlobalJob {}

wire_enum! {
    /// State of a rolling update or rollback.
    pub enum UpdateState ("update state") {
        Updating = "updating",
        Paused = "paused",
        Completed = "completed",
        RollbackStarted = "rollback_started",
        RollbackPaused = "rollback_paused",
        RollbackCompleted = "rollback_completed",
    }
    default = Updating;
}

/// Progress of the current (or last) update of a service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UpdateStatus {
    pub state: UpdateState,
    #[serde(
        with = "crate::wire::time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        with = "crate::wire::time_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

wire_enum! {
    /// What to do when too many updated tasks fail.
    pub enum FailureAction ("update failure action") {
        Pause = "pause",
        Continue = "continue",
        Rollback = "rollback",
    }
    default = Pause;
}

wire_enum! {
    /// `stop-first` stops the old task before starting the new one; `start-first` overlaps.
    pub enum UpdateOrder ("update order") {
        StopFirst = "stop-first",
        StartFirst = "start-first",
    }
    default = StopFirst;
}

/// Rolling update (or rollback) settings. Durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct UpdateConfig {
    /// Tasks updated at once; 0 means all at once.
    pub parallelism: u64,
    /// Pause between batches.
    #[serde(skip_serializing_if = "is_default")]
    pub delay: i64,
    pub failure_action: FailureAction,
    /// How long a new task is watched for failure; 0 means the default (5 s).
    #[serde(skip_serializing_if = "is_default")]
    pub monitor: i64,
    /// Fraction of failed tasks tolerated before `FailureAction` applies.
    #[serde(serialize_with = "go_f32")]
    pub max_failure_ratio: f32,
    pub order: UpdateOrder,
}

/// Task counts of a service (`GET /services?status=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceStatus {
    /// Tasks whose observed state is RUNNING.
    pub running_tasks: u64,
    /// Replicas, or for global services the tasks whose desired state is not SHUTDOWN.
    pub desired_tasks: u64,
    /// Tasks that COMPLETEd (job modes only).
    pub completed_tasks: u64,
}

/// Progress of a job service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct JobStatus {
    /// Increases each time the job is (re-)executed; tasks carry the iteration they belong to.
    pub job_iteration: Version,
    /// Go always sends this time; `None` goes out as Go's zero time.
    #[serde(with = "crate::wire::time_or_zero")]
    pub last_execution: Option<DateTime<Utc>>,
}

/// `POST /services/create` answer (201).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceCreateResponse {
    #[serde(rename = "ID", skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// `POST /services/{id}/update` answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ServiceUpdateResponse {
    #[serde(deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// Swarm's service defaults (SwarmKit `api/defaults`): what `GET /services/{id}?insertDefaults=true`
/// shows for the fields a spec leaves out. The stored spec is never changed by them.
pub mod defaults {
    /// A container's stop grace period.
    pub const STOP_GRACE_PERIOD: i64 = 10_000_000_000;
    /// The pause before a task is restarted.
    pub const RESTART_DELAY: i64 = 5_000_000_000;
    /// How long an updated task is watched for failure.
    pub const UPDATE_MONITOR: i64 = 5_000_000_000;
}

impl UpdateConfig {
    /// Swarm's default update (and rollback) policy: one task at a time, stop-first, pause on
    /// failure, watched for 5 s.
    pub fn swarm_default() -> Self {
        UpdateConfig {
            parallelism: 1,
            monitor: defaults::UPDATE_MONITOR,
            ..Default::default()
        }
    }
}

impl ServiceSpec {
    /// This spec with Swarm's defaults filled in where it says nothing. Jobs get no update or
    /// rollback policy: they may not have one.
    pub fn with_defaults(&self) -> ServiceSpec {
        use super::{DNSConfig, Placement, ResourceRequirements, RestartPolicy};
        let mut spec = self.clone();
        let t = &mut spec.task_template;
        if let Some(c) = &mut t.container_spec {
            c.stop_grace_period
                .get_or_insert(defaults::STOP_GRACE_PERIOD);
            c.dns_config.get_or_insert_with(DNSConfig::default);
        }
        t.resources
            .get_or_insert_with(ResourceRequirements::default);
        t.placement.get_or_insert_with(Placement::default);
        let restart = t.restart_policy.get_or_insert_with(RestartPolicy::default);
        restart.delay.get_or_insert(defaults::RESTART_DELAY);
        let is_job = spec.mode.replicated_job.is_some() || spec.mode.global_job.is_some();
        if !is_job {
            for policy in [&mut spec.update_config, &mut spec.rollback_config] {
                let p = policy.get_or_insert_with(UpdateConfig::swarm_default);
                if p.monitor == 0 {
                    p.monitor = defaults::UPDATE_MONITOR;
                }
            }
        }
        spec
    }
}
