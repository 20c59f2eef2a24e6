//! The scheduler: assigns new tasks to nodes. A node qualifies when it is ready, active, has a
//! container engine, satisfies the service's constraints, has room under `MaxReplicas` and
//! enough unreserved CPU and memory; among those, the one with the fewest tasks of the
//! service wins, then the one with the fewest tasks in all (Swarm's spread). Tasks of a service
//! whose `depends_on` does not hold yet stay pending (see [`crate::dependencies`]).

use crate::{dependencies, placement};
use chrono::{DateTime, Utc};
use shoal_store::{State, TaskUpdate};
use shoal_types::swarm::{Node, Task, TaskState, TaskStatus};
use std::collections::HashMap;

#[derive(Default, Clone, Copy)]
struct Load {
    tasks: usize,
    nano_cpus: i64,
    memory: i64,
}

fn reservations(t: &Task) -> (i64, i64) {
    t.spec
        .resources
        .as_ref()
        .and_then(|r| r.reservations.as_ref())
        .map(|r| (r.nano_cpus, r.memory_bytes))
        .unwrap_or((0, 0))
}

/// A task that holds its node's resources: assigned and not yet ended.
fn holds(t: &Task) -> bool {
    !t.node_id.is_empty()
        && t.status.state >= TaskState::Assigned
        && t.status.state <= TaskState::Running
        && t.desired_state <= TaskState::Shutdown
}

