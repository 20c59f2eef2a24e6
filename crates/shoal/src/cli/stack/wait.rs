//! `stack deploy --wait` and `stack wait`: follows every service of a stack until it has
//! converged — all slots running the current spec (one task per eligible node for global
//! services, all completions for jobs) and no rolling update in progress — or until something
//! shows it never will (a paused or rolled-back update, a rejected task, a task that keeps
//! failing) or the time is up. It only reads; Ctrl-C stops the waiting, never the deployment.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::Value;

use super::super::client::{encode, Client, Filters, Query};
use super::super::table::str_at;
use super::namespace_filter;

/// How often the services and their tasks are read again.
const POLL: Duration = Duration::from_millis(500);

/// New failures of up-to-date tasks after which a service counts as failing for good.
const FAILURES_BEFORE_GIVING_UP: usize = 3;

/// What one service looks like right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Progress {
    pub name: String,
    /// Tasks running the current spec (completed tasks for jobs).
    pub done: u64,
    pub desired: u64,
    /// `UpdateStatus.State`, empty when there was no update.
    pub update: String,
    pub converged: bool,
    /// Why the service will not converge by itself.
    pub failure: Option<String>,
    /// The last thing a task that is not running said (shown on timeout).
    pub last_error: Option<String>,
    pub is_job: bool,
}

impl Progress {
    pub(super) fn line(&self) -> String {
        let what = if self.is_job { "completed" } else { "running" };
        let state = if self.converged {
            "converged".to_string()
        } else if self.update.is_empty() {
            "converging".to_string()
        } else {
            self.update.clone()
        };
        format!(
            "{}: {}/{} {what}, {state}",
            self.name, self.done, self.desired
        )
    }
}

/// What a wait follows.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// Every service of a stack.
    Stack(&'a str),
    /// Services by ID or name (`service create/update/rollback/scale`).
    Services(&'a [String]),
}

impl Target<'_> {
    async fn services(&self, client: &Client) -> Result<Vec<Value>> {
        match self {
            Target::Stack(stack) => {
                let filters = Filters::new().with("label", namespace_filter(stack));
                let path = Query::new()
                    .push("status", "true")
                    .filters(&filters)
                    .to_path("/services");
                services(client, &path).await
            }
            Target::Services(keys) => {
                let path = Query::new().push("status", "true").to_path("/services");
                Ok(services(client, &path)
                    .await?
                    .into_iter()
                    .filter(|s| {
                        keys.iter()
                            .any(|k| k == str_at(s, &["ID"]) || k == str_at(s, &["Spec", "Name"]))
                    })
                    .collect())
            }
        }
    }
}

/// Waits until every service of `stack` converged; an error names the service and why.
pub(super) async fn wait_for_stack(
    client: &Client,
    stack: &str,
    timeout: Duration,
    quiet: bool,
) -> Result<()> {
    tokio::select! {
        result = follow(client, Target::Stack(stack), timeout, quiet) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "\nStopped waiting; the deployment goes on (see `shoal stack ps {stack}`)."
            );
            std::process::exit(130);
        }
    }
}

/// Waits, as docker's `service create/update` do without `--detach`, until the services
/// (IDs or names) converged; an error names the service and why. No time limit, as docker's.
pub(in crate::cli) async fn wait_for_services(
    client: &Client,
    keys: &[String],
    quiet: bool,
) -> Result<()> {
    tokio::select! {
        result = follow(client, Target::Services(keys), Duration::MAX, quiet) => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "\nStopped waiting; the service goes on converging (see `shoal service ps {}`).",
                keys.join(" ")
            );
            std::process::exit(130);
        }
    }
}

