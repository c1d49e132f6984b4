//! Peer transport. openraft's `RaftNetwork` is generic and not object-safe, so
//! coord talks to peers through [`RaftTransport`], a trait object: today
//! [`NoPeers`] (a one-node cluster), later a gRPC client.

use std::sync::Arc;

use async_trait::async_trait;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::TypeConfig;
use crate::command::MetaCommand;
use crate::identity::Identity;

type RpcResult<T, E = RaftError<u64>> = Result<T, RPCError<u64, BasicNode, E>>;

/// Sends Raft RPCs to peer coords. Implementations must be cheap to share.
#[async_trait]
pub trait RaftTransport: Send + Sync + 'static {
    async fn append_entries(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>>;

    async fn install_snapshot(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>;

    async fn vote(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>>;

    /// This coord's identity: a voter's RPCs carry its cluster id
    /// (`crate::identity`). A transport without peers ignores it.
    fn set_identity(&self, _identity: Arc<Identity>) {}

    /// Proposes `command` on coord `target` (the leader): how a follower
    /// registers its own identity.
    async fn propose(
        &self,
        target: u64,
        _node: &BasicNode,
        _command: &MetaCommand,
    ) -> Result<(), String> {
        Err(format!("coord {target} is unreachable: no peer transport"))
    }

    /// Whom coord `target` follows and the protocol it speaks (its
    /// `ClusterStatus`): how a leader checks that the voters staying after
    /// a removal answer it, and which metadata commands every coord knows.
    async fn peer_status(&self, target: u64, _node: &BasicNode) -> Result<PeerStatus, String> {
        Err(format!("coord {target} is unreachable: no peer transport"))
    }
}

/// What a peer coord says of itself ([`RaftTransport::peer_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    pub leader: Option<u64>,
    /// Its internal protocol (`quiver_metrics::protocol`; 1 for a release
    /// before versioning).
    pub protocol: u32,
}

/// The transport of a one-node cluster: every peer is unreachable.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPeers;

#[derive(Debug, thiserror::Error)]
#[error("peer {0} is unreachable: this coord runs without a peer transport")]
struct NoTransport(u64);

fn unreachable<E: std::error::Error>(target: u64) -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&NoTransport(target)))
}

#[async_trait]
impl RaftTransport for NoPeers {
    async fn append_entries(
        &self,
        target: u64,
        _node: &BasicNode,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        Err(unreachable(target))
    }

    async fn install_snapshot(
        &self,
        target: u64,
        _node: &BasicNode,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> {
        Err(unreachable(target))
    }

    async fn vote(
        &self,
        target: u64,
        _node: &BasicNode,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        Err(unreachable(target))
    }
}

/// openraft's network factory over a shared [`RaftTransport`].
pub(crate) struct Network {
    transport: Arc<dyn RaftTransport>,
}

impl Network {
    pub(crate) fn new(transport: Arc<dyn RaftTransport>) -> Self {
        Self { transport }
    }
}

/// A connection to one peer.
pub(crate) struct PeerClient {
    transport: Arc<dyn RaftTransport>,
    target: u64,
    node: BasicNode,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &BasicNode) -> PeerClient {
        PeerClient {
            transport: Arc::clone(&self.transport),
            target,
            node: node.clone(),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        self.transport
            .append_entries(self.target, &self.node, rpc, option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> {
        self.transport
            .install_snapshot(self.target, &self.node, rpc, option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        self.transport
            .vote(self.target, &self.node, rpc, option)
            .await
    }
}
