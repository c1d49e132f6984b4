//! Three coords over gRPC on loopback: election, redirects from followers,
//! leader failover with a client that keeps working, a restarted node that
//! catches up, and a leader cut off from its peers that cannot commit.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use parking_lot::Mutex;
use quiver_api::CatalogClient;
use quiver_common::{CollectionSchema, Metric};
use quiver_coord::{Catalog, CoordClient, CoordError, MetaCommand, MetaOps, Role};
use quiver_proto::coord as pb;
use quiver_proto::coord::coord_service_client::CoordServiceClient;
use quiver_test_util::wait_for;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_coords_elect_a_leader_and_followers_redirect() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await?;
    let follower = [1, 2, 3]
        .into_iter()
        .find(|id| *id != leader)
        .context("a follower")?;

    // A follower refuses a write and names the leader.
    let mut raw = CoordServiceClient::connect(format!("http://{}", cluster.addr(follower))).await?;
    let status = raw
        .propose(propose(&MetaCommand::AllocateIds { count: 1 })?)
        .await
        .expect_err("a follower does not write");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    let named = status
        .metadata()
        .get("x-quiver-leader-addr")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(named, Some(cluster.addr(leader)));
    let err = cluster
        .coord(follower)
        .propose(MetaCommand::AllocateIds { count: 1 }, None)
        .await
        .expect_err("follower");
    assert!(
        matches!(err, CoordError::NotLeader { leader: Some(l), .. } if l == leader),
        "{err}"
    );

    // A client given only the follower follows the leader.
    let client = CoordClient::connect(vec![cluster.addr(follower)], client_options()).await?;
    let id = create(&client, "feed_a").await?;
    client.create_alias("feed", "feed_a").await?;
    // (Where it went: the leader, unless a re-election under load moved it.)
    assert!(client.leader_addr().is_some());
    // The catalog's lookups (from the client's cache) see the writes at once.
    let info = CatalogClient::collection(&Catalog::new(Arc::new(client.clone())), "feed")
        .context("alias in the cache")?;
    assert_eq!(info.id, id);
    assert_eq!(
        CatalogClient::aliases(&Catalog::new(Arc::new(client.clone()))),
        vec![("feed".to_string(), "feed_a".to_string())]
    );
    // Linearizable reads go to the leader too.
    assert_eq!(client.describe_collection("feed").await?.name, "feed_a");
    let err = client
        .create_collection(CollectionSchema::simple("feed_a", 4), 1, Metric::L2, None)
        .await
        .expect_err("duplicate");
    assert_eq!(err.kind(), quiver_common::ErrorKind::AlreadyExists);

    // Every node applies the writes.
    for id in [1, 2, 3] {
        let coord = cluster.coord(id).clone();
        wait_for(Duration::from_secs(5), "replication", || {
            let coord = coord.clone();
            async move { coord.collection("feed").is_some() }
        })
        .await?;
    }
    let status = client.status_of(&cluster.addr(follower)).await?;
    assert_eq!(status.role, Role::Follower);
    assert_eq!(status.leader, Some(leader));
    assert_eq!(status.members.len(), 3);
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failover_keeps_commits_and_the_client_keeps_working() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let old = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await?;
    // The leader first: the client's watch stream starts on the coord that dies.
    let mut addrs = vec![cluster.addr(old)];
    addrs.extend(
        cluster
            .addrs()
            .into_iter()
            .filter(|a| *a != cluster.addr(old)),
    );
    let client = CoordClient::connect(addrs, client_options()).await?;
    let a = create(&client, "feed_a").await?;
    client.create_alias("feed", "feed_a").await?;
    client
        .register_segments(a, 0, 0, vec![seg(1, 10), seg(2, 20)], 20)
        .await?;
    assert_eq!(client.acquire_shard(a, 0, 7).await?, 1);
    let ids = client.allocate_ids(100).await?;
    let before = cluster.coord(old).state();

    let killed_at = Instant::now();
    cluster.kill(old).await?;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != old).collect();
    let new = cluster.wait_leader(&rest, Duration::from_secs(3)).await?;
    let failover = killed_at.elapsed();
    assert!(
        failover < Duration::from_secs(3),
        "failover took {failover:?}"
    );
    assert_ne!(new, old);

    // Every committed change survived.
    let state = cluster.coord(new).read_state().await?;
    assert_eq!(state.collection("feed").map(|c| c.id), Some(a));
    assert_eq!(state.segments(a, 0).wal_checkpoint, 20);
    assert_eq!(state.shard_owner(a, 0).map(|o| o.epoch), Some(1));
    assert!(state.next_id() >= ids.end);
    assert!(state.version() >= before.version());

    // The client keeps working: no error reaches the caller.
    let b = create(&client, "feed_b").await?;
    client.alter_alias("feed", "feed_b").await?;
    let more = client.allocate_ids(10).await?;
    assert!(more.start >= ids.end, "ids are never handed out twice");
    let (segments, checkpoint) = client.shard_segments(a, 0).await?;
    assert_eq!((segments.len(), checkpoint), (2, 20));
    assert_eq!(client.acquire_shard(a, 0, 8).await?, 2);
    assert_ne!(client.leader_addr(), Some(cluster.addr(old)));
    // Its cache followed onto another coord after its stream broke.
    assert_eq!(
        CatalogClient::collection(&Catalog::new(Arc::new(client.clone())), "feed").map(|c| c.id),
        Some(b)
    );

    // The old leader rejoins from its directory and catches up.
    cluster.restart(old).await?;
    let target = cluster.coord(new).state().version();
    let rejoined = cluster.coord(old).clone();
    wait_for(
        Duration::from_secs(10),
        "the old leader to catch up",
        || {
            let rejoined = rejoined.clone();
            async move { rejoined.state().version() >= target }
        },
    )
    .await?;
    let caught_up = cluster.coord(old).state();
    assert_eq!(caught_up.collection("feed").map(|c| c.id), Some(b));
    assert_eq!(caught_up.segments(a, 0).wal_checkpoint, 20);
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await?;
    // And follows new writes.
    create(&client, "feed_c").await?;
    for id in [1, 2, 3] {
        let coord = cluster.coord(id).clone();
        wait_for(Duration::from_secs(5), "feed_c everywhere", || {
            let coord = coord.clone();
            async move { coord.collection("feed_c").is_some() }
        })
        .await?;
    }
    assert_eq!(cluster.coord(leader).status().role, Role::Leader);
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_cut_off_from_its_peers_cannot_commit() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let stale = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    create(&client, "before").await?;
    assert_eq!(client.leader_addr(), Some(cluster.addr(stale)));
    // Every coord's identity is registered before the cut: a coord still
    // joining does not vote, and the other two would then have no quorum.
    for id in [1, 2, 3] {
        let c = cluster.coord(id).clone();
        wait_for(
            Duration::from_secs(10),
            &format!("coord {id} to stand as a voter"),
            || {
                let c = c.clone();
                async move { c.status().standing == "voter" }
            },
        )
        .await?;
    }

    cluster.faults.cut.lock().insert(stale);
    // Writes on the cut-off leader fail (directly and over gRPC): it cannot
    // reach a quorum, whatever it believes.
    let direct = cluster
        .coord(stale)
        .create_collection(CollectionSchema::simple("stale", 4), 1, Metric::L2, None)
        .await;
    ensure!(direct.is_err(), "a cut-off leader committed a write");
    let mut raw = CoordServiceClient::connect(format!("http://{}", cluster.addr(stale))).await?;
    let over_grpc = raw
        .propose(propose(&MetaCommand::AllocateIds { count: 5 })?)
        .await;
    ensure!(over_grpc.is_err(), "a cut-off leader allocated ids");
    // Linearizable reads on it fail too.
    ensure!(cluster.coord(stale).read_state().await.is_err());

    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != stale).collect();
    cluster.wait_leader(&rest, Duration::from_secs(3)).await?;
    // The client's leader guess is the stale one: it times out there and
    // moves on without an error.
    create(&client, "during").await?;
    assert_ne!(client.leader_addr(), Some(cluster.addr(stale)));

    // Healed: the stale leader steps down, drops its uncommitted entries and
    // catches up.
    let stale_term = cluster.coord(stale).status().term;
    cluster.faults.cut.lock().clear();
    let old = cluster.coord(stale).clone();
    wait_for(
        Duration::from_secs(10),
        "the stale leader to catch up",
        || {
            let old = old.clone();
            async move { old.collection("during").is_some() }
        },
    )
    .await?;
    // It no longer leads in the term it was cut off in (under load it may
    // legitimately win a later election). Its status comes from Raft's
    // metrics, published after the state it applied: wait for them.
    let stepped_down = wait_for(
        Duration::from_secs(10),
        "the stale leader's status to leave its old term",
        || {
            let old = old.clone();
            async move {
                let now = old.status();
                now.role != Role::Leader || now.term > stale_term
            }
        },
    )
    .await;
    assert!(
        stepped_down.is_ok(),
        "the cut-off leader still leads in its old term {stale_term}: {:?}",
        cluster.coord(stale).status()
    );
    for id in [1, 2, 3] {
        let state = cluster.coord(id).state();
        assert!(state.collection("stale").is_none(), "node {id} has it");
        assert!(state.collection("before").is_some());
    }
    cluster.shutdown().await
}

