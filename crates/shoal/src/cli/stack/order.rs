//! `stack deploy --order`: Compose's `depends_on`, which Swarm ignores, honoured by the client.
//! The services are created or updated in waves (from `shoal_compose::depends`); before a wave,
//! each dependency of its services is followed, by the rules of `wait`, until its condition
//! holds: `service_started` and `service_healthy` when its current-spec tasks run (the agent
//! reports RUNNING only once a container with a health check is healthy), and
//! `service_completed_successfully` when its tasks completed. It decides when to deploy, never
//! what: the specs are those `docker stack deploy` sends.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::{bail, Result};
use shoal_compose::depends::{Condition, Order};

use super::super::client::Client;
use super::super::table::go_duration;
use super::wait::{service_progress, Progress, POLL};

/// One dependency to wait for before a wave, with the services that wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Gate {
    /// The dependency's short name (in the file).
    pub service: String,
    pub condition: Condition,
    /// `false` when every dependent marked it `required: false`.
    pub required: bool,
    /// Short names of the services of the wave that depend on it.
    pub dependents: Vec<String>,
}

/// What must hold before wave `index` is deployed: its services' dependencies, one gate per
/// dependency and condition.
pub(super) fn gates(order: &Order, index: usize) -> Vec<Gate> {
    let mut gates: BTreeMap<(String, Condition), Gate> = BTreeMap::new();
    for service in order.waves.get(index).into_iter().flatten() {
        for dep in order.dependencies.get(service).into_iter().flatten() {
            let gate = gates
                .entry((dep.service.clone(), dep.condition))
                .or_insert_with(|| Gate {
                    service: dep.service.clone(),
                    condition: dep.condition,
                    required: false,
                    dependents: Vec::new(),
                });
            gate.required |= dep.required;
            gate.dependents.push(service.clone());
        }
    }
    gates.into_values().collect()
}

/// The waves as `--dry-run` prints them.
pub(super) fn wave_lines(stack: &str, order: &Order) -> Vec<String> {
    let mut lines = vec![format!(
        "Order (depends_on, --order): {} wave{}",
        order.waves.len(),
        if order.waves.len() == 1 { "" } else { "s" }
    )];
    for (i, wave) in order.waves.iter().enumerate() {
        let names: Vec<String> = wave.iter().map(|s| format!("{stack}_{s}")).collect();
        let after: Vec<String> = gates(order, i)
            .iter()
            .map(|g| format!("{stack}_{} ({})", g.service, g.condition))
            .collect();
        let mut line = format!("  {}. {}", i + 1, names.join(", "));
        if !after.is_empty() {
            line.push_str(&format!(" after {}", after.join(", ")));
        }
        lines.push(line);
    }
    lines
}

/// Whether `p` satisfies `condition`.
pub(super) fn satisfied(p: &Progress, condition: Condition) -> bool {
    if p.failure.is_some() {
        return false;
    }
    match condition {
        // A job has started once a task ran; a service once every slot runs.
        Condition::Started if p.is_job => p.started > 0,
        Condition::Started | Condition::Healthy => p.converged,
        Condition::CompletedSuccessfully if p.is_job => p.converged,
        Condition::CompletedSuccessfully => p.desired > 0 && p.completed >= p.desired,
    }
}

/// Follows the dependency of `gate` until its condition holds; an error names the dependency,
/// its dependents and why (a failing task, a paused update, the `deadline`).
pub(super) async fn wait_for(
    client: &Client,
    stack: &str,
    gate: &Gate,
    deadline: Instant,
    started: Instant,
    seen_failures: &HashSet<String>,
    quiet: bool,
) -> Result<()> {
    let name = format!("{stack}_{}", gate.service);
    let dependents: Vec<String> = gate
        .dependents
        .iter()
        .map(|d| format!("{stack}_{d}"))
        .collect();
    let dependents = dependents.join(", ");
    if !quiet {
        outln!(
            "Waiting for {name} ({}) before {dependents}",
            gate.condition
        );
    }
    let mut last_line = String::new();
    loop {
        let Some(p) = service_progress(client, &name, seen_failures).await? else {
            bail!("{dependents} depends on {name}, which is not in the cluster");
        };
        if let Some(failure) = &p.failure {
            bail!(
                "{name} did not reach {} ({failure}), so {dependents} was not deployed",
                gate.condition
            );
        }
        if satisfied(&p, gate.condition) {
            return Ok(());
        }
        let line = p.line();
        if !quiet && line != last_line {
            outln!("  {line}");
            last_line = line;
        }
        if Instant::now() >= deadline {
            let mut why = p.line();
            if let Some(e) = &p.last_error {
                why.push_str(&format!(", last task error: {e}"));
            }
            bail!(
                "timed out after {} waiting for {name} ({}) before {dependents} ({why})",
                go_duration(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)),
                gate.condition
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_compose::depends::Dependency;
    use shoal_compose::yaml::Pos;

    fn dep(service: &str, condition: Condition) -> Dependency {
        Dependency {
            service: service.into(),
            condition,
            required: true,
            restart: false,
            pos: Pos::new(&"f".into(), 1, 1),
        }
    }

    fn order() -> Order {
        Order {
            dependencies: [
                ("db".to_string(), vec![]),
                ("migrate".to_string(), vec![]),
                (
                    "api".to_string(),
                    vec![
                        dep("db", Condition::Healthy),
                        dep("migrate", Condition::CompletedSuccessfully),
                    ],
                ),
                ("web".to_string(), vec![dep("api", Condition::Started)]),
            ]
            .into(),
            waves: vec![
                vec!["db".into(), "migrate".into()],
                vec!["api".into()],
                vec!["web".into()],
            ],
            warnings: vec![],
        }
    }

    #[test]
    fn the_waves_print_with_what_each_waits_for() {
        assert_eq!(
            wave_lines("todo", &order()),
            vec![
                "Order (depends_on, --order): 3 waves",
                "  1. todo_db, todo_migrate",
                "  2. todo_api after todo_db (service_healthy), todo_migrate (service_completed_successfully)",
                "  3. todo_web after todo_api (service_started)",
            ]
        );
    }

    fn progress(is_job: bool, done: u64, desired: u64, started: u64, completed: u64) -> Progress {
        Progress {
            name: "s".into(),
            done,
            desired,
            update: String::new(),
            converged: done >= desired,
            failure: None,
            last_error: None,
            is_job,
            started,
            completed,
        }
    }

    #[test]
    fn conditions_follow_the_service_kind() {
        let service = progress(false, 1, 2, 1, 0);
        assert!(!satisfied(&service, Condition::Started));
        let service = progress(false, 2, 2, 2, 0);
        assert!(satisfied(&service, Condition::Healthy));
        assert!(!satisfied(&service, Condition::CompletedSuccessfully));
        let job = progress(true, 0, 1, 1, 0);
        assert!(satisfied(&job, Condition::Started));
        assert!(!satisfied(&job, Condition::CompletedSuccessfully));
        let job = progress(true, 1, 1, 1, 1);
        assert!(satisfied(&job, Condition::CompletedSuccessfully));
        let mut failed = progress(true, 1, 1, 1, 1);
        failed.failure = Some("task x was rejected".into());
        assert!(!satisfied(&failed, Condition::CompletedSuccessfully));
        let finished = progress(false, 0, 2, 2, 2);
        assert!(satisfied(&finished, Condition::CompletedSuccessfully));
    }
}
