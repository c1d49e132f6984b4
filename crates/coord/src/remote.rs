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
//! Every metadata change is one `Propose` carrying a request id (this
//! client's random id and a sequence number): a proposal whose answer was
//! lost (the leader died after committing it) is retried with the same id,
//! and the state machine answers it with its first reply instead of
//! applying it again — no skipped ids or epochs, no double flips.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_common::{Error, Result};
use quiver_metrics::trace::{Propagate, Traced};
use quiver_proto::coord as pb;
use quiver_proto::coord::coord_service_client::CoordServiceClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

mod nodes;

pub use nodes::route_of;

use crate::command::{MetaCommand, MetaResponse, RequestId};
use crate::coord::{ClusterStatus, NodeHealth, Role};
use crate::meta::{CoordApi, MirrorHealth, Proposed};
use crate::raft::MAX_MESSAGE_BYTES;
use crate::state::{MetaState, NodeRole, decode_state};
use crate::wire::{Failure, classify, from_json_reply, health_from_pb, role_to_pb};

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
    /// Once this client has seen a leader, a call that finds no coord naming
    /// a leader for this long fails with "no coord quorum" instead of
    /// waiting out `call_timeout` (longer than an election takes).
    pub no_quorum_after: Duration,
    /// How this process reaches coords, by id, when the addresses coords
    /// advertise (their Raft membership) are not the ones to dial from here
    /// (NAT, proxies, fault-injection links): a redirect to a leader listed
    /// here goes to this address instead.
    pub coord_addrs: std::collections::BTreeMap<u64, String>,
    /// Cluster-internal mutual TLS: this process's identity and the
    /// cluster CA (coords then refuse a client without it).
    pub tls: Option<quiver_rpc::ClusterTls>,
}

/// A [`CoordClientOptions::attempt_timeout`] by default: how long a call
/// may be held by one coord that does not answer (a stopped process) before
/// the client asks the next one.
pub(crate) const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

