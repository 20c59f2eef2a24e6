//! Nodes: joins (a join never replaces a node), spec updates (never demoting the last manager), what the leader observes of them, removal, and `--force-new-cluster`.

use crate::command::*;
use crate::error::{Kind, StoreError};
use crate::state::*;
use chrono::{DateTime, Utc};
use shoal_types::swarm::*;

type Result<T> = std::result::Result<T, StoreError>;

impl State {
    pub(crate) fn join_node(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        node: &Node,
        member: &Member,
    ) -> Result<Option<String>> {
        self.cluster()?;
        self.add_node(index, at, node, member)
    }

    pub(crate) fn update_node_spec(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
        sent: u64,
        spec: &NodeSpec,
    ) -> Result<Option<String>> {
        let managers = self.manager_count();
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| not_found(Kind::Node, id))?;
        check_version(Kind::Node, id, &node.version, sent)?;
        if node.spec.role == NodeRole::Manager && spec.role == NodeRole::Worker && managers <= 1 {
            return Err(StoreError::Conflict(
                "attempting to demote the last manager of the swarm".into(),
            ));
        }
        let mut node = node.clone();
        node.spec = spec.clone();
        stamp(&mut node.version, &mut node.updated_at, index, at);
        self.nodes.insert(node);
        self.event(Kind::Node, EventAction::Update, id, index);
        Ok(Some(id.to_string()))
    }

    pub(crate) fn set_node_status(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        id: &str,
        status: &NodeStatus,
        manager_status: Option<&ManagerStatus>,
        description: Option<&NodeDescription>,
    ) -> Result<Option<String>> {
        let node = self
            .nodes
            .get_mut(id)
            .ok_or_else(|| not_found(Kind::Node, id))?;
        node.status = status.clone();
        node.manager_status = manager_status.cloned();
        if let Some(d) = description {
            node.description = d.clone();
        }
        stamp(&mut node.version, &mut node.updated_at, index, at);
        self.event(Kind::Node, EventAction::Update, id, index);
        Ok(Some(id.to_string()))
    }

    pub(crate) fn force_new_cluster(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        node_id: &str,
    ) -> Result<Option<String>> {
        self.cluster()?;
        if self.nodes.get(node_id).is_none() {
            return Err(not_found(Kind::Node, node_id));
        }
        let others: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| {
                n.id != *node_id && (n.spec.role == NodeRole::Manager || n.manager_status.is_some())
            })
            .map(|n| n.id.clone())
            .collect();
        for id in others {
            let Some(node) = self.nodes.get(&id) else {
                continue;
            };
            let mut node = node.clone();
            node.spec.role = NodeRole::Worker;
            node.manager_status = None;
            node.status.state = NodeState::Down;
            node.status.message = FORCED_OUT.into();
            stamp(&mut node.version, &mut node.updated_at, index, at);
            self.nodes.insert(node);
            self.event(Kind::Node, EventAction::Update, &id, index);
        }
        Ok(Some(node_id.to_string()))
    }

    pub(crate) fn remove_node(
        &mut self,
        index: u64,
        id: &str,
        force: bool,
    ) -> Result<Option<String>> {
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| not_found(Kind::Node, id))?;
        if node.spec.role == NodeRole::Manager || node.manager_status.is_some() {
            return Err(StoreError::Conflict(format!(
                "rpc error: node {id} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"
            )));
        }
        if !force && node.status.state != NodeState::Down {
            return Err(StoreError::Conflict(format!(
                "node {id} is not down and can't be removed"
            )));
        }
        self.nodes.remove(id);
        self.members.remove(id);
        // The addresses its engine held for attached containers go with it.
        for held in self.attachments.values_mut() {
            held.retain(|_, a| a.node_id != *id);
        }
        self.attachments.retain(|_, held| !held.is_empty());
        self.event(Kind::Node, EventAction::Remove, id, index);
        Ok(Some(id.to_string()))
    }

    pub(crate) fn add_node(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        node: &Node,
        member: &Member,
    ) -> Result<Option<String>> {
        // Node identity is the cluster's: a join gets a fresh node ID and Raft ID from the
        // leader, and never replaces (nor takes over the secrets of) a node that exists.
        if node.id.is_empty() || self.nodes.get(&node.id).is_some() {
            return Err(StoreError::Conflict(format!(
                "node ID `{}` is already taken: a joining node never replaces another",
                node.id
            )));
        }
        if member.raft_id == 0 || self.members.values().any(|m| m.raft_id == member.raft_id) {
            return Err(StoreError::Conflict(format!(
                "Raft ID {} is already taken: a joining node never replaces another",
                member.raft_id
            )));
        }
        let mut node = node.clone();
        stamp_new(
            &mut node.version,
            &mut node.created_at,
            &mut node.updated_at,
            index,
            at,
        );
        let id = node.id.clone();
        self.nodes.insert(node);
        self.members.insert(id.clone(), member.clone());
        self.event(Kind::Node, EventAction::Create, &id, index);
        Ok(Some(id))
    }
}
