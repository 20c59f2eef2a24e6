//! The cluster object: creating it with its first manager and the ingress network, and updating its spec, join tokens and unlock key.

use crate::command::*;
use crate::error::{Kind, StoreError};
use crate::state::*;
use chrono::{DateTime, Utc};
use shoal_types::swarm::*;

type Result<T> = std::result::Result<T, StoreError>;

/// What `Command::UpdateCluster` changes.
pub(crate) struct ClusterUpdate<'a> {
    pub spec: &'a Spec,
    pub join_tokens: &'a JoinTokens,
    pub unlock_key: &'a [u8],
    pub root_rotation: Option<&'a RotationChange>,
}

impl State {
    pub(crate) fn init_cluster(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        cluster: &Cluster,
        node: &Node,
        member: &Member,
        ingress: &Network,
    ) -> Result<Option<String>> {
        let version = Version { index };
        if self.cluster.is_some() {
            return Err(StoreError::Conflict(
                "this node is already part of a swarm".into(),
            ));
        }
        let mut cluster = cluster.clone();
        cluster.info.version = version;
        cluster.info.created_at = at;
        cluster.info.updated_at = at;
        let id = cluster.info.id.clone();
        self.cluster = Some(cluster);
        self.add_node(index, at, node, member)?;
        let mut ingress = ingress.clone();
        stamp_new(
            &mut ingress.version,
            &mut ingress.created_at,
            &mut ingress.updated_at,
            index,
            at,
        );
        self.event(Kind::Network, EventAction::Create, &ingress.id, index);
        self.networks.insert(ingress);
        self.event(Kind::Cluster, EventAction::Create, &id, index);
        Ok(Some(id))
    }

    pub(crate) fn update_cluster(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        sent: u64,
        update: ClusterUpdate<'_>,
    ) -> Result<Option<String>> {
        let ClusterUpdate {
            spec,
            join_tokens,
            unlock_key,
            root_rotation,
        } = update;
        let c = self.cluster.as_mut().ok_or(StoreError::NoCluster)?;
        check_version(Kind::Cluster, &c.info.id, &c.info.version, sent)?;
        c.info.spec = spec.clone();
        c.join_tokens = join_tokens.clone();
        c.unlock_key = unlock_key.to_vec();
        match root_rotation {
            Some(RotationChange::Start(r)) => c.root_rotation = Some(r.clone()),
            Some(RotationChange::Abort) => c.root_rotation = None,
            None => {}
        }
        c.info.root_rotation_in_progress = c.root_rotation.is_some();
        stamp(&mut c.info.version, &mut c.info.updated_at, index, at);
        let id = c.info.id.clone();
        self.event(Kind::Cluster, EventAction::Update, &id, index);
        Ok(Some(id))
    }

    /// The leader ends the root rotation it started: the new root becomes the cluster's, with
    /// new join tokens.
    pub(crate) fn finish_root_rotation(
        &mut self,
        index: u64,
        at: DateTime<Utc>,
        new_root: &str,
        tls_info: &TLSInfo,
        join_tokens: &JoinTokens,
    ) -> Result<Option<String>> {
        let c = self.cluster.as_mut().ok_or(StoreError::NoCluster)?;
        let rotation = c
            .root_rotation
            .take_if(|r| r.new_root.cert_pem == *new_root)
            .ok_or_else(|| {
                StoreError::Conflict("the root rotation changed before it could finish".into())
            })?;
        c.root_ca = Some(rotation.new_root);
        c.info.root_rotation_in_progress = false;
        c.info.tls_info = tls_info.clone();
        c.join_tokens = join_tokens.clone();
        stamp(&mut c.info.version, &mut c.info.updated_at, index, at);
        let id = c.info.id.clone();
        self.event(Kind::Cluster, EventAction::Update, &id, index);
        Ok(Some(id))
    }
}
