//! The worker: reconciles the assigned set with this node. One controller per assigned task
//! (started when a task appears, told when its desired state changes or it leaves the set), and
//! a sweep that removes containers and files of tasks no longer assigned, run on every
//! assignment and periodically, so that a removal that failed once is retried. The sweep only
//! touches containers labelled with this node's ID.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use shoal_types::mesh::IngressPorts;
use tokio::sync::{mpsc, watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::container::{LABEL_NODE_ID, LABEL_TASK_ID};
use crate::controller::{self, Context, Controller};
use crate::files::TaskFiles;
use crate::runtime::Runtime;
use crate::{AgentConfig, Assignment, TaskReport};

/// How often the sweep runs without a new assignment.
const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

struct Running {
    slot: watch::Sender<Option<Arc<Assignment>>>,
    handle: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// False until the first assignment: before it, nothing is known to be unassigned.
    has_assignment: bool,
    controllers: HashMap<String, Running>,
    /// Controllers of tasks that left the set, still removing their containers.
    retiring: HashMap<String, JoinHandle<()>>,
    closed: bool,
}

pub(crate) struct Worker {
    ctx: Arc<Context>,
    state: Mutex<State>,
    sweeper: std::sync::Mutex<Option<JoinHandle<()>>>,
    sweep_now: Arc<Notify>,
}

impl Worker {
    pub fn start(
        cfg: AgentConfig,
        runtime: Arc<dyn Runtime>,
        updates: mpsc::UnboundedSender<TaskReport>,
        ingress: IngressPorts,
    ) -> Arc<Worker> {
        let ctx = Arc::new(Context {
            engine: runtime,
            files: TaskFiles::new(cfg.state_dir, cfg.secrets_dir).with_own_tmpfs(),
            node_id: cfg.node_id,
            updates,
            ingress,
        });
        let worker = Arc::new(Worker {
            ctx,
            state: Mutex::new(State::default()),
            sweeper: std::sync::Mutex::new(None),
            sweep_now: Arc::new(Notify::new()),
        });
        let weak = Arc::downgrade(&worker);
        let sweep_now = worker.sweep_now.clone();
        // One task runs every sweep, so sweeps never overlap, and `assign` never waits for
        // containers to stop.
        let sweeper = tokio::spawn(async move {
            if let Some(w) = weak.upgrade() {
                w.check_engine().await;
            }
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = sweep_now.notified() => {}
                }
                let Some(w) = weak.upgrade() else { return };
                w.sweep().await;
            }
        });
        *worker.sweeper.lock().unwrap_or_else(|e| e.into_inner()) = Some(sweeper);
        worker
    }

    /// Says at start whether the engine answers and how many containers are there to adopt.
    async fn check_engine(&self) {
        let labels = [format!("{LABEL_NODE_ID}={}", self.ctx.node_id)];
        match self.ctx.engine.list_containers(&labels).await {
            Ok(found) => info!(
                node = %self.ctx.node_id,
                containers = found.len(),
                "agent started; existing task containers are adopted when their tasks are assigned"
            ),
            Err(e) => {
                warn!(node = %self.ctx.node_id, error = %e, "agent started without a usable engine")
            }
        }
    }

    pub async fn assign(&self, set: Vec<Assignment>) {
        {
            let mut state = self.state.lock().await;
            if state.closed {
                return;
            }
            state.retiring.retain(|_, h| !h.is_finished());
            let mut assigned = HashSet::with_capacity(set.len());
            for assignment in set {
                let id = assignment.task.id.clone();
                assigned.insert(id.clone());
                let assignment = Arc::new(assignment);
                if let Some(running) = state.controllers.get(&id) {
                    running.slot.send_if_modified(|current| {
                        // Tasks are immutable but for their desired state; the observed status
                        // the manager echoes back is ours and changes nothing here.
                        let changed = current.as_ref().map(|c| c.task.desired_state)
                            != Some(assignment.task.desired_state);
                        *current = Some(assignment);
                        changed
                    });
                    continue;
                }
                let predecessor = state.retiring.remove(&id);
                let (slot, rx) = watch::channel(Some(assignment));
                let ctx = self.ctx.clone();
                let handle = tokio::spawn(async move {
                    // A task that came back waits until its old controller removed the old
                    // container, so the new one does not adopt a container being removed.
                    if let Some(p) = predecessor {
                        let _ = p.await;
                    }
                    if let Some(c) = Controller::new(ctx, rx) {
                        c.run().await;
                    }
                });
                state.controllers.insert(id, Running { slot, handle });
            }
            let gone: Vec<String> = state
                .controllers
                .keys()
                .filter(|id| !assigned.contains(*id))
                .cloned()
                .collect();
            for id in gone {
                if let Some(running) = state.controllers.remove(&id) {
                    debug!(task = %id, "task left the assigned set");
                    running.slot.send_replace(None);
                    state.retiring.insert(id, running.handle);
                }
            }
            state.has_assignment = true;
        }
        self.sweep_now.notify_one();
    }

    /// Whether a task is assigned, or its controller is still removing it: its container and
    /// files are not the sweep's to remove. Asked just before each removal, so that a task
    /// assigned while the sweep runs is never touched.
    async fn is_known(&self, task: &str) -> bool {
        let mut state = self.state.lock().await;
        state.retiring.retain(|_, h| !h.is_finished());
        state.controllers.contains_key(task) || state.retiring.contains_key(task)
    }

    /// Removes containers and files of tasks that are neither assigned nor being removed by
    /// their controller.
    async fn sweep(&self) {
        {
            let state = self.state.lock().await;
            if state.closed || !state.has_assignment {
                return;
            }
        }
        let labels = [
            LABEL_TASK_ID.to_string(),
            format!("{LABEL_NODE_ID}={}", self.ctx.node_id),
        ];
        match self.ctx.engine.list_containers(&labels).await {
            Ok(containers) => {
                for c in containers {
                    let task = c
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_TASK_ID))
                        .cloned()
                        .unwrap_or_default();
                    let Some(id) = c.id else { continue };
                    if self.is_known(&task).await {
                        continue;
                    }
                    info!(task = %task, container = %id, "removing the container of a task no longer assigned");
                    // The container's own stop timeout is the grace its task asked for.
                    controller::remove_container(&self.ctx, &id, None).await;
                    if let Err(e) = self.ctx.files.remove(&task) {
                        warn!(task = %task, error = %e, "cannot remove the task's files");
                    }
                }
            }
            Err(e) => debug!(error = %e, "sweep: cannot list containers"),
        }
        for task in self.ctx.files.task_ids() {
            if !self.is_known(&task).await {
                if let Err(e) = self.ctx.files.remove(&task) {
                    warn!(task = %task, error = %e, "cannot remove the files of a task no longer assigned");
                }
            }
        }
    }

    pub async fn shutdown(&self) {
        let handles: Vec<JoinHandle<()>> = {
            let mut state = self.state.lock().await;
            state.closed = true;
            let mut handles: Vec<_> = state.controllers.drain().map(|(_, r)| r.handle).collect();
            handles.extend(state.retiring.drain().map(|(_, h)| h));
            handles
        };
        if let Some(sweeper) = self
            .sweeper
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            sweeper.abort();
        }
        // Controllers hold no state the engine does not: stopping them mid-step is safe, and
        // a later agent adopts their containers.
        for h in &handles {
            h.abort();
        }
        for h in handles {
            let _ = h.await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(sweeper) = self
            .sweeper
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            sweeper.abort();
        }
    }
}
