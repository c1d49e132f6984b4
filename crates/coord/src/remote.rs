//! [`CoordClient`]: coord for processes other than the coords (proxies,
//! datanodes, querynodes), over `quiver.coord.v1.CoordService`.
//!
//! - Calls go to the leader. A follower's not-leader answer redirects to the
//!   leader it names; an unreachable coord, a timeout or "no leader yet"
//!   moves on to the next address with backoff. All of it happens inside the
//!   call's deadline ([`CoordClientOptions::call_timeout`]); only the final
//!   outcome reaches the caller.
//! - A background task follows a `Watch` stream from any coord into a local
//!   cache ([`CoordClient::state`], [`CoordClient::subscribe`]); when the
//!   stream breaks it resumes from the next coord at the version it had. The
//!   cache never goes back in version. Lookups of [`CatalogClient`] read the
//!   cache, so the data path never waits on coord.
//! - After a write the client waits (within the deadline) until its cache
//!   holds the write, so a lookup right after a DDL call sees it.
//!
//! A write whose outcome was lost (the leader died after committing it)
//! is retried. Creates and drops of collections and aliases recognise
//! their own earlier success (the retry answers "already exists" / "not
//! found" and the metadata is as asked): they succeed. Allocated ids may be
//! skipped, and a retried `acquire_shard` may skip an epoch (harmless: the
//! caller owns the newest one).

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use quiver_common::{CollectionId, CollectionSchema, Error, Metric, Result, ShardIndex};
use quiver_proto::coord as pb;
use quiver_proto::coord::coord_service_client::CoordServiceClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

mod nodes;
mod roles;

pub use nodes::route_of;
pub use roles::{collection_info, segment_info, segment_meta};

use crate::command::{Actor, AliasChange};
use crate::coord::{ClusterStatus, Role};
use crate::raft::MAX_MESSAGE_BYTES;
use crate::state::{AliasMeta, CollectionMeta, IndexSpec, MetaState, SegmentMeta};
use crate::wire::{
    Failure, classify, from_json_reply, index_to_pb, segment_from_pb, segment_to_pb,
};

/// Timeouts and backoff of a [`CoordClient`].
#[derive(Debug, Clone)]
pub struct CoordClientOptions {
    /// Deadline of one call, retries and redirects included.
    pub call_timeout: Duration,
    /// Deadline of one attempt on one coord (above the coords'
    /// `write_timeout_ms`, so that a leader without quorum can answer).
    pub attempt_timeout: Duration,
    /// TCP connect timeout to a coord.
    pub connect_timeout: Duration,
    /// First and largest pause between attempts.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// How this process reaches coords, by id, when the addresses coords
    /// advertise (their Raft membership) are not the ones to dial from here
    /// (NAT, proxies, fault-injection links): a redirect to a leader listed
    /// here goes to this address instead.
    pub coord_addrs: std::collections::BTreeMap<u64, String>,
}

impl Default for CoordClientOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(15),
            attempt_timeout: Duration::from_secs(4),
            connect_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            coord_addrs: std::collections::BTreeMap::new(),
        }
    }
}

