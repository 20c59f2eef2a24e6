use super::*;
use shoal_store::Request;
use shoal_types::dispatch::TaskReport;
use shoal_types::swarm::{
    GlobalService, NodeState, ReplicatedService, RestartPolicy, ServiceMode, UpdateConfig,
};

struct World {
    state: State,
    index: u64,
    now: DateTime<Utc>,
}

impl World {
    fn new(nodes: &[&str]) -> Self {
        let mut state = State::default();
        for id in nodes {
            let mut n = Node {
                id: id.to_string(),
                ..Default::default()
            };
            n.status.state = NodeState::Ready;
            n.description.engine.engine_version = "20.10".into();
            state.nodes.insert(n);
        }
        World {
            state,
            index: 1,
            now: Utc::now(),
        }
    }

    fn service(&mut self, id: &str, mode: ServiceMode) {
        let mut svc = Service {
            id: id.into(),
            ..Default::default()
        };
        svc.spec.name = id.into();
        svc.spec.mode = mode;
        svc.spec.task_template.restart_policy = Some(RestartPolicy {
            delay: Some(1_000_000_000),
            ..Default::default()
        });
        self.state.services.insert(svc);
    }

    fn apply(&mut self, cmd: Command) {
        self.index += 1;
        let req = Request {
            at: self.now,
            cmd,
            id: String::new(),
        };
        self.state.apply(self.index, &req).expect("command applies");
    }

    /// Runs the orchestrator and the scheduler once, applying what they propose.
    fn step(&mut self) {
        let plan = reconcile(&self.state, self.now);
        for cmd in plan.into_commands(&self.state) {
            self.apply(cmd);
        }
        let updates = crate::scheduler::schedule(&self.state, self.now);
        if !updates.is_empty() {
            self.apply(Command::UpdateTasks { updates });
        }
    }

    /// What an agent would report: every task assigned and wanted running now runs; tasks
    /// asked to stop have stopped.
    fn agents(&mut self) {
        let mut by_node: HashMap<String, Vec<TaskReport>> = HashMap::new();
        for t in self.state.tasks.iter() {
            if t.node_id.is_empty() || t.status.state > TaskState::Running {
                continue;
            }
            let state = if t.desired_state > TaskState::Running {
                TaskState::Shutdown
            } else if t.status.state >= TaskState::Assigned {
                TaskState::Running
            } else {
                continue;
            };
            by_node
                .entry(t.node_id.clone())
                .or_default()
                .push(TaskReport {
                    id: t.id.clone(),
                    status: TaskStatus {
                        timestamp: self.now,
                        state,
                        ..Default::default()
                    },
                });
        }
        for (node_id, reports) in by_node {
            self.apply(Command::ReportTaskStatus { node_id, reports });
        }
    }

    fn settle(&mut self) {
        for _ in 0..20 {
            self.step();
            self.agents();
            self.now += Duration::milliseconds(100);
        }
    }

    fn live(&self, svc: &str) -> Vec<&Task> {
        let mut v: Vec<&Task> = self
            .state
            .tasks
            .iter()
            .filter(|t| t.service_id == svc && t.desired_state <= TaskState::Running)
            .collect();
        v.sort_by_key(|t| (t.slot, t.node_id.clone()));
        v
    }

    fn set_status(&mut self, task: &str, state: TaskState) {
        let node_id = self.state.tasks.get(task).unwrap().node_id.clone();
        self.apply(Command::ReportTaskStatus {
            node_id,
            reports: vec![TaskReport {
                id: task.into(),
                status: TaskStatus {
                    timestamp: self.now,
                    state,
                    ..Default::default()
                },
            }],
        });
    }
}

fn replicated(n: u64) -> ServiceMode {
    ServiceMode {
        replicated: Some(ReplicatedService { replicas: Some(n) }),
        ..Default::default()
    }
}

