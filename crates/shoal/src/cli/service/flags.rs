//! The flag groups `service create` and `service update` share: container settings, resources,
//! restart policy, update and rollback configs. Only their command-line shape lives here;
//! `spec` turns them into ServiceSpec parts.

/// Resource limits and reservations (`--limit-*`, `--reserve-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ResourceFlags {
    /// Limit CPUs
    #[arg(long, value_name = "decimal")]
    pub limit_cpu: Option<String>,
    /// Limit memory (e.g. 100M)
    #[arg(long, value_name = "bytes")]
    pub limit_memory: Option<String>,
    /// Limit the number of processes (0 = unlimited)
    #[arg(long, value_name = "int")]
    pub limit_pids: Option<i64>,
    /// Reserve CPUs
    #[arg(long, value_name = "decimal")]
    pub reserve_cpu: Option<String>,
    /// Reserve memory (e.g. 100M)
    #[arg(long, value_name = "bytes")]
    pub reserve_memory: Option<String>,
}

/// The restart policy (`--restart-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RestartFlags {
    /// Restart when condition is met ("none", "on-failure", "any")
    #[arg(long, value_parser = ["none", "on-failure", "any"])]
    pub restart_condition: Option<String>,
    /// Delay between restart attempts (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub restart_delay: Option<String>,
    /// Maximum number of restarts before giving up
    #[arg(long, value_name = "uint")]
    pub restart_max_attempts: Option<u64>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub restart_window: Option<String>,
}

/// The rolling-update configuration (`--update-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct UpdateConfigFlags {
    /// Maximum number of tasks updated simultaneously (0 to update all at once)
    #[arg(long, value_name = "uint")]
    pub update_parallelism: Option<u64>,
    /// Delay between updates (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub update_delay: Option<String>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub update_monitor: Option<String>,
    /// Action on update failure ("pause", "continue", "rollback")
    #[arg(long, value_parser = ["pause", "continue", "rollback"])]
    pub update_failure_action: Option<String>,
    /// Failure rate to tolerate during an update
    #[arg(long, value_name = "float")]
    pub update_max_failure_ratio: Option<f32>,
    /// Update order ("start-first", "stop-first")
    #[arg(long, value_parser = ["start-first", "stop-first"])]
    pub update_order: Option<String>,
}

/// The rollback configuration (`--rollback-*`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct RollbackConfigFlags {
    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once)
    #[arg(long, value_name = "uint")]
    pub rollback_parallelism: Option<u64>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub rollback_delay: Option<String>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub rollback_monitor: Option<String>,
    /// Action on rollback failure ("pause", "continue")
    #[arg(long, value_parser = ["pause", "continue"])]
    pub rollback_failure_action: Option<String>,
    /// Failure rate to tolerate during a rollback
    #[arg(long, value_name = "float")]
    pub rollback_max_failure_ratio: Option<f32>,
    /// Rollback order ("start-first", "stop-first")
    #[arg(long, value_parser = ["start-first", "stop-first"])]
    pub rollback_order: Option<String>,
}

/// Container settings both `create` and `update` take.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ContainerFlags {
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container hostname
    #[arg(long)]
    pub hostname: Option<String>,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h)
    #[arg(long, value_name = "duration")]
    pub stop_grace_period: Option<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "command")]
    pub entrypoint: Option<String>,
    /// Endpoint mode ("vip", "dnsrr")
    #[arg(long, value_parser = ["vip", "dnsrr"])]
    pub endpoint_mode: Option<String>,
    /// Maximum number of tasks per node (0 = unlimited)
    #[arg(long, value_name = "uint")]
    pub replicas_max_per_node: Option<u64>,
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Do not pin the image to the digest the nodes' engines agree on
    #[arg(long)]
    pub no_resolve_image: bool,
}
