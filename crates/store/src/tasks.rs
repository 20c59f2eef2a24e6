//! Tasks: created by the orchestrators, moved forward by the managers and by the agents that run them (states never move back), and forgotten.

use crate::command::*;
use crate::error::{Kind, StoreError};
use crate::state::*;
use chrono::{DateTime, Utc};
use shoal_types::dispatch::TaskReport;
use shoal_types::swarm::*;

type Result<T> = std::result::Result<T, StoreError>;

impl State {
    pub(crate) fn create_tasks(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        tasks: &[Task],
    ) -> Result<Option<String>> {
        let mut tasks: Vec<Task> = tasks
            .iter()
            .filter(|t| {
                (t.service_id.is_empty() || self.services.get(&t.service_id).is_some())
                    && self.tasks.get(&t.id).is_none()
            })
            .cloned()
            .collect();
        self.attach_tasks(&mut tasks)?;
        for mut t in tasks {
            stamp_new(
                &mut t.version,
                &mut t.created_at,
                &mut t.updated_at,
                index,
                at,
            );
            let tid = t.id.clone();
            self.tasks.insert(t);
            self.event(Kind::Task, EventAction::Create, &tid, index);
        }
        Ok(None)
    }

    pub(crate) fn update_tasks(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        updates: &[TaskUpdate],
    ) -> Result<Option<String>> {
        for u in updates {
            let Some(t) = self.tasks.get_mut(&u.id) else {
                continue;
            };
            let mut changed = false;
            if let Some(d) = u.desired_state {
                if d > t.desired_state {
                    t.desired_state = d;
                    changed = true;
                }
            }
            if let Some(n) = &u.node_id {
                if t.node_id.is_empty() && t.status.state < TaskState::Assigned {
                    t.node_id = n.clone();
                    changed = true;
                }
            }
            if let Some(st) = &u.status {
                // The scheduler may restate PENDING with a new reason.
                if st.state > t.status.state || (st.state == t.status.state && *st != t.status) {
                    t.status = st.clone();
                    changed = true;
                }
            }
            if changed {
                stamp(&mut t.version, &mut t.updated_at, index, at);
                self.event(Kind::Task, EventAction::Update, &u.id, index);
            }
        }
        Ok(None)
    }

    pub(crate) fn report_task_status(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        node_id: &str,
        reports: &[TaskReport],
    ) -> Result<Option<String>> {
        for r in reports {
            let Some(t) = self.tasks.get_mut(&r.id) else {
                continue;
            };
            if t.node_id != *node_id {
                continue;
            }
            if r.status.state > t.status.state
                || (r.status.state == t.status.state && r.status != t.status)
            {
                t.status = r.status.clone();
                stamp(&mut t.version, &mut t.updated_at, index, at);
                self.event(Kind::Task, EventAction::Update, &r.id, index);
            }
        }
        Ok(None)
    }

    pub(crate) fn remove_tasks(&mut self, index: u64, ids: &[String]) -> Result<Option<String>> {
        for tid in ids {
            if self.tasks.remove(tid).is_some() {
                self.event(Kind::Task, EventAction::Remove, tid, index);
            }
        }
        Ok(None)
    }
}