#[test]
fn replicated_services_fill_their_slots_and_spread() {
    let mut w = World::new(&["a", "b"]);
    w.service("web", replicated(3));
    w.settle();
    let live = w.live("web");
    assert_eq!(
        live.iter().map(|t| t.slot).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(live.iter().all(|t| t.status.state == TaskState::Running));
    let on_a = live.iter().filter(|t| t.node_id == "a").count();
    assert!(on_a == 1 || on_a == 2, "spread over both nodes");
    // Nothing more to do once converged.
    assert!(reconcile(&w.state, w.now).is_empty());
}

#[test]
fn a_large_service_is_created_in_commands_of_at_most_so_many_tasks() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(450));
    let plan = reconcile(&w.state, w.now);
    let sizes: Vec<usize> = plan
        .into_commands(&w.state)
        .iter()
        .map(|c| match c {
            Command::CreateTasks { tasks } => tasks.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, vec![TASKS_PER_COMMAND, TASKS_PER_COMMAND, 50]);
    w.settle();
    assert_eq!(w.live("web").len(), 450);
}

#[test]
fn scaling_down_removes_the_highest_slots() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(3));
    w.settle();
    let mut svc = w.state.services.get("web").unwrap().clone();
    svc.spec.mode = replicated(1);
    w.state.services.insert(svc);
    w.settle();
    assert_eq!(
        w.live("web").iter().map(|t| t.slot).collect::<Vec<_>>(),
        vec![1]
    );
    // The tasks of removed slots are forgotten once stopped.
    assert_eq!(w.state.tasks.len(), 1);
}

#[test]
fn a_failed_task_is_replaced_after_the_restart_delay() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(1));
    w.settle();
    let first = w.live("web")[0].id.clone();
    w.set_status(&first, TaskState::Failed);
    w.step();
    assert!(w.live("web").is_empty(), "no replacement before the delay");
    // The leader is told when to look again: when the delay ends.
    let plan = reconcile(&w.state, w.now);
    assert_eq!(plan.wake_at, Some(w.now + Duration::seconds(1)));
    w.now += Duration::milliseconds(1100);
    w.settle();
    let live = w.live("web");
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, first);
    assert_eq!(live[0].slot, 1);
    let old = w.state.tasks.get(&first).unwrap();
    assert_eq!(old.desired_state, TaskState::Shutdown);
}

#[test]
fn restart_condition_none_leaves_the_slot_empty() {
    let mut w = World::new(&["a"]);
    w.service("once", replicated(1));
    let mut svc = w.state.services.get("once").unwrap().clone();
    svc.spec.task_template.restart_policy = Some(RestartPolicy {
        condition: RestartPolicyCondition::None,
        ..Default::default()
    });
    w.state.services.insert(svc);
    w.settle();
    let t = w.live("once")[0].id.clone();
    w.set_status(&t, TaskState::Complete);
    w.now += Duration::seconds(10);
    w.settle();
    assert!(w.live("once").is_empty());
}

#[test]
fn max_attempts_stops_restarting() {
    let mut w = World::new(&["a"]);
    w.service("crash", replicated(1));
    let mut svc = w.state.services.get("crash").unwrap().clone();
    svc.spec.task_template.restart_policy = Some(RestartPolicy {
        condition: RestartPolicyCondition::OnFailure,
        delay: Some(0),
        max_attempts: Some(2),
        window: None,
    });
    w.state.services.insert(svc);
    let mut created = 0;
    for _ in 0..10 {
        w.settle();
        if let Some(t) = w.live("crash").first().map(|t| t.id.clone()) {
            created += 1;
            w.set_status(&t, TaskState::Failed);
        }
    }
    assert_eq!(created, 3, "the first run and two restarts");
}

#[test]
fn tasks_on_a_node_that_goes_down_are_replaced_elsewhere() {
    let mut w = World::new(&["a", "b"]);
    w.service("web", replicated(2));
    w.settle();
    w.state.nodes.get_mut("a").unwrap().status.state = NodeState::Down;
    w.now += Duration::seconds(2);
    w.settle();
    let live = w.live("web");
    assert_eq!(live.len(), 2);
    assert!(live.iter().all(|t| t.node_id == "b"));
}

#[test]
fn global_services_run_once_per_usable_node() {
    let mut w = World::new(&["a", "b", "c"]);
    w.state.nodes.get_mut("c").unwrap().spec.availability =
        shoal_types::swarm::NodeAvailability::Drain;
    w.service(
        "agent",
        ServiceMode {
            global: Some(GlobalService {}),
            ..Default::default()
        },
    );
    w.settle();
    let nodes: Vec<String> = w.live("agent").iter().map(|t| t.node_id.clone()).collect();
    assert_eq!(nodes, vec!["a", "b"]);
    assert!(w.live("agent").iter().all(|t| t.slot == 0));
}

