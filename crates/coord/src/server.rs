//! The coord's gRPC server: `quiver.coord.v1.RaftService` (peers) and
//! `quiver.coord.v1.CoordService` (the metadata API) over one [`Coord`].
//!
//! Every metadata change is one `Propose` (a `MetaCommand` and its request
//! id) handed to [`Coord::propose`], which only the leader accepts
//! (followers answer FAILED_PRECONDITION with the leader's id and address);
//! `Read` is linearizable ([`Coord::read_state`], leader only);
//! `Watch` and `ClusterStatus` are answered by every node from its own
//! applied state.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use quiver_proto::coord as pb;
use quiver_proto::coord::coord_service_server::{CoordService, CoordServiceServer};
use quiver_proto::coord::raft_service_server::{RaftService, RaftServiceServer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::command::{MetaCommand, RequestId};
use crate::coord::Coord;
use crate::error::{CoordError, Result};
use crate::identity::CLUSTER_HEADER;
use crate::raft::{MAX_MESSAGE_BYTES, TypeConfig};
use crate::state::MetaState;
use crate::wire::{from_json_arg, health_to_pb, role_from_pb, to_json, to_status};

/// Serves both services of `coord` on `listener` until `shutdown` resolves;
/// then open `Watch` streams end and in-flight calls drain. Does not stop
/// the Raft node (call [`Coord::shutdown`] after).
pub async fn serve(
    coord: Coord,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    serve_tls(coord, listener, None, shutdown).await
}

/// [`serve`], over mutual TLS when `tls` is given: a client without a
/// certificate signed by the cluster CA (peers and cluster processes have
/// one) is refused during the handshake.
pub async fn serve_tls(
    coord: Coord,
    listener: TcpListener,
    tls: Option<quiver_rpc::ClusterTls>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let (closing_tx, closing) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    // `GET /metrics` and the probes beside the services, every call
    // counted and timed. Ready: this coord knows a Raft leader.
    let ready = {
        let coord = coord.clone();
        Arc::new(move || match coord.status().leader {
            Some(_) => Ok(()),
            None => Err("no Raft leader known to this coord".to_string()),
        })
    };
    let raft = RaftServiceServer::new(RaftPeer {
        coord: coord.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let meta = CoordServiceServer::new(MetaService { coord, closing })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let routes = tonic::service::Routes::new(raft)
        .add_service(meta)
        .into_axum_router()
        .merge(quiver_metrics::routes_with_probes(ready))
        .layer(axum::middleware::from_fn(quiver_metrics::protocol::check))
        .layer(axum::middleware::from_fn(quiver_metrics::rpc::track));
    let router = Server::builder()
        .accept_http1(true)
        .add_routes(tonic::service::Routes::from(routes));
    let incoming = quiver_rpc::accept::incoming(
        listener,
        tls.map(|t| t.server_config()),
        quiver_rpc::accept::AcceptLimits::default(),
    );
    let served = router.serve_with_incoming_shutdown(incoming, signal).await;
    served.map_err(|e| CoordError::Unavailable(format!("coord gRPC server failed: {e}")))
}

/// Raft RPCs from peers, handed to the local Raft node.
struct RaftPeer {
    coord: Coord,
}

fn decode_rpc<T: serde::de::DeserializeOwned>(req: Request<pb::RaftPayload>) -> Result<T, Status> {
    serde_json::from_slice(&req.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("bad raft payload: {e}")))
}

fn raft_reply<T: serde::Serialize>(result: &T) -> Result<Response<pb::RaftPayload>, Status> {
    Ok(Response::new(pb::RaftPayload {
        json: to_json(result, "raft reply")?,
    }))
}

#[tonic::async_trait]
impl RaftService for RaftPeer {
    async fn append_entries(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode_rpc(request)?;
        raft_reply(&self.coord.raft.append_entries(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode_rpc(request)?;
        raft_reply(&self.coord.raft.install_snapshot(rpc).await)
    }

    async fn vote(
        &self,
        request: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftPayload>, Status> {
        let candidate = request
            .metadata()
            .get(CLUSTER_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let rpc: VoteRequest<u64> = decode_rpc(request)?;
        if let Some(identity) = self.coord.identity() {
            let applied = self.coord.state();
            if let Err(why) = identity.may_vote(candidate.as_deref(), applied.cluster_id()) {
                tracing::debug!(
                    candidate = rpc.vote.leader_id().voted_for(),
                    "vote refused: {why}"
                );
                return Err(Status::failed_precondition(why));
            }
        }
        raft_reply(&self.coord.raft.vote(rpc).await)
    }
}

/// The metadata API.
struct MetaService {
    coord: Coord,
    /// Becomes true when the server stops: `Watch` streams end.
    closing: watch::Receiver<bool>,
}

type Reply<T> = Result<Response<T>, Status>;

impl MetaService {
    fn version(&self) -> u64 {
        self.coord.state().version()
    }

    fn write_reply(&self) -> Reply<pb::WriteReply> {
        Ok(Response::new(pb::WriteReply {
            version: self.version(),
        }))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::MetaSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl CoordService for MetaService {
    async fn propose(&self, request: Request<pb::ProposeRequest>) -> Reply<pb::ProposeReply> {
        let req = request.into_inner();
        let cmd: MetaCommand = from_json_arg(&req.command_json, "command_json")?;
        let id = (req.client_id != 0).then_some(RequestId {
            client: req.client_id,
            seq: req.seq,
        });
        let response = self.coord.propose(cmd, id).await.map_err(to_status)?;
        Ok(Response::new(pb::ProposeReply {
            response_json: to_json(&response, "response")?,
            version: self.version(),
        }))
    }

    async fn read(&self, _request: Request<pb::Empty>) -> Reply<pb::MetaSnapshot> {
        let state = self.coord.read_state().await.map_err(to_status)?;
        Ok(Response::new(pb::MetaSnapshot {
            version: state.version(),
            state_json: to_json(&*state, "metadata state")?,
            node_id: self.coord.node_id(),
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<pb::WatchRequest>) -> Reply<WatchStream> {
        let after = request.into_inner().after_version;
        let follow = Follow {
            coord: self.coord.clone(),
            state: self.coord.watch(),
            closing: self.closing.clone(),
            node_id: self.coord.node_id(),
            // The first message is the current state unless it is older
            // than what the caller has already seen.
            sent: None,
            after,
        };
        let stream = futures::stream::unfold(follow, |mut f| async move {
            let item = f.next().await?;
            Some((item, f))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn heartbeat(&self, request: Request<pb::HeartbeatRequest>) -> Reply<pb::WriteReply> {
        let req = request.into_inner();
        let role = role_from_pb(req.role, "role").map_err(to_status)?;
        let storage = if req.storage.is_empty() {
            Vec::new()
        } else {
            serde_json::from_slice(&req.storage).map_err(|e| {
                Status::invalid_argument(format!("invalid storage: not shard storage JSON ({e})"))
            })?
        };
        let report = quiver_api::NodeReport {
            mirror_lag_ms: req.mirror_lag_ms.into_iter().collect(),
            storage,
            serving: (req.serving.iter())
                .map(|s| (s.collection_id, s.shard))
                .collect(),
            resident_bytes: req.resident_bytes,
            memory_limit_bytes: req.memory_limit_bytes,
        };
        self.coord
            .heartbeat_with(req.id, role, &req.addr, &report)
            .await
            .map_err(to_status)?;
        self.write_reply()
    }

    async fn node_health(&self, _request: Request<pb::Empty>) -> Reply<pb::NodeHealthReply> {
        let nodes = self.coord.node_health().map_err(to_status)?;
        Ok(Response::new(pb::NodeHealthReply {
            nodes: nodes.iter().map(health_to_pb).collect(),
            version: self.version(),
            mirror_lag_ms: self.coord.mirror_lags().into_iter().collect(),
            divergent_rows: self.coord.divergence().into_iter().collect(),
            storage: serde_json::to_vec(&self.coord.storage()).unwrap_or_default(),
        }))
    }

    async fn change_membership(
        &self,
        request: Request<pb::MembershipChange>,
    ) -> Reply<pb::MembersReply> {
        let req = request.into_inner();
        let members = match req.remove {
            true => self.coord.remove_member(req.id).await,
            false => {
                let catch_up = match req.catch_up_ms {
                    0 => crate::coord::DEFAULT_CATCH_UP,
                    ms => std::time::Duration::from_millis(ms),
                };
                self.coord.add_member(req.id, &req.addr, catch_up).await
            }
        }
        .map_err(to_status)?;
        let list = |m: std::collections::BTreeMap<u64, String>| {
            m.into_iter()
                .map(|(id, addr)| pb::Member { id, addr })
                .collect()
        };
        Ok(Response::new(pb::MembersReply {
            voters: list(members.voters),
            learners: list(members.learners),
        }))
    }

    async fn cluster_status(&self, _request: Request<pb::Empty>) -> Reply<pb::ClusterStatusReply> {
        let s = self.coord.status();
        Ok(Response::new(pb::ClusterStatusReply {
            node_id: s.node_id,
            role: s.role.as_str().to_string(),
            leader_id: s.leader,
            leader_addr: s.leader_addr.unwrap_or_default(),
            members: s
                .members
                .into_iter()
                .map(|(id, addr)| pb::Member { id, addr })
                .collect(),
            term: s.term,
            last_applied: s.last_applied,
            meta_version: s.meta_version,
            standing: s.standing,
            protocol: quiver_metrics::protocol::PROTOCOL,
        }))
    }
}

/// One `Watch` stream's position.
/// How often an idle watch stream checks that its coord is still in touch
/// with the cluster (a cut-off coord's state freezes: the stream ends so the
/// watcher resumes on another coord).
const IN_TOUCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

struct Follow {
    coord: Coord,
    state: watch::Receiver<Arc<MetaState>>,
    closing: watch::Receiver<bool>,
    node_id: u64,
    /// The version last sent.
    sent: Option<u64>,
    after: u64,
}

impl Follow {
    /// The next state to send; `None` ends the stream (server or node stopping).
    async fn next(&mut self) -> Option<Result<pb::MetaSnapshot, Status>> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            let state = Arc::clone(&self.state.borrow_and_update());
            let version = state.version();
            let due = match self.sent {
                None => version >= self.after,
                Some(sent) => version > sent,
            };
            if due {
                self.sent = Some(version);
                let snapshot =
                    to_json(&*state, "metadata state").map(|state_json| pb::MetaSnapshot {
                        version,
                        state_json,
                        node_id: self.node_id,
                    });
                return Some(snapshot);
            }
            tokio::select! {
                changed = self.state.changed() => changed.ok()?,
                closing = self.closing.changed() => closing.ok()?,
                () = tokio::time::sleep(IN_TOUCH_EVERY) => {
                    if !self.coord.in_touch().await {
                        return Some(Err(Status::unavailable(format!(
                            "coord {} lost touch with the cluster; resume the watch on another coord",
                            self.node_id
                        ))));
                    }
                }
            }
        }
    }
}
