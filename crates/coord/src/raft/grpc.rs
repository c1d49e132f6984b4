//! The gRPC peer transport: openraft's RPCs as JSON in `RaftPayload`
//! messages of `quiver.coord.v1.RaftService`, one lazily connected tonic
//! channel per peer address. The server side is in `crate::server`.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use quiver_proto::coord::coord_service_client::CoordServiceClient;
use quiver_proto::coord::raft_service_client::RaftServiceClient;
use quiver_proto::coord::{ProposeRequest, RaftPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::Channel;

use super::{RaftTransport, TypeConfig};
use crate::command::MetaCommand;
use crate::coord::CoordOptions;
use crate::identity::{CLUSTER_HEADER, Identity};

/// Largest gRPC message between coords (snapshot chunks are 1 MiB of data,
/// which JSON inflates).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

type RpcResult<T, E> = Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

/// Sends Raft RPCs to peers over gRPC. Channels are created on first use and
/// reconnect by themselves; every call is bounded by openraft's hard TTL.
pub struct GrpcTransport {
    /// The sending node (reported in timeouts).
    node_id: u64,
    connect_timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
    /// Cluster-internal mutual TLS (this coord's identity, the cluster CA).
    tls: Option<quiver_rpc::ClusterTls>,
    /// Which cluster this coord votes in (sent with every Raft RPC).
    identity: OnceLock<Arc<Identity>>,
}

impl GrpcTransport {
    pub fn new(node_id: u64, options: &CoordOptions) -> Self {
        Self {
            node_id,
            connect_timeout: options.peer_connect_timeout(),
            channels: Mutex::new(HashMap::new()),
            tls: None,
            identity: OnceLock::new(),
        }
    }

    /// Dials peers over mutual TLS with this identity (see `quiver_rpc::tls`).
    pub fn with_tls(mut self, tls: Option<quiver_rpc::ClusterTls>) -> Self {
        self.tls = tls;
        self
    }

    fn channel(&self, addr: &str) -> Result<Channel, TransportError> {
        if addr.is_empty() {
            return Err(TransportError("peer has no address".into()));
        }
        let mut channels = self.channels.lock();
        if let Some(channel) = channels.get(addr) {
            return Ok(channel.clone());
        }
        let channel = quiver_rpc::tls::endpoint(addr, self.tls.as_ref())
            .map_err(|e| TransportError(format!("peer {addr:?}: {e}")))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }

    /// Sends one RPC: JSON request out, `Result<Resp, RaftError<E>>` JSON back.
    async fn call<Req, Resp, E>(
        &self,
        target: u64,
        node: &BasicNode,
        action: RPCTypes,
        rpc: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network = |msg: String| RPCError::Network(NetworkError::new(&TransportError(msg)));
        let json =
            serde_json::to_vec(rpc).map_err(|e| network(format!("cannot encode {action}: {e}")))?;
        let channel = self
            .channel(&node.addr)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let mut client =
            RaftServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
        let ttl = option.hard_ttl();
        let mut request = tonic::Request::new(RaftPayload { json });
        request.set_timeout(ttl);
        if let Some(cluster) = self.identity.get().and_then(|i| i.voter_cluster_id())
            && let Ok(value) = cluster.parse()
        {
            request.metadata_mut().insert(CLUSTER_HEADER, value);
        }
        let sent = async {
            match action {
                RPCTypes::Vote => client.vote(request).await,
                RPCTypes::AppendEntries => client.append_entries(request).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        let timeout = || {
            RPCError::Timeout(Timeout {
                action,
                id: self.node_id,
                target,
                timeout: ttl,
            })
        };
        let reply = match tokio::time::timeout(ttl, sent).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(reply)) => reply.into_inner(),
            Ok(Err(status)) => {
                return Err(match status.code() {
                    tonic::Code::DeadlineExceeded => timeout(),
                    tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown => {
                        RPCError::Unreachable(Unreachable::new(&TransportError(format!(
                            "peer {target} at {}: {}",
                            node.addr,
                            status.message()
                        ))))
                    }
                    _ => network(format!(
                        "peer {target} at {}: {:?}: {}",
                        node.addr,
                        status.code(),
                        status.message()
                    )),
                });
            }
        };
        let result: Result<Resp, RaftError<u64, E>> =
            serde_json::from_slice(&reply.json).map_err(|e| {
                network(format!(
                    "cannot decode {action} reply from peer {target}: {e}"
                ))
            })?;
        result
            .map_err(|e| RPCError::RemoteError(RemoteError::new_with_node(target, node.clone(), e)))
    }
}

#[async_trait]
impl RaftTransport for GrpcTransport {
    async fn append_entries(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>, openraft::error::Infallible> {
        self.call(target, node, RPCTypes::AppendEntries, &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        self.call(target, node, RPCTypes::InstallSnapshot, &rpc, &option)
            .await
    }

    async fn vote(
        &self,
        target: u64,
        node: &BasicNode,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>, openraft::error::Infallible> {
        self.call(target, node, RPCTypes::Vote, &rpc, &option).await
    }

    fn set_identity(&self, identity: Arc<Identity>) {
        let _ = self.identity.set(identity);
    }

    async fn propose(
        &self,
        target: u64,
        node: &BasicNode,
        command: &MetaCommand,
    ) -> Result<(), String> {
        let command_json = serde_json::to_vec(command).map_err(|e| e.to_string())?;
        let channel = self.channel(&node.addr).map_err(|e| e.to_string())?;
        let mut client = CoordServiceClient::new(channel);
        let mut request = tonic::Request::new(ProposeRequest {
            command_json,
            client_id: 0,
            seq: 0,
        });
        request.set_timeout(Duration::from_secs(5));
        client
            .propose(request)
            .await
            .map(|_| ())
            .map_err(|s| format!("coord {target} at {}: {}", node.addr, s.message()))
    }

    async fn peer_status(
        &self,
        target: u64,
        node: &BasicNode,
    ) -> Result<super::network::PeerStatus, String> {
        let channel = self.channel(&node.addr).map_err(|e| e.to_string())?;
        let mut client = CoordServiceClient::new(channel);
        let mut request = tonic::Request::new(quiver_proto::coord::Empty {});
        request.set_timeout(Duration::from_secs(2));
        let reply = client
            .cluster_status(request)
            .await
            .map_err(|s| format!("coord {target} at {}: {}", node.addr, s.message()))?;
        let reply = reply.into_inner();
        Ok(super::network::PeerStatus {
            leader: reply.leader_id,
            protocol: reply.protocol.max(1),
        })
    }
}
