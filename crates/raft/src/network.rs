//! openraft's network: Raft RPCs to other managers through the [`Transport`].

use crate::limits::{MAX_APPEND_BYTES, MAX_RAFT_ANSWER_BYTES};
use crate::transport::{Transport, TransportError};
use crate::{NodeId, RaftError, TypeConfig};
use bytes::Bytes;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;

pub type AppendReq = AppendEntriesRequest<TypeConfig>;
pub type AppendResp = Result<AppendEntriesResponse<NodeId>, RaftError>;
pub type VoteReq = VoteRequest<NodeId>;
pub type VoteResp = Result<VoteResponse<NodeId>, RaftError>;
pub type SnapshotReq = InstallSnapshotRequest<TypeConfig>;
pub type SnapshotResp = Result<InstallSnapshotResponse<NodeId>, RaftError<InstallSnapshotError>>;

pub const PATH_APPEND: &str = "/internal/raft/append";
pub const PATH_VOTE: &str = "/internal/raft/vote";
pub const PATH_SNAPSHOT: &str = "/internal/raft/snapshot";
pub const PATH_PREVOTE: &str = "/internal/raft/prevote";

#[derive(Clone)]
pub struct NetworkFactory {
    pub(crate) transport: Transport,
}

pub struct Conn {
    transport: Transport,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Conn;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Conn {
        Conn {
            transport: self.transport.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

fn rpc_err<E: std::error::Error>(e: TransportError) -> RPCError<NodeId, BasicNode, E> {
    if e.is_unreachable() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

impl Conn {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<E>>>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let json = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        self.call_json(path, Bytes::from(json), option).await
    }

    async fn call_json<Resp, E>(
        &self,
        path: &str,
        json: Bytes,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<E>>>
    where
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let resp: Result<Resp, RaftError<E>> = self
            .transport
            .post_json(
                &self.addr,
                path,
                json,
                option.hard_ttl(),
                MAX_RAFT_ANSWER_BYTES,
            )
            .await
            .map_err(rpc_err)?;
        resp.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// Serializes an append request that the receiver takes: while it is larger than `max`
/// ([`MAX_APPEND_BYTES`]), only the first half of its entries go (openraft sends the rest
/// next). One entry always fits, since proposals and batches are bounded.
fn fit_append(rpc: &mut AppendReq, max: usize) -> Result<Bytes, serde_json::Error> {
    loop {
        let json = serde_json::to_vec(&*rpc)?;
        if json.len() <= max || rpc.entries.len() <= 1 {
            return Ok(Bytes::from(json));
        }
        let keep = rpc.entries.len() / 2;
        rpc.entries.truncate(keep);
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendReq,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError>> {
        let mut rpc = rpc;
        let all = rpc.entries.len();
        let json = fit_append(&mut rpc, MAX_APPEND_BYTES)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let resp: AppendEntriesResponse<NodeId> =
            self.call_json(PATH_APPEND, json, &option).await?;
        match resp {
            // What did not fit was not sent: the follower has the entries up to the last one
            // that went.
            AppendEntriesResponse::Success if rpc.entries.len() < all => Ok(
                AppendEntriesResponse::PartialSuccess(rpc.entries.last().map(|e| e.log_id)),
            ),
            other => Ok(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: SnapshotReq,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<InstallSnapshotError>>,
    > {
        self.call(PATH_SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteReq,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError>> {
        self.call(PATH_VOTE, &rpc, &option).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Entry};
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
    use shoal_store::{Command, Request};

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch {
                requests: vec![Request::now(Command::Noop); 10],
            }),
        }
    }

    #[test]
    fn an_append_larger_than_the_limit_carries_only_its_first_entries() {
        let mut rpc = AppendReq {
            vote: Vote::new_committed(1, 1),
            prev_log_id: None,
            leader_commit: None,
            entries: (1..=16).map(entry).collect(),
        };
        let whole = serde_json::to_vec(&rpc).unwrap().len();
        let json = fit_append(&mut rpc, whole / 3).unwrap();
        assert!(json.len() <= whole / 3);
        assert_eq!(rpc.entries.len(), 4, "halved until it fits");
        assert_eq!(rpc.entries.last().map(|e| e.log_id.index), Some(4));
        // One entry goes even when it alone is larger than the limit.
        let json = fit_append(&mut rpc, 10).unwrap();
        assert_eq!(rpc.entries.len(), 1);
        assert!(json.len() > 10);
    }
}
