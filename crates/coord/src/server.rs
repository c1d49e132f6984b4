//! The coord's gRPC server: `quiver.coord.v1.RaftService` (peers) and
//! `quiver.coord.v1.CoordService` (the metadata API) over one [`Coord`].
//!
//! Writes go to [`Coord`]'s Raft write path, which only the leader accepts
//! (followers answer FAILED_PRECONDITION with the leader's id and address);
//! reads of metadata are linearizable ([`Coord::read_state`], leader only);
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
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::coord::Coord;
use crate::error::{CoordError, Result};
use crate::raft::{MAX_MESSAGE_BYTES, TypeConfig};
use crate::state::MetaState;
use crate::wire::{
    from_json_arg, health_to_pb, index_from_pb, role_from_pb, segment_from_pb, segment_to_pb,
    to_json, to_status,
};

/// Serves both services of `coord` on `listener` until `shutdown` resolves;
/// then open `Watch` streams end and in-flight calls drain. Does not stop
/// the Raft node (call [`Coord::shutdown`] after).
pub async fn serve(
    coord: Coord,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let (closing_tx, closing) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let raft = RaftServiceServer::new(RaftPeer {
        coord: coord.clone(),
    })
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let meta = CoordServiceServer::new(MetaService { coord, closing })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Server::builder()
        .add_service(raft)
        .add_service(meta)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal)
        .await
        .map_err(|e| CoordError::Unavailable(format!("coord gRPC server failed: {e}")))
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
        let rpc: VoteRequest<u64> = decode_rpc(request)?;
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

    /// A linearizable read of the metadata (leader only).
    async fn read(&self) -> Result<Arc<MetaState>, Status> {
        self.coord.read_state().await.map_err(to_status)
    }
}

