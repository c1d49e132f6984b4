//! A peer transport that drops Raft RPCs between chosen coords: for fault
//! drills and tests (network partitions without touching the network).

use std::sync::Arc;

use async_trait::async_trait;
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::{GrpcTransport, RaftTransport, TypeConfig};
use crate::command::MetaCommand;
use crate::identity::Identity;

/// Whether RPCs from coord `from` to coord `to` are dropped right now.
pub type DropRule = Arc<dyn Fn(u64, u64) -> bool + Send + Sync>;

#[derive(Debug, thiserror::Error)]
#[error("RPC from coord {0} to coord {1} dropped (injected partition)")]
struct Dropped(u64, u64);

type RpcResult<T, E = RaftError<u64>> = Result<T, RPCError<u64, BasicNode, E>>;

/// The gRPC transport behind a switch: an RPC the rule drops fails as
/// unreachable, as if the network between the two coords were cut.
pub struct FaultyTransport {
    me: u64,
    inner: GrpcTransport,
    drop_rule: DropRule,
}

impl FaultyTransport {
    pub fn new(me: u64, inner: GrpcTransport, drop_rule: DropRule) -> Self {
        Self {
            me,
            inner,
            drop_rule,
        }
    }

    fn dropped<E: std::error::Error>(&self, target: u64) -> Option<RPCError<u64, BasicNode, E>> {
        (self.drop_rule)(self.me, target)
            .then(|| RPCError::Unreachable(Unreachable::new(&Dropped(self.me, target))))
    }
}

#[async_trait]
impl RaftTransport for FaultyTransport {
    async fn append_entries(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        if let Some(e) = self.dropped(target) {
            return Err(e);
        }
        self.inner.append_entries(target, node, rpc, option).await
    }

    async fn install_snapshot(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>> {
        if let Some(e) = self.dropped(target) {
            return Err(e);
        }
        self.inner.install_snapshot(target, node, rpc, option).await
    }

    async fn vote(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        if let Some(e) = self.dropped(target) {
            return Err(e);
        }
        self.inner.vote(target, node, rpc, option).await
    }

    fn set_identity(&self, identity: Arc<Identity>) {
        self.inner.set_identity(identity);
    }

    async fn propose(
        &self,
        target: u64,
        node: &BasicNode,
        command: &MetaCommand,
    ) -> Result<(), String> {
        if (self.drop_rule)(self.me, target) {
            return Err(Dropped(self.me, target).to_string());
        }
        self.inner.propose(target, node, command).await
    }

    async fn peer_status(
        &self,
        target: u64,
        node: &BasicNode,
    ) -> Result<super::network::PeerStatus, String> {
        if (self.drop_rule)(self.me, target) {
            return Err(Dropped(self.me, target).to_string());
        }
        self.inner.peer_status(target, node).await
    }
}