impl Default for CoordClientOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(15),
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            connect_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            no_quorum_after: Duration::from_secs(2),
            coord_addrs: std::collections::BTreeMap::new(),
            tls: None,
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
    /// This client's part of its request ids (random), and the next seq.
    client_id: u64,
    seq: AtomicU64,
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
    /// A leader was known once (the cluster had formed).
    ever_led: AtomicBool,
    /// A coord's watch stream is open (the cache follows the metadata).
    watching: AtomicBool,
    /// Next address to try when the leader is unknown.
    next: Mutex<usize>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Connections {
    fn client(&self, addr: &str) -> Result<CoordServiceClient<Traced<Channel>>> {
        let channel = {
            let mut channels = self.channels.lock();
            match channels.get(addr) {
                Some(c) => c.clone(),
                None => {
                    let c = quiver_rpc::tls::endpoint(addr, self.options.tls.as_ref())
                        .map_err(|e| Error::invalid("coord address", e.to_string()))?
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
        Ok(CoordServiceClient::with_interceptor(channel, Propagate)
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
            self.ever_led.store(true, Ordering::Relaxed);
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
    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnMut(CoordServiceClient<Traced<Channel>>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_with(what, self.options.attempt_timeout, call)
            .await
    }

    /// [`Connections::call`] with attempts of up to `attempt_timeout` (the
    /// call's deadline grows to cover at least one such attempt).
    async fn call_with<T, F, Fut>(
        &self,
        what: &str,
        attempt_timeout: Duration,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut(CoordServiceClient<Traced<Channel>>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let o = &self.options;
        let deadline = Instant::now() + o.call_timeout.max(attempt_timeout);
        let mut backoff = o.backoff_min;
        let mut redirects = 0u32;
        let mut last: String;
        // Since when no coord has named a leader (or answered), and which
        // coords were asked since then.
        let mut leaderless_since = Instant::now();
        let mut asked: std::collections::HashSet<String> = Default::default();
        // Coords that failed to answer during this call: a leader named by
        // another coord that is one of them is not a leader found (a
        // follower names a dead leader until its own election timeout).
        let mut failed: std::collections::HashSet<String> = Default::default();
        loop {
            let addr = self.pick();
            let left = deadline.saturating_duration_since(Instant::now());
            let client = match self.client(&addr) {
                Ok(c) => c,
                Err(e) => return Err(e),
            };
            let attempt = tokio::time::timeout(left.min(attempt_timeout), call(client)).await;
            let pause = match attempt {
                Ok(Ok(reply)) => {
                    self.set_leader(Some(addr));
                    return Ok(reply.into_inner());
                }
                Ok(Err(status)) => match classify(&status) {
                    Failure::Final(e) => return Err(e),
                    Failure::Redirect { leader, addr: to } => {
                        last = format!("coord at {addr} is not the leader (leader: {leader:?})");
                        redirects += 1;
                        let to = leader
                            .and_then(|id| self.options.coord_addrs.get(&id).cloned())
                            .or(to);
                        let known = to.as_ref().is_some_and(|a| !failed.contains(a));
                        if known {
                            leaderless_since = Instant::now();
                            asked.clear();
                        }
                        self.set_leader(to);
                        // Follow a named leader at once, unless redirects
                        // go round in circles during an election.
                        !known || redirects > 2
                    }
                    Failure::Retry(msg) => {
                        last = format!("coord at {addr}: {msg}");
                        self.leader_failed(&addr);
                        failed.insert(addr.clone());
                        true
                    }
                },
                Err(_) => {
                    last = format!("coord at {addr} did not answer within {attempt_timeout:?}");
                    self.leader_failed(&addr);
                    failed.insert(addr.clone());
                    true
                }
            };
            asked.insert(addr);
            // No quorum: a leader was known once, and for `no_quorum_after`
            // every coord was asked (a stopped one costs a whole attempt, so
            // the others get their turn) and none named a leader.
            if self.ever_led.load(Ordering::Relaxed)
                && leaderless_since.elapsed() >= o.no_quorum_after
                && self.addrs.lock().iter().all(|a| asked.contains(a))
            {
                return Err(Error::Unavailable(format!(
                    "{what}: no coord quorum: no coord has had a leader for {:?} (are most coords down?); last: {last}",
                    o.no_quorum_after
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let e = Error::Unavailable(format!(
                    "{what}: no coord leader answered within {:?}; last: {last}",
                    o.call_timeout
                ));
                return Err(e);
            }
            if pause {
                tracing::debug!(what, %last, "coord call retrying");
                // Wake up when the leaderless window ends, not a backoff later.
                let mut nap = backoff.min(left);
                let window_left = o.no_quorum_after.saturating_sub(leaderless_since.elapsed());
                if self.ever_led.load(Ordering::Relaxed) && !window_left.is_zero() {
                    nap = nap.min(window_left);
                }
                tokio::time::sleep(nap).await;
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
            ever_led: AtomicBool::new(false),
            watching: AtomicBool::new(false),
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
                client_id: random_client_id(),
                seq: AtomicU64::new(1),
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

    /// Whether the cache follows a coord's watch stream now (false while
    /// no coord answers: the cache is then what was last seen).
    pub fn watching(&self) -> bool {
        self.inner.conn.watching.load(Ordering::Relaxed)
    }

    /// The coord this client currently takes for the leader.
    pub fn leader_addr(&self) -> Option<String> {
        self.inner.conn.leader.lock().clone()
    }

    /// Waits (within the call deadline) until the cache holds `version`, so
    /// that lookups after a write see it. A cache that does not catch up in
    /// time is logged, not an error: the write itself succeeded.
    async fn seen(&self, version: u64) {
        let wait = self.inner.conn.options.call_timeout;
        crate::meta::cache_reaches(self.inner.cache.clone(), version, wait).await;
    }

    async fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnMut(CoordServiceClient<Traced<Channel>>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        self.inner.conn.call(what, call).await
    }

    /// A request id for one proposal (reused by its retries).
    fn next_request(&self) -> RequestId {
        RequestId {
            client: self.inner.client_id,
            seq: self.inner.seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Adds coord `id` at `addr` to the Raft group (`quiver coord add ID
    /// ADDR`; [`crate::Coord::add_member`]); or, with `remove`, removes it.
    /// The call's deadline covers the catch-up.
    pub async fn change_membership(
        &self,
        id: u64,
        addr: &str,
        remove: bool,
        catch_up: Duration,
    ) -> Result<crate::Members> {
        let req = pb::MembershipChange {
            id,
            addr: addr.to_string(),
            remove,
            catch_up_ms: catch_up.as_millis() as u64,
        };
        let conn = &self.inner.conn;
        let what = if remove { "remove coord" } else { "add coord" };
        // One attempt may take the whole catch-up: give it that long.
        let attempt = catch_up + conn.options.attempt_timeout;
        let reply = conn
            .call_with(what, attempt, |mut c| {
                let req = req.clone();
                async move { c.change_membership(req).await }
            })
            .await?;
        let map = |m: Vec<pb::Member>| m.into_iter().map(|m| (m.id, m.addr)).collect();
        Ok(crate::Members {
            voters: map(reply.voters),
            learners: map(reply.learners),
        })
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
            standing: reply.standing,
        })
    }
}

/// A client id that no other client picks (in practice): the process's
/// random hasher keys, the time and the process id, hashed.
fn random_client_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    h.finish().max(1)
}

#[async_trait]
impl CoordApi for CoordClient {
    async fn propose(&self, cmd: MetaCommand) -> Result<Proposed> {
        let what = cmd.name();
        let request = self.next_request();
        let req = pb::ProposeRequest {
            command_json: json(&cmd, "command")?,
            client_id: request.client,
            seq: request.seq,
        };
        let reply = self
            .call(what, |mut c| {
                let req = req.clone();
                async move { c.propose(req).await }
            })
            .await?;
        let response: MetaResponse = from_json_reply(&reply.response_json, "response")?;
        self.seen(reply.version).await;
        Ok(Proposed {
            response,
            version: reply.version,
        })
    }

    async fn read(&self) -> Result<Arc<MetaState>> {
        let reply = self
            .call("read metadata", |mut c| async move {
                c.read(pb::Empty {}).await
            })
            .await?;
        Ok(Arc::new(from_json_reply(&reply.state_json, "metadata")?))
    }

    fn state(&self) -> Arc<MetaState> {
        CoordClient::state(self)
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetaState>> {
        CoordClient::subscribe(self)
    }

    async fn heartbeat(
        &self,
        id: u64,
        role: NodeRole,
        addr: &str,
        report: &quiver_api::NodeReport,
    ) -> Result<()> {
        if addr.is_empty() {
            return Err(Error::invalid("addr", "a node needs a host:port address"));
        }
        let req = pb::HeartbeatRequest {
            id,
            role: role_to_pb(role) as i32,
            addr: addr.to_string(),
            mirror_lag_ms: report.mirror_lag_ms.clone().into_iter().collect(),
            storage: if report.storage.is_empty() {
                Vec::new()
            } else {
                json(&report.storage, "storage")?
            },
            serving: (report.serving.iter())
                .map(|(c, s)| pb::ServingShard {
                    collection_id: *c,
                    shard: *s,
                })
                .collect(),
            resident_bytes: report.resident_bytes,
            memory_limit_bytes: report.memory_limit_bytes,
        };
        self.call("heartbeat", |mut c| {
            let req = req.clone();
            async move { c.heartbeat(req).await }
        })
        .await?;
        Ok(())
    }

    async fn node_health(&self) -> Result<Vec<NodeHealth>> {
        self.node_health_reply()
            .await?
            .nodes
            .iter()
            .map(health_from_pb)
            .collect()
    }

    async fn mirror_health(&self) -> Result<MirrorHealth> {
        let reply = self.node_health_reply().await?;
        Ok(MirrorHealth {
            lag_ms: reply.mirror_lag_ms.into_iter().collect(),
            divergent_rows: reply.divergent_rows.into_iter().collect(),
        })
    }

    async fn storage(&self) -> Result<Vec<quiver_api::ShardStorage>> {
        let reply = self.node_health_reply().await?;
        if reply.storage.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::from_slice(&reply.storage)
            .map_err(|e| Error::Internal(format!("coord's shard storage report: {e}")))
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
                conn.watching.store(true, Ordering::Relaxed);
                loop {
                    match stream.message().await {
                        Ok(Some(snapshot)) => {
                            backoff = o.backoff_min;
                            apply(&cache, &synced, &snapshot);
                            // Committed metadata: the cluster has had a
                            // leader (a fresh client fails fast too when
                            // the quorum is gone).
                            if cache.borrow().version() > 0 {
                                conn.ever_led.store(true, Ordering::Relaxed);
                            }
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
        conn.watching.store(false, Ordering::Relaxed);
        // Go round the coords (the leader guess first if it changed).
        conn.leader_failed(&addr);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(o.backoff_max);
    }
}

/// Puts a streamed state in the cache unless the cache is newer.
fn apply(cache: &watch::Sender<Arc<MetaState>>, synced: &AtomicBool, snapshot: &pb::MetaSnapshot) {
    let state: MetaState = match decode_state(&snapshot.state_json, "") {
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