#[test]
fn a_rolling_update_replaces_one_slot_at_a_time() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(3));
    w.settle();
    let before: Vec<String> = w.live("web").iter().map(|t| t.id.clone()).collect();
    let mut svc = w.state.services.get("web").unwrap().clone();
    svc.spec.task_template.force_update = 1;
    svc.spec.update_config = Some(UpdateConfig {
        parallelism: 1,
        ..Default::default()
    });
    svc.update_status = Some(UpdateStatus {
        state: UpdateState::Updating,
        started_at: Some(w.now),
        completed_at: None,
        message: "update in progress".into(),
    });
    w.state.services.insert(svc);
    // One step: only one old task is asked to stop.
    w.step();
    let stopping = before
        .iter()
        .filter(|id| w.state.tasks.get(id).unwrap().desired_state == TaskState::Shutdown)
        .count();
    assert_eq!(stopping, 1);
    w.settle();
    let live = w.live("web");
    assert_eq!(live.len(), 3);
    assert!(live.iter().all(|t| t.spec.force_update == 1));
    assert!(live.iter().all(|t| !before.contains(&t.id)));
    // Completed only once the last new task ran for the monitoring period (5 s).
    let st = w.state.services.get("web").unwrap().update_status.clone();
    assert_eq!(st.unwrap().state, UpdateState::Updating);
    w.now += Duration::seconds(5);
    w.step();
    let st = w.state.services.get("web").unwrap().update_status.clone();
    assert_eq!(st.unwrap().state, UpdateState::Completed);
}

#[test]
fn an_update_whose_new_task_fails_pauses() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(2));
    w.settle();
    let mut svc = w.state.services.get("web").unwrap().clone();
    svc.spec.task_template.force_update = 1;
    svc.update_status = Some(UpdateStatus {
        state: UpdateState::Updating,
        started_at: Some(w.now),
        completed_at: None,
        message: String::new(),
    });
    w.state.services.insert(svc);
    // Run until a new task exists, then make it fail.
    let mut failed = None;
    for _ in 0..10 {
        w.step();
        if let Some(t) = w
            .live("web")
            .iter()
            .find(|t| t.spec.force_update == 1 && t.status.state >= TaskState::Assigned)
        {
            failed = Some(t.id.clone());
            break;
        }
        w.agents();
    }
    let failed = failed.expect("a new task");
    w.set_status(&failed, TaskState::Failed);
    w.settle();
    let st = w
        .state
        .services
        .get("web")
        .unwrap()
        .update_status
        .clone()
        .unwrap();
    assert_eq!(st.state, UpdateState::Paused);
    assert!(st.message.contains(&failed), "{}", st.message);
    // The other slot keeps its old task.
    assert!(w.live("web").iter().any(|t| t.spec.force_update == 0));
}

#[test]
fn history_is_kept_up_to_the_limit_and_removed_services_are_cleaned_up() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(1));
    for _ in 0..8 {
        w.settle();
        let t = w.live("web")[0].id.clone();
        w.set_status(&t, TaskState::Failed);
        w.now += Duration::seconds(2);
    }
    w.settle();
    // One live task and five old ones.
    assert_eq!(w.state.tasks.len(), 6);
    w.apply(Command::RemoveService { id: "web".into() });
    w.settle();
    assert_eq!(w.state.tasks.len(), 0);
}

fn replicated_job(concurrent: u64, total: u64) -> ServiceMode {
    ServiceMode {
        replicated_job: Some(shoal_types::swarm::ReplicatedJob {
            max_concurrent: Some(concurrent),
            total_completions: Some(total),
        }),
        ..Default::default()
    }
}

impl World {
    fn job_service(&mut self, id: &str, mode: ServiceMode) {
        self.service(id, mode);
        let mut svc = self.state.services.get(id).unwrap().clone();
        svc.version.index = 1;
        svc.job_status = Some(shoal_types::swarm::JobStatus {
            job_iteration: shoal_types::swarm::Version { index: 1 },
            last_execution: Some(self.now),
        });
        self.state.services.insert(svc);
    }

