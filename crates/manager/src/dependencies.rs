//! Compose's `depends_on`, honoured by the managers: a service labelled with its dependencies
//! (`shoal_types::depends::LABEL`, written by `shoal stack deploy`) has its new tasks held
//! pending, with the reason in the task's error, until every dependency reaches its condition.
//! Decided from the replicated state alone, so it holds with `--detach`, across a leader
//! failover and whenever a task of the dependent is created later (a replacement, a scale-up):
//! each new task waits for its dependencies again. Tasks that already run are left alone.

use shoal_store::State;
use shoal_types::depends::{self, Condition, Dependency};
use shoal_types::swarm::{Service, Task, TaskState};

/// Why the new tasks of `svc` must wait, or `None` when they may be scheduled.
pub fn waiting_for(state: &State, svc: &Service) -> Option<String> {
    let label = svc.spec.labels.get(depends::LABEL)?;
    let deps = match depends::decode(label) {
        Ok(deps) => deps,
        // Refused at create and update; a spec stored before that check waits, saying why.
        Err(e) => return Some(e),
    };
    let unmet: Vec<String> = deps.iter().filter_map(|d| unmet(state, d)).collect();
    (!unmet.is_empty()).then(|| format!("waiting for dependencies: {}", unmet.join(", ")))
}

/// The dependency as the task's error shows it, unless its condition holds.
fn unmet(state: &State, d: &Dependency) -> Option<String> {
    let Some(dep) = state.services.iter().find(|s| s.spec.name == d.service) else {
        return d
            .required
            .then(|| format!("{} ({}, no such service)", d.service, d.condition));
    };
    (!reached(state, dep, d.condition)).then(|| format!("{} ({})", d.service, d.condition))
}

/// Whether the tasks of `dep` with its current spec reach `condition`.
pub fn reached(state: &State, dep: &Service, condition: Condition) -> bool {
    let mode = &dep.spec.mode;
    let iteration = dep.job_status.as_ref().map(|j| j.job_iteration.index);
    let current: Vec<&Task> = state
        .tasks
        .iter()
        .filter(|t| t.service_id == dep.id && t.spec == dep.spec.task_template)
        .filter(|t| {
            !mode.is_job()
                || iteration.is_none()
                || t.job_iteration.as_ref().map(|v| v.index) == iteration
        })
        .collect();
    let count = |s: TaskState| current.iter().filter(|t| t.status.state == s).count();
    let live: Vec<&&Task> = current
        .iter()
        .filter(|t| t.desired_state <= TaskState::Running)
        .collect();
    let replicas = mode
        .replicated
        .as_ref()
        .map(|r| r.replicas.unwrap_or(1) as usize);
    match condition {
        Condition::Started | Condition::Healthy => {
            if mode.is_job() {
                count(TaskState::Running) + count(TaskState::Complete) > 0
            } else if let Some(want) = replicas {
                live.iter()
                    .filter(|t| t.status.state == TaskState::Running)
                    .count()
                    >= want
            } else {
                !live.is_empty() && live.iter().all(|t| t.status.state == TaskState::Running)
            }
        }
        Condition::CompletedSuccessfully => {
            let done = count(TaskState::Complete);
            if let Some(job) = &mode.replicated_job {
                let want = job
                    .total_completions
                    .or(job.max_concurrent)
                    .unwrap_or(1)
                    .max(1) as usize;
                done >= want
            } else if mode.global_job.is_some() {
                !current.is_empty()
                    && current
                        .iter()
                        .filter(|t| t.desired_state <= TaskState::Complete)
                        .all(|t| t.status.state == TaskState::Complete)
            } else {
                let want = replicas.unwrap_or(current.len()).max(1);
                done >= want
            }
        }
    }
}

/// Checks a service spec's dependencies label: well formed, and not the service itself.
pub fn validate(
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(label) = labels.get(depends::LABEL) else {
        return Ok(());
    };
    for d in depends::decode(label)? {
        if d.service == name {
            return Err(format!(
                "label {}: service {name} depends on itself",
                depends::LABEL
            ));
        }
    }
    Ok(())
}
