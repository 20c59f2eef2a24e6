//! openraft's network: Raft RPCs to other managers through the [`Transport`].

use crate::transport::{Transport, TransportError};
use crate::{NodeId, RaftError, TypeConfig};
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
        let resp: Result<Resp, RaftError<E>> = self
            .transport
            .post(&self.addr, path, req, option.hard_ttl())
            .await
            .map_err(rpc_err)?;
        resp.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        rpc: AppendReq,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError>> {
        self.call(PATH_APPEND, &rpc, &option).await
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