    /// Completes every running task of a service.
    fn complete_all(&mut self, svc: &str) {
        let ids: Vec<String> = self
            .state
            .tasks
            .iter()
            .filter(|t| t.service_id == svc && t.status.state == TaskState::Running)
            .map(|t| t.id.clone())
            .collect();
        for id in ids {
            self.set_status(&id, TaskState::Complete);
        }
    }

    fn count(&self, svc: &str, state: TaskState) -> usize {
        self.state
            .tasks
            .iter()
            .filter(|t| t.service_id == svc && t.status.state == state)
            .count()
    }
}

#[test]
fn a_replicated_job_runs_until_its_completions_at_most_n_at_a_time() {
    let mut w = World::new(&["a", "b"]);
    w.job_service("batch", replicated_job(2, 5));
    w.settle();
    assert_eq!(w.count("batch", TaskState::Running), 2);
    for _ in 0..5 {
        w.complete_all("batch");
        w.settle();
    }
    assert_eq!(w.count("batch", TaskState::Complete), 5);
    assert_eq!(w.count("batch", TaskState::Running), 0);
    let slots: std::collections::BTreeSet<i64> = w.state.tasks.iter().map(|t| t.slot).collect();
    assert_eq!(slots.len(), 5, "each completion has a slot of its own");
}

#[test]
fn a_failed_job_task_runs_again_and_a_new_iteration_stops_the_old_one() {
    let mut w = World::new(&["a"]);
    w.job_service("batch", replicated_job(1, 1));
    w.settle();
    let first = w.live("batch")[0].id.clone();
    w.set_status(&first, TaskState::Failed);
    w.now += Duration::seconds(2);
    w.settle();
    assert_eq!(w.count("batch", TaskState::Running), 1);
    // A new iteration (an update of the job): the running task of the old one stops.
    let mut svc = w.state.services.get("batch").unwrap().clone();
    svc.job_status.as_mut().unwrap().job_iteration.index = 99;
    w.state.services.insert(svc);
    w.settle();
    let running: Vec<&Task> = w
        .state
        .tasks
        .iter()
        .filter(|t| t.status.state == TaskState::Running)
        .collect();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].job_iteration.as_ref().unwrap().index, 99);
}

#[test]
fn a_global_job_runs_once_per_node() {
    let mut w = World::new(&["a", "b"]);
    w.job_service(
        "once",
        ServiceMode {
            global_job: Some(Default::default()),
            ..Default::default()
        },
    );
    w.settle();
    w.complete_all("once");
    w.settle();
    assert_eq!(w.count("once", TaskState::Complete), 2);
    assert_eq!(w.state.tasks.len(), 2, "nothing runs again");
}

#[test]
fn failure_action_rollback_rolls_back_with_swarm_s_reason() {
    let mut w = World::new(&["a"]);
    w.service("web", replicated(1));
    w.settle();
    let mut svc = w.state.services.get("web").unwrap().clone();
    svc.previous_spec = Some(svc.spec.clone());
    svc.spec.task_template.force_update = 1;
    svc.spec.update_config = Some(UpdateConfig {
        parallelism: 1,
        failure_action: FailureAction::Rollback,
        ..Default::default()
    });
    svc.update_status = Some(UpdateStatus {
        state: UpdateState::Updating,
        started_at: Some(w.now),
        completed_at: None,
        message: String::new(),
    });
    w.state.services.insert(svc);
    let mut failed = None;
    for _ in 0..10 {
        w.step();
        w.agents();
        if let Some(t) = w.live("web").iter().find(|t| t.spec.force_update == 1) {
            failed = Some(t.id.clone());
            break;
        }
    }
    let failed = failed.expect("a new task");
    w.set_status(&failed, TaskState::Failed);
    w.step();
    let svc = w.state.services.get("web").unwrap();
    let st = svc.update_status.clone().unwrap();
    assert_eq!(st.state, UpdateState::RollbackStarted);
    assert_eq!(
        st.message,
        format!("update rolled back due to failure or early termination of task {failed}")
    );
    assert_eq!(svc.spec.task_template.force_update, 0);
}