/// A client of a coord cluster. Cheap to clone; clones share connections,
/// the leader guess and the cache. The watch task stops with the last clone.
#[derive(Clone)]
pub struct CoordClient {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Arc<Connections>,
    cache: watch::Receiver<Arc<MetaState>>,
    watcher: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

/// Coord addresses, the leader guess and one channel per address.
struct Connections {
    options: CoordClientOptions,
    addrs: Mutex<Vec<String>>,
    leader: Mutex<Option<String>>,
    /// Next address to try when the leader is unknown.
    next: Mutex<usize>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Connections {
    fn client(&self, addr: &str) -> Result<CoordServiceClient<Channel>> {
        let channel = {
            let mut channels = self.channels.lock();
            match channels.get(addr) {
                Some(c) => c.clone(),
                None => {
                    let c = Endpoint::from_shared(format!("http://{addr}"))
                        .map_err(|e| Error::invalid("coord address", format!("{addr:?}: {e}")))?
                        .connect_timeout(self.options.connect_timeout)
                        .tcp_nodelay(true)
                        .http2_keep_alive_interval(Duration::from_secs(1))
                        .keep_alive_timeout(Duration::from_secs(2))
                        .keep_alive_while_idle(true)
                        .connect_lazy();
                    channels.insert(addr.to_string(), c.clone());
                    c
                }
            }
        };
        Ok(CoordServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// The coord to try next: the leader if known, else the next address.
    fn pick(&self) -> String {
        if let Some(leader) = self.leader.lock().clone() {
            return leader;
        }
        self.rotate()
    }

    /// The next address in turn (for the watch stream and when no leader is known).
    fn rotate(&self) -> String {
        let addrs = self.addrs.lock();
        let mut next = self.next.lock();
        let addr = addrs[*next % addrs.len()].clone();
        *next = (*next + 1) % addrs.len();
        addr
    }

    fn set_leader(&self, addr: Option<String>) {
        if let Some(addr) = &addr {
            let mut addrs = self.addrs.lock();
            if !addrs.contains(addr) {
                addrs.push(addr.clone());
            }
        }
        *self.leader.lock() = addr;
    }

    /// Forgets `addr` as the leader (it failed).
    fn leader_failed(&self, addr: &str) {
        let mut leader = self.leader.lock();
        if leader.as_deref() == Some(addr) {
            *leader = None;
        }
    }

    /// Runs `call` against the leader, following redirects and retrying
    /// other coords with backoff until it answers or the deadline passes.
    /// The flag is true if an attempt failed in a way that may have left
    /// the call applied (no answer, or a timeout on a coord) before the
    /// final one: a write's final answer may then describe its own retry.
    async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> (Result<T>, bool)
    where
        F: FnMut(CoordServiceClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let o = &self.options;
        let deadline = Instant::now() + o.call_timeout;
        let mut backoff = o.backoff_min;
        let mut redirects = 0u32;
        let mut last: String;
        let mut ambiguous = false;
        loop {
            let addr = self.pick();
            let left = deadline.saturating_duration_since(Instant::now());
            let client = match self.client(&addr) {
                Ok(c) => c,
                Err(e) => return (Err(e), ambiguous),
            };
            let attempt = tokio::time::timeout(left.min(o.attempt_timeout), call(client)).await;
            let pause = match attempt {
                Ok(Ok(reply)) => {
                    self.set_leader(Some(addr));
                    return (Ok(reply.into_inner()), ambiguous);
                }
                Ok(Err(status)) => match classify(&status) {
                    Failure::Final(e) => return (Err(e), ambiguous),
                    Failure::Redirect { leader, addr: to } => {
                        last = format!("coord at {addr} is not the leader (leader: {leader:?})");
                        redirects += 1;
                        let to = leader
                            .and_then(|id| self.options.coord_addrs.get(&id).cloned())
                            .or(to);
                        let known = to.is_some();
                        self.set_leader(to);
                        // Follow a named leader at once, unless redirects
                        // go round in circles during an election.
                        !known || redirects > 2
                    }
                    Failure::Retry(msg) => {
                        last = format!("coord at {addr}: {msg}");
                        self.leader_failed(&addr);
                        ambiguous = true;
                        true
                    }
                },
                Err(_) => {
                    last = format!(
                        "coord at {addr} did not answer within {:?}",
                        o.attempt_timeout
                    );
                    self.leader_failed(&addr);
                    ambiguous = true;
                    true
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = Error::Unavailable(format!(
                    "{what}: no coord leader answered within {:?}; last: {last}",
                    o.call_timeout
                ));
                return (Err(e), ambiguous);
            }
            if pause {
                tracing::debug!(what, %last, "coord call retrying");
                tokio::time::sleep(backoff.min(left)).await;
                backoff = (backoff * 2).min(o.backoff_max);
            }
        }
    }
}

impl CoordClient {
    /// Connects to the coords at `addrs` (`host:port`, any of them; the
    /// leader is found by the client) and waits until the local cache holds
    /// the metadata from one of them.
    pub async fn connect(addrs: Vec<String>, options: CoordClientOptions) -> Result<CoordClient> {
        if addrs.is_empty() {
            return Err(Error::invalid("coord addresses", "at least one is needed"));
        }
        let call_timeout = options.call_timeout;
        let conn = Arc::new(Connections {
            options,
            addrs: Mutex::new(addrs),
            leader: Mutex::new(None),
            next: Mutex::new(0),
            channels: Mutex::new(HashMap::new()),
        });
        let (tx, mut cache) = watch::channel(Arc::new(MetaState::default()));
        let synced = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(follow(Arc::clone(&conn), tx, Arc::clone(&synced)));
        let client = CoordClient {
            inner: Arc::new(Inner {
                conn,
                cache: cache.clone(),
                watcher,
            }),
        };
        let first = cache.wait_for(|_| synced.load(Ordering::Acquire));
        match tokio::time::timeout(call_timeout, first).await {
            Ok(Ok(_)) => Ok(client),
            Ok(Err(_)) => Err(Error::Internal("coord watch task ended".into())),
            Err(_) => Err(Error::Unavailable(format!(
                "no coord answered a watch within {call_timeout:?}"
            ))),
        }
    }

    /// The cached metadata (follows the coords' watch streams).
    pub fn state(&self) -> Arc<MetaState> {
        Arc::clone(&self.inner.cache.borrow())
    }

    /// Follows the cached metadata; a new value arrives per newer version seen.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetaState>> {
        self.inner.cache.clone()
    }

    /// The coord this client currently takes for the leader.
    pub fn leader_addr(&self) -> Option<String> {
        self.inner.conn.leader.lock().clone()
    }

    /// Waits (within the call deadline) until the cache holds `version`, so
    /// that lookups after a write see it. A cache that does not catch up in
    /// time is logged, not an error: the write itself succeeded.
    async fn seen(&self, version: u64) {
        let mut cache = self.inner.cache.clone();
        let wait = cache.wait_for(|s| s.version() >= version);
        if tokio::time::timeout(self.inner.conn.options.call_timeout, wait)
            .await
            .is_err()
        {
            tracing::warn!(version, "coord cache did not catch up with a write");
        }
    }

    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnMut(CoordServiceClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.inner.conn.call(what, call).await.0
    }

    /// [`Self::call`] for a write that is not idempotent: also says whether
    /// an earlier attempt may have applied it (see [`Connections::call`]).
    async fn call_write<T, F, Fut>(&self, what: &str, call: F) -> (Result<T>, bool)
    where
        F: FnMut(CoordServiceClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.inner.conn.call(what, call).await
    }

    /// Creates a collection (metadata only; see [`Coord::create_collection`](crate::Coord::create_collection)).
    pub async fn create_collection(
        &self,
        schema: CollectionSchema,
        shards: u32,
        metric: Metric,
        index: Option<IndexSpec>,
    ) -> Result<CollectionMeta> {
        let req = pb::CreateCollectionRequest {
            schema_json: json(&schema, "schema")?,
            shards,
            metric_json: json(&metric, "metric")?,
            index: index.as_ref().map(index_to_pb),
        };
        let (reply, ambiguous) = self
            .call_write("create collection", |mut c| {
                let req = req.clone();
                async move { c.create_collection(req).await }
            })
            .await;
        let reply = match reply {
            // An earlier attempt committed (its answer was lost): the
            // collection exists as asked, so the call succeeded.
            Err(Error::AlreadyExists(what)) if ambiguous => {
                let existing = self.describe_collection(&schema.name).await?;
                if existing.schema == schema
                    && existing.shards == shards
                    && existing.metric == metric
                {
                    self.seen(self.state().version()).await;
                    return Ok(existing);
                }
                return Err(Error::AlreadyExists(what));
            }
            other => other?,
        };
        self.seen(reply.version).await;
        from_json_reply(&reply.collection_json, "collection")
    }

    pub async fn drop_collection(&self, name: &str) -> Result<()> {
        let req = pb::NameRequest { name: name.into() };
        let (reply, ambiguous) = self
            .call_write("drop collection", |mut c| {
                let req = req.clone();
                async move { c.drop_collection(req).await }
            })
            .await;
        match reply {
            Ok(reply) => self.seen(reply.version).await,
            // An earlier attempt dropped it.
            Err(Error::CollectionNotFound(_)) if ambiguous => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// A collection by name or alias, read from the leader (linearizable).
    pub async fn describe_collection(&self, name_or_alias: &str) -> Result<CollectionMeta> {
        let req = pb::NameRequest {
            name: name_or_alias.into(),
        };
        let reply = self
            .call("describe collection", |mut c| {
                let req = req.clone();
                async move { c.describe_collection(req).await }
            })
            .await?;
        from_json_reply(&reply.collection_json, "collection")
    }

    /// All collections, read from the leader (linearizable).
    pub async fn list_collections(&self) -> Result<Vec<CollectionMeta>> {
        let reply = self
            .call("list collections", |mut c| async move {
                c.list_collections(pb::Empty {}).await
            })
            .await?;
        reply
            .collections_json
            .iter()
            .map(|j| from_json_reply(j, "collection"))
            .collect()
    }

    pub async fn set_index(&self, collection: &str, index: IndexSpec) -> Result<()> {
        let req = pb::SetIndexRequest {
            collection: collection.into(),
            index: Some(index_to_pb(&index)),
        };
        let reply = self
            .call("set index", |mut c| {
                let req = req.clone();
                async move { c.set_index(req).await }
            })
            .await?;
        self.seen(reply.version).await;
        Ok(())
    }

    pub async fn drop_index(&self, collection: &str) -> Result<()> {
        let req = pb::NameRequest {
            name: collection.into(),
        };
        let reply = self
            .call("drop index", |mut c| {
                let req = req.clone();
                async move { c.drop_index(req).await }
            })
            .await?;
        self.seen(reply.version).await;
        Ok(())
    }

    /// Loads or releases a collection; `replica_number` (None keeps the
    /// current value) is how many querynodes serve each shard while loaded.
    pub async fn set_loaded(
        &self,
        collection: &str,
        loaded: bool,
        replica_number: Option<u32>,
    ) -> Result<()> {
        if replica_number == Some(0) {
            return Err(Error::invalid(
                "replica_number",
                "must be at least 1 (got 0)",
            ));
        }
        let req = pb::SetLoadedRequest {
            collection: collection.into(),
            loaded,
            replica_number: replica_number.unwrap_or(0),
        };
        let reply = self
            .call("set loaded", |mut c| {
                let req = req.clone();
                async move { c.set_loaded(req).await }
            })
            .await?;
        self.seen(reply.version).await;
        Ok(())
    }

    /// Creates `alias` -> `collection`; returns the alias's epoch.
    pub async fn create_alias(&self, alias: &str, collection: &str) -> Result<u64> {
        let req = pb::AliasRequest {
            alias: alias.into(),
            collection: collection.into(),
        };
        let (reply, ambiguous) = self
            .call_write("create alias", |mut c| {
                let req = req.clone();
                async move { c.create_alias(req).await }
            })
            .await;
        let reply = match reply {
            // An earlier attempt created it, pointing where asked.
            Err(Error::AlreadyExists(what)) if ambiguous => {
                let aliases = self.list_aliases().await?;
                return match aliases.into_iter().find(|(a, _)| a == alias) {
                    Some((_, meta)) if meta.collection == collection => Ok(meta.epoch),
                    _ => Err(Error::AlreadyExists(what)),
                };
            }
            other => other?,
        };
        self.seen(reply.version).await;
        Ok(reply.epoch)
    }

    /// Points `alias` at `collection`; returns the new epoch.
    pub async fn alter_alias(&self, alias: &str, collection: &str) -> Result<u64> {
        let req = pb::AliasRequest {
            alias: alias.into(),
            collection: collection.into(),
        };
        let reply = self
            .call("alter alias", |mut c| {
                let req = req.clone();
                async move { c.alter_alias(req).await }
            })
            .await?;
        self.seen(reply.version).await;
        Ok(reply.epoch)
    }

    pub async fn drop_alias(&self, alias: &str) -> Result<()> {
        let req = pb::NameRequest { name: alias.into() };
        let (reply, ambiguous) = self
            .call_write("drop alias", |mut c| {
                let req = req.clone();
                async move { c.drop_alias(req).await }
            })
            .await;
        match reply {
            Ok(reply) => self.seen(reply.version).await,
            // An earlier attempt dropped it ("alias ... does not exist").
            Err(Error::InvalidArgument { field, .. }) if ambiguous && field == "alias" => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// All aliases, read from the leader (linearizable).
    pub async fn list_aliases(&self) -> Result<Vec<(String, AliasMeta)>> {
        let reply = self
            .call("list aliases", |mut c| async move {
                c.list_aliases(pb::Empty {}).await
            })
            .await?;
        Ok(reply
            .aliases
            .into_iter()
            .map(|a| {
                let meta = serde_json::from_slice(&a.alias_json).unwrap_or(AliasMeta {
                    collection: a.collection,
                    epoch: a.epoch,
                    mirror: None,
                    history: Vec::new(),
                });
                (a.alias, meta)
            })
            .collect())
    }

    /// An admin API alias change, recorded with `actor`; returns the
    /// alias's new epoch. A flip without `expect` is sent as a
    /// compare-and-swap against the target this client knows, so a retry
    /// after an ambiguous failure can never flip twice; if that retry finds
    /// the alias already changed by this very request, it succeeds.
    pub async fn alias_admin(&self, change: AliasChange, actor: Actor) -> Result<u64> {
        let change = match change {
            AliasChange::Flip {
                alias,
                expect: None,
            } => {
                let current = self.state().alias(&alias).map(|a| a.collection.clone());
                AliasChange::Flip {
                    alias,
                    expect: current,
                }
            }
            other => other,
        };
        let req = pb::AliasAdminRequest {
            change_json: json(&change, "change")?,
            actor_json: json(&actor, "actor")?,
        };
        let (reply, ambiguous) = self
            .call_write("alias admin", |mut c| {
                let req = req.clone();
                async move { c.alias_admin(req).await }
            })
            .await;
        let reply = match reply {
            Err(e) if ambiguous => {
                let alias = match &change {
                    AliasChange::Alter { alias, .. }
                    | AliasChange::Mirror { alias, .. }
                    | AliasChange::Flip { alias, .. }
                    | AliasChange::Pin { alias, .. } => alias.clone(),
                };
                let aliases = self.list_aliases().await?;
                let last = aliases
                    .into_iter()
                    .find(|(a, _)| *a == alias)
                    .and_then(|(_, meta)| meta.history.last().cloned());
                return match last {
                    Some(ev) if ev.by == actor.by && ev.reason == actor.reason => Ok(ev.epoch),
                    _ => Err(e),
                };
            }
            other => other?,
        };
        self.seen(reply.version).await;
        Ok(reply.epoch)
    }

    /// Registers sealed segments; returns the shard's WAL checkpoint.
    /// `epoch` must be the shard's current owner epoch, else the call fails
    /// with `Fenced`.
    pub async fn register_segments(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
        epoch: u64,
        segments: Vec<SegmentMeta>,
        wal_checkpoint: u64,
    ) -> Result<u64> {
        let req = pb::RegisterSegmentsRequest {
            collection_id,
            shard,
            segments: segments.iter().map(segment_to_pb).collect(),
            wal_checkpoint,
            epoch,
        };
        let reply = self
            .call("register segments", |mut c| {
                let req = req.clone();
                async move { c.register_segments(req).await }
            })
            .await?;
        Ok(reply.wal_checkpoint)
    }

    /// A shard's segments and WAL checkpoint, read from the leader (linearizable).
    pub async fn segments(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
    ) -> Result<(Vec<SegmentMeta>, u64)> {
        let req = pb::ShardRequest {
            collection_id,
            shard,
        };
        let reply = self
            .call("segments", |mut c| async move { c.segments(req).await })
            .await?;
        let segments = reply.segments.iter().map(segment_from_pb).collect();
        Ok((segments, reply.wal_checkpoint))
    }

    /// Makes `node_id` the shard's owner; returns its fencing epoch.
    pub async fn acquire_shard(
        &self,
        collection_id: CollectionId,
        shard: ShardIndex,
        node_id: u64,
    ) -> Result<u64> {
        let req = pb::AcquireShardRequest {
            collection_id,
            shard,
            node_id,
        };
        let reply = self
            .call("acquire shard", |mut c| async move {
                c.acquire_shard(req).await
            })
            .await?;
        Ok(reply.epoch)
    }

    /// Reserves `count` ids that are never handed out again.
    pub async fn allocate_ids(&self, count: u64) -> Result<Range<u64>> {
        let req = pb::AllocateIdsRequest { count };
        let reply = self
            .call(
                "allocate ids",
                |mut c| async move { c.allocate_ids(req).await },
            )
            .await?;
        Ok(reply.first..reply.first + reply.count)
    }

    /// The cluster as the coord at `addr` sees it (one attempt, no retry).
    pub async fn status_of(&self, addr: &str) -> Result<ClusterStatus> {
        let mut client = self.inner.conn.client(addr)?;
        let timeout = self.inner.conn.options.attempt_timeout;
        let reply = tokio::time::timeout(timeout, client.cluster_status(pb::Empty {}))
            .await
            .map_err(|_| Error::DeadlineExceeded(format!("coord at {addr}: cluster status")))?
            .map_err(|s| match classify(&s) {
                Failure::Final(e) => e,
                Failure::Retry(m) => Error::Unavailable(format!("coord at {addr}: {m}")),
                Failure::Redirect { .. } => Error::Internal("unexpected redirect".into()),
            })?
            .into_inner();
        let role = match reply.role.as_str() {
            "leader" => Role::Leader,
            "follower" => Role::Follower,
            "candidate" => Role::Candidate,
            "learner" => Role::Learner,
            _ => Role::Shutdown,
        };
        Ok(ClusterStatus {
            node_id: reply.node_id,
            role,
            leader: reply.leader_id,
            leader_addr: Some(reply.leader_addr).filter(|a| !a.is_empty()),
            members: reply.members.into_iter().map(|m| (m.id, m.addr)).collect(),
            term: reply.term,
            last_applied: reply.last_applied,
            meta_version: reply.meta_version,
        })
    }
}

fn json<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::invalid(what, format!("cannot encode: {e}")))
}

/// The watch task: follows one coord's `Watch` stream into the cache; when
/// it breaks, resumes from the next coord.
async fn follow(
    conn: Arc<Connections>,
    cache: watch::Sender<Arc<MetaState>>,
    synced: Arc<AtomicBool>,
) {
    let o = conn.options.clone();
    let mut backoff = o.backoff_min;
    loop {
        let addr = conn.pick();
        let after = cache.borrow().version();
        let opened = match conn.client(&addr) {
            Ok(mut client) => tokio::time::timeout(
                o.attempt_timeout,
                client.watch(pb::WatchRequest {
                    after_version: after,
                }),
            )
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|s| s.message().to_string())),
            Err(e) => Err(e.to_string()),
        };
        match opened {
            Ok(reply) => {
                let mut stream = reply.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(snapshot)) => {
                            backoff = o.backoff_min;
                            apply(&cache, &synced, &snapshot);
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(%addr, %status, "coord watch stream broke");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "coord watch failed"),
        }
        // Go round the coords (the leader guess first if it changed).
        conn.leader_failed(&addr);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(o.backoff_max);
    }
}

/// Puts a streamed state in the cache unless the cache is newer.
fn apply(cache: &watch::Sender<Arc<MetaState>>, synced: &AtomicBool, snapshot: &pb::MetaSnapshot) {
    let state: MetaState = match serde_json::from_slice(&snapshot.state_json) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(node = snapshot.node_id, error = %e, "bad metadata from coord");
            return;
        }
    };
    let first = !synced.load(Ordering::Acquire);
    if first || state.version() > cache.borrow().version() {
        synced.store(true, Ordering::Release);
        cache.send_replace(Arc::new(state));
    }
}