async fn follow(client: &Client, target: Target<'_>, timeout: Duration, quiet: bool) -> Result<()> {
    let started = Instant::now();
    let initial = target.services(client).await?;
    if initial.is_empty() {
        match target {
            Target::Stack(stack) => bail!("nothing found in stack: {stack}"),
            Target::Services(keys) => bail!("no such service: {}", keys.join(", ")),
        }
    }
    // Failures from before the wait started say nothing about this deployment.
    let seen_failures = failures_of(client, &initial).await?;
    let mut display = Display::new(quiet);
    loop {
        let mut all = Vec::new();
        for service in target.services(client).await? {
            let current = tasks(client, str_at(&service, &["ID"]), true).await?;
            all.push(progress(&service, &current, &seen_failures));
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        display.show(&all);
        if let Some(p) = all.iter().find(|p| p.failure.is_some()) {
            display.finish();
            let held: String = held_by(&all, &p.name)
                .iter()
                .map(|line| format!("\n{line}"))
                .collect();
            bail!(
                "service {} did not converge: {}{held}",
                p.name,
                p.failure.as_deref().unwrap_or_default()
            );
        }
        if all.iter().all(|p| p.converged) {
            display.finish();
            if !quiet {
                match target {
                    Target::Stack(stack) => {
                        let n = all.len();
                        let s = if n == 1 { "" } else { "s" };
                        outln!("Stack {stack}: {n} service{s} converged");
                    }
                    Target::Services(_) => outln!("verify: Service converged"),
                }
            }
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let what = match target {
                Target::Stack(stack) => format!("stack {stack}"),
                Target::Services(keys) => format!("service {}", keys.join(", ")),
            };
            display.finish();
            let pending: Vec<String> = all
                .iter()
                .filter(|p| !p.converged)
                .map(|p| {
                    let mut s = p.line();
                    if let Some(e) = &p.last_error {
                        s.push_str(&format!(" (last task error: {e})"));
                    }
                    s
                })
                .collect();
            bail!(
                "timed out after {} waiting for {what} to converge:\n  {}",
                super::super::table::go_duration(timeout.as_nanos() as i64),
                pending.join("\n  ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The services whose tasks the managers hold until `dependency`'s `depends_on` condition
/// holds (their pending task says so), one line each.
fn held_by(all: &[Progress], dependency: &str) -> Vec<String> {
    let named = format!(" {dependency} (");
    all.iter()
        .filter_map(|p| {
            let err = p.last_error.as_deref()?;
            let waits = err.strip_prefix("waiting for dependencies:")?;
            format!(" {}", waits.trim_start())
                .contains(&named)
                .then(|| format!("{} is held until it holds: {err}", p.name))
        })
        .collect()
}

/// The IDs of the failed and rejected tasks of `services`: failures from before a deployment,
/// which say nothing about it.
async fn failures_of(client: &Client, services: &[Value]) -> Result<HashSet<String>> {
    let mut seen = HashSet::new();
    for service in services {
        for task in tasks(client, str_at(service, &["ID"]), false).await? {
            if matches!(state_of(&task), "failed" | "rejected") {
                seen.insert(str_at(&task, &["ID"]).to_string());
            }
        }
    }
    Ok(seen)
}

async fn services(client: &Client, path: &str) -> Result<Vec<Value>> {
    Ok(client
        .get(path)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The tasks of one service; with `up_to_date`, only those running its current spec.
async fn tasks(client: &Client, service: &str, up_to_date: bool) -> Result<Vec<Value>> {
    let mut filters = Filters::new().with("service", service);
    if up_to_date {
        filters.add("_up-to-date", "true");
    }
    let path = Query::new().filters(&filters).to_path("/tasks");
    Ok(client
        .get(&path)
        .await
        .map_err(|e| anyhow::anyhow!("reading the tasks of service {}: {e}", encode(service)))?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

fn state_of(task: &Value) -> &str {
    str_at(task, &["Status", "State"])
}

/// Where one service stands, from the service (listed with `status=true`) and the tasks that
/// run its current spec. Pure, so the rules can be tested without a daemon.
pub(super) fn progress(
    service: &Value,
    tasks: &[Value],
    seen_failures: &HashSet<String>,
) -> Progress {
    let name = str_at(service, &["Spec", "Name"]).to_string();
    let mode = service
        .pointer("/Spec/Mode")
        .cloned()
        .unwrap_or(Value::Null);
    let update = str_at(service, &["UpdateStatus", "State"]).to_string();
    let update_message = str_at(service, &["UpdateStatus", "Message"]).to_string();
    let iteration = service
        .pointer("/JobStatus/JobIteration/Index")
        .and_then(Value::as_u64);
    let current: Vec<&Value> = tasks
        .iter()
        .filter(|t| match iteration {
            Some(i) => t.pointer("/JobIteration/Index").and_then(Value::as_u64) == Some(i),
            None => true,
        })
        .collect();
    let running = current
        .iter()
        .filter(|t| str_at(t, &["DesiredState"]) == "running" && state_of(t) == "running")
        .count() as u64;
    let completed = current.iter().filter(|t| state_of(t) == "complete").count() as u64;
    let status_desired = service
        .pointer("/ServiceStatus/DesiredTasks")
        .and_then(Value::as_u64)
        .unwrap_or(0);

    let (is_job, done, desired, tasks_converged) = if let Some(r) = mode.get("Replicated") {
        let replicas = r.get("Replicas").and_then(Value::as_u64).unwrap_or(1);
        (false, running, replicas, running >= replicas)
    } else if mode.get("Global").is_some() {
        let desired = status_desired.max(
            current
                .iter()
                .filter(|t| str_at(t, &["DesiredState"]) == "running")
                .count() as u64,
        );
        (false, running, desired, running >= desired)
    } else if let Some(j) = mode.get("ReplicatedJob") {
        let total = j
            .get("TotalCompletions")
            .and_then(Value::as_u64)
            .or_else(|| j.get("MaxConcurrent").and_then(Value::as_u64))
            .unwrap_or(1);
        (true, completed, total, completed >= total)
    } else {
        // A global job: one completion per node it runs on.
        let total = current.len() as u64;
        (true, completed, total, total > 0 && completed >= total)
    };

    let failed: Vec<&&Value> = current
        .iter()
        .filter(|t| {
            matches!(state_of(t), "failed" | "rejected")
                && !seen_failures.contains(str_at(t, &["ID"]))
        })
        .collect();
    let error_of = |t: &Value| {
        let err = str_at(t, &["Status", "Err"]);
        if err.is_empty() {
            str_at(t, &["Status", "Message"]).to_string()
        } else {
            err.to_string()
        }
    };
    let mut failure = None;
    if let Some(t) = failed.iter().find(|t| state_of(t) == "rejected") {
        failure = Some(format!(
            "task {} was rejected: {}",
            str_at(t, &["ID"]),
            error_of(t)
        ));
    } else if failed.len() >= FAILURES_BEFORE_GIVING_UP {
        let last = failed
            .iter()
            .max_by_key(|t| str_at(t, &["Status", "Timestamp"]).to_string());
        failure = Some(format!(
            "{} tasks failed, the last with: {}",
            failed.len(),
            last.map(|t| error_of(t)).unwrap_or_default()
        ));
    } else if matches!(
        update.as_str(),
        "paused" | "rollback_started" | "rollback_paused" | "rollback_completed"
    ) {
        let message = if update_message.is_empty() {
            String::new()
        } else {
            format!(": {update_message}")
        };
        failure = Some(format!("update {update}{message}"));
    }
    let last_error = current
        .iter()
        .filter(|t| state_of(t) != "running" && state_of(t) != "complete")
        .max_by_key(|t| str_at(t, &["Status", "Timestamp"]).to_string())
        .map(|t| error_of(t))
        .filter(|e| !e.is_empty());
    let update_done = update.is_empty() || update == "completed";
    Progress {
        name,
        done,
        desired,
        converged: failure.is_none() && tasks_converged && update_done,
        update,
        failure,
        last_error,
        is_job,
    }
}

/// Progress lines: redrawn in place on a terminal, printed when they change otherwise.
struct Display {
    quiet: bool,
    bars: Option<(
        indicatif::MultiProgress,
        BTreeMap<String, indicatif::ProgressBar>,
    )>,
    printed: BTreeMap<String, String>,
}

impl Display {
    fn new(quiet: bool) -> Self {
        let bars = (!quiet && std::io::stdout().is_terminal())
            .then(|| (indicatif::MultiProgress::new(), BTreeMap::new()));
        Self {
            quiet,
            bars,
            printed: BTreeMap::new(),
        }
    }

    fn show(&mut self, all: &[Progress]) {
        if self.quiet {
            return;
        }
        if let Some((multi, bars)) = &mut self.bars {
            for p in all {
                let bar = bars.entry(p.name.clone()).or_insert_with(|| {
                    let bar = multi.add(indicatif::ProgressBar::new_spinner());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(p.line());
                if p.converged && !bar.is_finished() {
                    bar.finish_with_message(p.line());
                }
            }
            return;
        }
        for p in all {
            let line = p.line();
            if self.printed.get(&p.name) != Some(&line) {
                outln!("{line}");
                self.printed.insert(p.name.clone(), line);
            }
        }
    }

    fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(id: &str, state: &str, err: &str) -> Value {
        json!({"ID": id, "DesiredState": "running",
               "Status": {"State": state, "Err": err, "Timestamp": id}})
    }

    #[test]
    fn a_replicated_service_converges_when_all_slots_run_and_the_update_completed() {
        let svc = json!({"Spec": {"Name": "s_web", "Mode": {"Replicated": {"Replicas": 2}}},
                         "UpdateStatus": {"State": "updating"}});
        let tasks = [task("a", "running", ""), task("b", "running", "")];
        let p = progress(&svc, &tasks, &HashSet::new());
        assert!(!p.converged, "{p:?}");
        assert_eq!(p.line(), "s_web: 2/2 running, updating");
        let svc = json!({"Spec": {"Name": "s_web", "Mode": {"Replicated": {"Replicas": 2}}},
                         "UpdateStatus": {"State": "completed"}});
        assert!(progress(&svc, &tasks, &HashSet::new()).converged);
        assert!(!progress(&svc, &tasks[..1], &HashSet::new()).converged);
    }

    #[test]
    fn a_rejected_task_fails_with_its_error_unless_it_was_there_before() {
        let svc = json!({"Spec": {"Name": "s_web", "Mode": {"Replicated": {}}}});
        let tasks = [task("a", "rejected", "No such image: nope:latest")];
        let p = progress(&svc, &tasks, &HashSet::new());
        assert!(p.failure.unwrap().contains("No such image: nope:latest"));
        let seen: HashSet<String> = ["a".to_string()].into();
        assert!(progress(&svc, &tasks, &seen).failure.is_none());
    }

    #[test]
    fn a_paused_update_and_repeated_failures_are_failures() {
        let svc = json!({"Spec": {"Name": "s", "Mode": {"Replicated": {"Replicas": 1}}},
                         "UpdateStatus": {"State": "paused", "Message": "update paused due to failure"}});
        let p = progress(&svc, &[], &HashSet::new());
        assert_eq!(
            p.failure.as_deref(),
            Some("update paused: update paused due to failure")
        );
        let svc = json!({"Spec": {"Name": "s", "Mode": {"Replicated": {"Replicas": 1}}}});
        let tasks = [
            task("1", "failed", "task: non-zero exit (1)"),
            task("2", "failed", "task: non-zero exit (1)"),
            task("3", "failed", "task: non-zero exit (2)"),
        ];
        let p = progress(&svc, &tasks, &HashSet::new());
        assert_eq!(
            p.failure.as_deref(),
            Some("3 tasks failed, the last with: task: non-zero exit (2)")
        );
    }

    #[test]
    fn a_failing_service_names_the_services_held_for_it() {
        let service = |name: &str| json!({"ID": name, "Spec": {"Name": name, "Mode": {"Replicated": {"Replicas": 1}}}});
        let none = HashSet::new();
        let db = progress(
            &service("s_db"),
            &[task("t1", "rejected", "no such image")],
            &none,
        );
        let api = progress(
            &service("s_api"),
            &[task(
                "t2",
                "pending",
                "waiting for dependencies: s_db (service_healthy), s_migrate (service_completed_successfully)",
            )],
            &none,
        );
        let web = progress(
            &service("s_web"),
            &[task(
                "t3",
                "pending",
                "waiting for dependencies: s_api (service_started)",
            )],
            &none,
        );
        let other = progress(
            &service("s_db2"),
            &[task(
                "t4",
                "pending",
                "waiting for dependencies: s_db2x (service_started)",
            )],
            &none,
        );
        let all = [db, api, web, other];
        assert_eq!(
            held_by(&all, "s_db"),
            vec!["s_api is held until it holds: waiting for dependencies: s_db (service_healthy), s_migrate (service_completed_successfully)"]
        );
        assert_eq!(held_by(&all, "s_api").len(), 1);
        assert!(held_by(&all, "s_web").is_empty());
    }

    #[test]
    fn a_job_converges_when_all_completions_are_done() {
        let svc = json!({"Spec": {"Name": "j", "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 2}}}});
        let tasks = [task("a", "complete", ""), task("b", "running", "")];
        let p = progress(&svc, &tasks, &HashSet::new());
        assert_eq!((p.done, p.desired, p.converged), (1, 2, false));
        let tasks = [task("a", "complete", ""), task("b", "complete", "")];
        assert!(progress(&svc, &tasks, &HashSet::new()).converged);
    }
}