/// Assignments (and reasons for waiting) for the tasks that have no node yet.
pub fn schedule(state: &State, now: DateTime<Utc>) -> Vec<TaskUpdate> {
    let mut load: HashMap<&str, Load> = HashMap::new();
    let mut per_service: HashMap<(&str, &str), usize> = HashMap::new();
    let mut waiting: Vec<&Task> = Vec::new();
    for t in state.tasks.iter() {
        if holds(t) {
            let l = load.entry(t.node_id.as_str()).or_default();
            let (cpu, mem) = reservations(t);
            l.tasks += 1;
            l.nano_cpus += cpu;
            l.memory += mem;
            *per_service
                .entry((t.service_id.as_str(), t.node_id.as_str()))
                .or_default() += 1;
        } else if t.status.state < TaskState::Assigned && t.desired_state <= TaskState::Running {
            waiting.push(t);
        }
    }
    // Oldest first, so that a task that waited is not overtaken.
    waiting.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));

    let nodes: Vec<&Node> = state.nodes.iter().collect();
    let mut out = Vec::new();
    // Per service: why its new tasks wait for their dependencies (`depends_on`), if they do.
    let mut gates: HashMap<&str, Option<String>> = HashMap::new();
    for t in waiting {
        let gate = gates.entry(t.service_id.as_str()).or_insert_with(|| {
            state
                .services
                .get(&t.service_id)
                .and_then(|svc| dependencies::waiting_for(state, svc))
        });
        if let Some(why) = gate {
            if t.status.state != TaskState::Pending || t.status.err != *why {
                out.push(TaskUpdate {
                    id: t.id.clone(),
                    status: Some(TaskStatus {
                        timestamp: now,
                        state: TaskState::Pending,
                        message: "waiting for dependencies".into(),
                        err: why.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            continue;
        }
        let placement = t.spec.placement.clone().unwrap_or_default();
        let (cpu, mem) = reservations(t);
        let mut reasons: HashMap<&'static str, usize> = HashMap::new();
        let mut best: Option<(&Node, Vec<usize>)> = None;
        let mut candidates: Vec<(&Node, usize, usize)> = Vec::new();
        for n in &nodes {
            if !t.node_id.is_empty() && t.node_id != n.id {
                continue;
            }
            if let Some(why) = placement::unavailable(n) {
                *reasons.entry(why).or_default() += 1;
                continue;
            }
            if !placement::satisfies(n, &placement.constraints) {
                *reasons
                    .entry("scheduling constraints not satisfied")
                    .or_default() += 1;
                continue;
            }
            if !placement::supports_platform(n, &placement.platforms) {
                *reasons.entry("unsupported platform").or_default() += 1;
                continue;
            }
            let mine = per_service
                .get(&(t.service_id.as_str(), n.id.as_str()))
                .copied()
                .unwrap_or(0);
            if placement.max_replicas > 0 && mine as u64 >= placement.max_replicas {
                *reasons
                    .entry("max replicas per node limit exceed")
                    .or_default() += 1;
                continue;
            }
            let l = load.get(n.id.as_str()).copied().unwrap_or_default();
            let res = &n.description.resources;
            if (cpu > 0 && l.nano_cpus + cpu > res.nano_cpus)
                || (mem > 0 && l.memory + mem > res.memory_bytes)
            {
                *reasons.entry("insufficient resources").or_default() += 1;
                continue;
            }
            candidates.push((n, mine, l.tasks));
        }
        // Placement preferences first (spread over the values of each label, in order),
        // then the fewest tasks of the service, then the fewest tasks.
        let prefs: Vec<&str> = placement
            .preferences
            .iter()
            .filter_map(|p| p.spread.as_ref())
            .map(|s| s.spread_descriptor.as_str())
            .collect();
        for (n, mine, tasks) in &candidates {
            let path = label_path(n, &prefs);
            let mut score: Vec<usize> = (1..=prefs.len())
                .map(|depth| {
                    candidates
                        .iter()
                        .filter(|(m, _, _)| label_path(m, &prefs)[..depth] == path[..depth])
                        .map(|(_, theirs, _)| *theirs)
                        .sum()
                })
                .collect();
            score.extend([*mine, *tasks]);
            if best
                .as_ref()
                .is_none_or(|(b, s)| score < *s || (score == *s && n.id < b.id))
            {
                best = Some((n, score));
            }
        }
        match best {
            Some((n, _)) => {
                let l = load.entry(n.id.as_str()).or_default();
                l.tasks += 1;
                l.nano_cpus += cpu;
                l.memory += mem;
                *per_service
                    .entry((t.service_id.as_str(), n.id.as_str()))
                    .or_default() += 1;
                out.push(TaskUpdate {
                    id: t.id.clone(),
                    node_id: Some(n.id.clone()),
                    status: Some(TaskStatus {
                        timestamp: now,
                        state: TaskState::Assigned,
                        message: "scheduler assigned task to node".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            None => {
                let message = no_suitable_node(&reasons);
                if t.status.state != TaskState::Pending || t.status.err != message {
                    out.push(TaskUpdate {
                        id: t.id.clone(),
                        status: Some(TaskStatus {
                            timestamp: now,
                            state: TaskState::Pending,
                            message: "pending task scheduling".into(),
                            err: message,
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
            }
        }
    }
    out
}

/// The values of the spread descriptors (`node.labels.zone`, `engine.labels.disk`) on a node;
/// a node without the label is a group of its own (`None`).
fn label_path<'a>(n: &'a Node, prefs: &[&str]) -> Vec<Option<&'a str>> {
    prefs
        .iter()
        .map(|d| {
            if let Some(l) = d.strip_prefix("node.labels.") {
                n.spec.labels.get(l).map(String::as_str)
            } else if let Some(l) = d.strip_prefix("engine.labels.") {
                n.description.engine.labels.get(l).map(String::as_str)
            } else {
                None
            }
        })
        .collect()
}

/// Swarm's "no suitable node (…)" explanation.
fn no_suitable_node(reasons: &HashMap<&'static str, usize>) -> String {
    if reasons.is_empty() {
        return "no suitable node".into();
    }
    let mut parts: Vec<String> = reasons
        .iter()
        .map(|(why, n)| {
            let nodes = if *n == 1 { "node" } else { "nodes" };
            match *why {
                "not available for new tasks" | "without a container engine" => {
                    format!("{n} {nodes} {why}")
                }
                _ => format!("{why} on {n} {nodes}"),
            }
        })
        .collect();
    parts.sort();
    format!("no suitable node ({})", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_types::swarm::{NodeState, Placement, PlacementPreference, SpreadOver};

    #[test]
    fn preferences_spread_over_label_values_first() {
        let mut s = State::default();
        // Zone east has three nodes, zone west one: half the tasks go west.
        for (id, zone) in [
            ("e1", "east"),
            ("e2", "east"),
            ("e3", "east"),
            ("w1", "west"),
        ] {
            let mut n = node(id);
            n.spec.labels.insert("zone".into(), zone.into());
            s.nodes.insert(n);
        }
        for i in 0..4 {
            let mut t = task(&format!("t{i}"), "svc");
            t.spec.placement = Some(Placement {
                preferences: vec![PlacementPreference {
                    spread: Some(SpreadOver {
                        spread_descriptor: "node.labels.zone".into(),
                    }),
                }],
                ..Default::default()
            });
            s.tasks.insert(t);
        }
        let out = schedule(&s, Utc::now());
        let west = out
            .iter()
            .filter(|u| u.node_id.as_deref() == Some("w1"))
            .count();
        assert_eq!(west, 2, "{out:?}");
    }

    fn node(id: &str) -> Node {
        let mut n = Node {
            id: id.into(),
            ..Default::default()
        };
        n.status.state = NodeState::Ready;
        n.description.engine.engine_version = "20.10".into();
        n
    }

    fn task(id: &str, service: &str) -> Task {
        Task {
            id: id.into(),
            service_id: service.into(),
            desired_state: TaskState::Running,
            ..Default::default()
        }
    }

    #[test]
    fn spreads_tasks_over_nodes() {
        let mut s = State::default();
        s.nodes.insert(node("a"));
        s.nodes.insert(node("b"));
        for i in 0..4 {
            s.tasks.insert(task(&format!("t{i}"), "svc"));
        }
        let out = schedule(&s, Utc::now());
        let on_a = out
            .iter()
            .filter(|u| u.node_id.as_deref() == Some("a"))
            .count();
        assert_eq!(out.len(), 4);
        assert_eq!(on_a, 2);
    }

    #[test]
    fn a_dependents_tasks_wait_until_its_dependencies_hold() {
        use shoal_types::depends::LABEL;
        use shoal_types::swarm::{ReplicatedJob, Service, ServiceMode};
        let mut s = State::default();
        s.nodes.insert(node("a"));
        let mut db = Service {
            id: "db".into(),
            ..Default::default()
        };
        db.spec.name = "app_db".into();
        let mut migrate = Service {
            id: "migrate".into(),
            ..Default::default()
        };
        migrate.spec.name = "app_migrate".into();
        migrate.spec.mode = ServiceMode {
            replicated_job: Some(ReplicatedJob::default()),
            ..Default::default()
        };
        let mut web = Service {
            id: "web".into(),
            ..Default::default()
        };
        web.spec.name = "app_web".into();
        web.spec.labels.insert(
            LABEL.into(),
            "app_db:service_healthy,app_migrate:service_completed_successfully,app_cache:service_started:optional".into(),
        );
        for svc in [db, migrate, web] {
            s.services.insert(svc);
        }
        s.tasks.insert(task("w1", "web"));
        let mut d1 = task("d1", "db");
        d1.node_id = "a".into();
        d1.status.state = TaskState::Starting;
        s.tasks.insert(d1);
        let mut m1 = task("m1", "migrate");
        m1.node_id = "a".into();
        m1.desired_state = TaskState::Complete;
        m1.status.state = TaskState::Running;
        m1.job_iteration = Some(Default::default());
        s.tasks.insert(m1);

        let out = schedule(&s, Utc::now());
        let waiting = out.iter().find(|u| u.id == "w1").expect("w1 told why");
        let st = waiting.status.as_ref().unwrap();
        assert_eq!(st.state, TaskState::Pending);
        assert!(waiting.node_id.is_none());
        // The optional dependency that does not exist holds nothing back.
        assert_eq!(
            st.err,
            "waiting for dependencies: app_db (service_healthy), app_migrate (service_completed_successfully)"
        );

        s.tasks.get_mut("d1").unwrap().status.state = TaskState::Running;
        s.tasks.get_mut("w1").unwrap().status = st.clone();
        let out = schedule(&s, Utc::now());
        let st = out[0].status.as_ref().unwrap();
        assert_eq!(
            st.err,
            "waiting for dependencies: app_migrate (service_completed_successfully)"
        );
        s.tasks.get_mut("w1").unwrap().status = st.clone();
        assert!(schedule(&s, Utc::now()).is_empty(), "said once");

        s.tasks.get_mut("m1").unwrap().status.state = TaskState::Complete;
        let out = schedule(&s, Utc::now());
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].node_id.as_deref(), Some("a"));

        // A required dependency that is gone holds the service back again.
        s.services.remove("db");
        s.tasks.remove("d1");
        let out = schedule(&s, Utc::now());
        assert_eq!(
            out[0].status.as_ref().unwrap().err,
            "waiting for dependencies: app_db (service_healthy, no such service)"
        );
    }

    #[test]
    fn explains_why_nothing_fits() {
        let mut s = State::default();
        let mut down = node("a");
        down.status.state = NodeState::Down;
        s.nodes.insert(down);
        s.nodes.insert(node("b"));
        let mut t = task("t", "svc");
        t.spec.placement = Some(Placement {
            constraints: vec!["node.labels.zone==east".into()],
            ..Default::default()
        });
        s.tasks.insert(t);
        let out = schedule(&s, Utc::now());
        let st = out[0].status.as_ref().unwrap();
        assert_eq!(st.state, TaskState::Pending);
        assert_eq!(
            st.err,
            "no suitable node (1 node not available for new tasks; scheduling constraints not satisfied on 1 node)"
        );
        // Said once: the same reason is not proposed again.
        let mut s2 = s.clone();
        s2.tasks.get_mut("t").unwrap().status = st.clone();
        assert!(schedule(&s2, Utc::now()).is_empty());
    }
    #[test]
    fn tasks_go_only_to_nodes_of_the_image_platform() {
        use shoal_types::swarm::Platform;
        let mut s = State::default();
        let mut n = node("a");
        n.description.platform = Platform {
            architecture: "x86_64".into(),
            os: "linux".into(),
        };
        s.nodes.insert(n);
        let mut t = task("arm", "svc");
        t.spec.placement = Some(Placement {
            platforms: vec![Platform {
                architecture: "arm64".into(),
                os: "linux".into(),
            }],
            ..Default::default()
        });
        s.tasks.insert(t);
        let mut t = task("amd", "svc");
        t.spec.placement = Some(Placement {
            platforms: vec![
                Platform {
                    architecture: "arm64".into(),
                    os: "linux".into(),
                },
                Platform {
                    architecture: "amd64".into(),
                    os: String::new(),
                },
            ],
            ..Default::default()
        });
        s.tasks.insert(t);
        let out = schedule(&s, Utc::now());
        let arm = out.iter().find(|u| u.id == "arm").unwrap();
        assert_eq!(
            arm.status.as_ref().unwrap().err,
            "no suitable node (unsupported platform on 1 node)"
        );
        let amd = out.iter().find(|u| u.id == "amd").unwrap();
        assert_eq!(amd.node_id.as_deref(), Some("a"));
    }
}