/// A coord front that forwards every call to `leader`, except that the
/// first proposal of each kind of command is applied by the leader but
/// answered with UNAVAILABLE (the answer "was lost").
struct LossyFront {
    leader: CoordServiceClient<tonic::transport::Channel>,
    lost: Mutex<HashSet<&'static str>>,
}

impl LossyFront {
    fn client(&self) -> CoordServiceClient<tonic::transport::Channel> {
        self.leader.clone()
    }

    /// Whether this call's answer is to be lost (the first of its kind).
    fn lose(&self, what: &'static str) -> bool {
        self.lost.lock().insert(what)
    }
}

type Reply<T> = std::result::Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl pb::coord_service_server::CoordService for LossyFront {
    async fn propose(
        &self,
        request: tonic::Request<pb::ProposeRequest>,
    ) -> Reply<pb::ProposeReply> {
        let req = request.into_inner();
        let cmd: quiver_coord::MetaCommand = serde_json::from_slice(&req.command_json)
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let reply = self.client().propose(req).await?;
        if self.lose(cmd.name()) {
            return Err(tonic::Status::unavailable("answer lost"));
        }
        Ok(reply)
    }

    async fn read(&self, request: tonic::Request<pb::Empty>) -> Reply<pb::MetaSnapshot> {
        self.client().read(request.into_inner()).await
    }

    async fn cluster_status(
        &self,
        request: tonic::Request<pb::Empty>,
    ) -> Reply<pb::ClusterStatusReply> {
        self.client().cluster_status(request.into_inner()).await
    }

    async fn heartbeat(
        &self,
        request: tonic::Request<pb::HeartbeatRequest>,
    ) -> Reply<pb::WriteReply> {
        self.client().heartbeat(request.into_inner()).await
    }

    async fn node_health(&self, request: tonic::Request<pb::Empty>) -> Reply<pb::NodeHealthReply> {
        self.client().node_health(request.into_inner()).await
    }

    async fn change_membership(
        &self,
        request: tonic::Request<pb::MembershipChange>,
    ) -> Reply<pb::MembersReply> {
        self.client().change_membership(request.into_inner()).await
    }

    type WatchStream = std::pin::Pin<
        Box<
            dyn futures::Stream<Item = std::result::Result<pb::MetaSnapshot, tonic::Status>> + Send,
        >,
    >;

    async fn watch(
        &self,
        request: tonic::Request<pb::WatchRequest>,
    ) -> std::result::Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        let stream = self
            .client()
            .watch(request.into_inner())
            .await?
            .into_inner();
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_create_whose_answer_was_lost_succeeds() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await?;
    let front = LossyFront {
        leader: CoordServiceClient::connect(format!("http://{}", cluster.addr(leader))).await?,
        lost: Mutex::new(HashSet::new()),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let front_addr = listener.local_addr()?.to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::coord_service_server::CoordServiceServer::new(front))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async move {
                    let _ = stopped.await;
                },
            ),
    );
    let client = CoordClient::connect(vec![front_addr], client_options()).await?;
    // Each first proposal of a kind is applied by the leader, its answer
    // lost, and retried with the same request id: it applies once and the
    // retry gets the first answer.
    let meta = client
        .create_collection(CollectionSchema::simple("once", 4), 1, Metric::L2, None)
        .await?;
    assert_eq!(meta.name, "once");
    let epoch = client.create_alias("once_alias", "once").await?;
    assert_eq!(
        cluster
            .coord(leader)
            .state()
            .alias("once_alias")
            .map(|a| a.epoch),
        Some(epoch)
    );
    // Ids and epochs are not skipped by a retry: the next call continues
    // right after the first one's answer.
    let next_id = cluster.coord(leader).state().next_id();
    let ids = client.allocate_ids(10).await?;
    assert_eq!(ids, next_id..next_id + 10);
    assert_eq!(cluster.coord(leader).state().next_id(), next_id + 10);
    assert_eq!(client.acquire_shard(meta.id, 0, 7).await?, 1);
    assert_eq!(client.acquire_shard(meta.id, 0, 8).await?, 2);
    // A flip whose answer was lost flips once.
    let flip = quiver_coord::AliasChange::Alter {
        alias: "once_alias".into(),
        collection: "once".into(),
        expect: None,
    };
    let before = client.list_aliases().await?;
    let history = |aliases: &[(String, quiver_coord::AliasMeta)]| {
        aliases
            .iter()
            .find(|(a, _)| a == "once_alias")
            .map_or(0, |(_, m)| m.history.len())
    };
    client
        .alias_admin(flip, quiver_coord::Actor::new("test", "lost answer"))
        .await?;
    assert_eq!(history(&client.list_aliases().await?), history(&before) + 1);
    // A real conflict still fails.
    let err = client
        .create_collection(CollectionSchema::simple("once", 4), 1, Metric::L2, None)
        .await
        .expect_err("exists");
    assert_eq!(err.kind(), quiver_common::ErrorKind::AlreadyExists);
    client.drop_alias("once_alias").await?;
    client.drop_collection("once").await?;
    let state = cluster.coord(leader).read_state().await?;
    assert!(state.collection("once").is_none());
    // The front forwards a watch stream that only ends with the client.
    drop(client);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .context("the front server did not stop")???;
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_quorum_writes_fail_fast_with_a_clear_status() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let leader = cluster
        .wait_leader(&[1, 2, 3], Duration::from_secs(10))
        .await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    create(&client, "before").await?;
    for id in [1, 2, 3].into_iter().filter(|id| *id != leader) {
        cluster.kill(id).await?;
    }
    // The leader notices it has not heard from a quorum and refuses writes
    // with its own error (not a write timeout).
    let coord = cluster.coord(leader).clone();
    wait_for(
        Duration::from_secs(15),
        "the leader to refuse writes for lack of a quorum",
        async || {
            matches!(
                coord
                    .propose(MetaCommand::AllocateIds { count: 1 }, None)
                    .await,
                Err(CoordError::NoQuorum(_))
            )
        },
    )
    .await?;
    // A client gives up once no coord has had a leader for
    // `no_quorum_after`, saying why, instead of waiting out its deadline.
    let e = create(&client, "during")
        .await
        .expect_err("no quorum, no write");
    let msg = format!("{e:#}");
    ensure!(msg.contains("no coord quorum"), "{msg}");
    ensure!(coord.collection("during").is_none());
    // So does a client that connects only now and never saw a leader answer.
    let fresh = CoordClient::connect(cluster.addrs(), client_options()).await?;
    let e = create(&fresh, "late")
        .await
        .expect_err("no quorum, no write");
    let msg = format!("{e:#}");
    ensure!(msg.contains("no coord quorum"), "a fresh client: {msg}");
    cluster.shutdown().await
}