fn not_found(name: &str) -> Status {
    to_status(CoordError::Rule(crate::RuleError::CollectionNotFound(
        name.to_string(),
    )))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::MetaSnapshot, Status>> + Send>>;

#[tonic::async_trait]
impl CoordService for MetaService {
    async fn create_collection(
        &self,
        request: Request<pb::CreateCollectionRequest>,
    ) -> Reply<pb::CollectionReply> {
        let req = request.into_inner();
        let schema = from_json_arg(&req.schema_json, "schema_json")?;
        let metric = from_json_arg(&req.metric_json, "metric_json")?;
        let index = req.index.as_ref().map(index_from_pb).transpose()?;
        let meta = self
            .coord
            .create_collection(schema, req.shards, metric, index)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CollectionReply {
            collection_json: to_json(&meta, "collection")?,
            version: self.version(),
        }))
    }

    async fn drop_collection(&self, request: Request<pb::NameRequest>) -> Reply<pb::WriteReply> {
        let name = request.into_inner().name;
        self.coord.drop_collection(&name).await.map_err(to_status)?;
        self.write_reply()
    }

    async fn describe_collection(
        &self,
        request: Request<pb::NameRequest>,
    ) -> Reply<pb::CollectionReply> {
        let name = request.into_inner().name;
        let state = self.read().await?;
        let meta = state.collection(&name).ok_or_else(|| not_found(&name))?;
        Ok(Response::new(pb::CollectionReply {
            collection_json: to_json(meta, "collection")?,
            version: state.version(),
        }))
    }

    async fn list_collections(
        &self,
        _request: Request<pb::Empty>,
    ) -> Reply<pb::ListCollectionsReply> {
        let state = self.read().await?;
        let collections = state
            .collections()
            .map(|c| to_json(c, "collection"))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListCollectionsReply {
            collections_json: collections,
            version: state.version(),
        }))
    }

    async fn set_index(&self, request: Request<pb::SetIndexRequest>) -> Reply<pb::WriteReply> {
        let req = request.into_inner();
        let index = req
            .index
            .as_ref()
            .ok_or_else(|| {
                to_status(CoordError::Config {
                    field: "index".into(),
                    rule: "is required".into(),
                })
            })
            .and_then(index_from_pb)?;
        self.coord
            .set_index(&req.collection, index)
            .await
            .map_err(to_status)?;
        self.write_reply()
    }

    async fn drop_index(&self, request: Request<pb::NameRequest>) -> Reply<pb::WriteReply> {
        let name = request.into_inner().name;
        self.coord.drop_index(&name).await.map_err(to_status)?;
        self.write_reply()
    }

    async fn set_loaded(&self, request: Request<pb::SetLoadedRequest>) -> Reply<pb::WriteReply> {
        let req = request.into_inner();
        let replicas = Some(req.replica_number).filter(|n| *n != 0);
        self.coord
            .set_loaded(&req.collection, req.loaded, replicas)
            .await
            .map_err(to_status)?;
        self.write_reply()
    }

    async fn create_alias(&self, request: Request<pb::AliasRequest>) -> Reply<pb::AliasReply> {
        let req = request.into_inner();
        let epoch = self
            .coord
            .create_alias(&req.alias, &req.collection)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AliasReply {
            epoch,
            version: self.version(),
        }))
    }

    async fn alter_alias(&self, request: Request<pb::AliasRequest>) -> Reply<pb::AliasReply> {
        let req = request.into_inner();
        let epoch = self
            .coord
            .alter_alias(&req.alias, &req.collection)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AliasReply {
            epoch,
            version: self.version(),
        }))
    }

    async fn alias_admin(&self, request: Request<pb::AliasAdminRequest>) -> Reply<pb::AliasReply> {
        let req = request.into_inner();
        let change = from_json_arg(&req.change_json, "change_json")?;
        let actor = from_json_arg(&req.actor_json, "actor_json")?;
        let epoch = self
            .coord
            .alias_admin(change, actor)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AliasReply {
            epoch,
            version: self.version(),
        }))
    }

    async fn drop_alias(&self, request: Request<pb::NameRequest>) -> Reply<pb::WriteReply> {
        let name = request.into_inner().name;
        self.coord.drop_alias(&name).await.map_err(to_status)?;
        self.write_reply()
    }

    async fn list_aliases(&self, _request: Request<pb::Empty>) -> Reply<pb::ListAliasesReply> {
        let state = self.read().await?;
        let aliases = state
            .aliases()
            .iter()
            .map(|(alias, meta)| {
                Ok(pb::Alias {
                    alias: alias.clone(),
                    collection: meta.collection.clone(),
                    epoch: meta.epoch,
                    alias_json: to_json(meta, "alias")?,
                })
            })
            .collect::<Result<_, Status>>()?;
        Ok(Response::new(pb::ListAliasesReply {
            aliases,
            version: state.version(),
        }))
    }

    async fn register_segments(
        &self,
        request: Request<pb::RegisterSegmentsRequest>,
    ) -> Reply<pb::RegisterSegmentsReply> {
        let req = request.into_inner();
        let segments = req.segments.iter().map(segment_from_pb).collect();
        let wal_checkpoint = self
            .coord
            .register_segments(
                req.collection_id,
                req.shard,
                req.epoch,
                segments,
                req.wal_checkpoint,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RegisterSegmentsReply {
            wal_checkpoint,
            version: self.version(),
        }))
    }

    async fn segments(&self, request: Request<pb::ShardRequest>) -> Reply<pb::SegmentsReply> {
        let req = request.into_inner();
        let state = self.read().await?;
        let catalog = state.segments(req.collection_id, req.shard);
        Ok(Response::new(pb::SegmentsReply {
            segments: catalog.segments.iter().map(segment_to_pb).collect(),
            wal_checkpoint: catalog.wal_checkpoint,
            version: state.version(),
        }))
    }

    async fn acquire_shard(
        &self,
        request: Request<pb::AcquireShardRequest>,
    ) -> Reply<pb::AcquireShardReply> {
        let req = request.into_inner();
        let epoch = self
            .coord
            .acquire_shard(req.collection_id, req.shard, req.node_id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AcquireShardReply {
            epoch,
            version: self.version(),
        }))
    }

    async fn allocate_ids(
        &self,
        request: Request<pb::AllocateIdsRequest>,
    ) -> Reply<pb::AllocateIdsReply> {
        let count = request.into_inner().count;
        let ids = self.coord.allocate_ids(count).await.map_err(to_status)?;
        Ok(Response::new(pb::AllocateIdsReply {
            first: ids.start,
            count: ids.end - ids.start,
            version: self.version(),
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
        let lags = req.mirror_lag_ms.into_iter().collect();
        self.coord
            .heartbeat_with(req.id, role, &req.addr, &lags)
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
