//! Coord identity: a coord whose directory was wiped never votes until it
//! is re-admitted, catches up meanwhile, and votes again after
//! `admit_coord`; nothing committed is lost.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use quiver_coord::{CoordClient, MetaOps, Standing};
use quiver_proto::coord as pb;
use quiver_proto::coord::raft_service_client::RaftServiceClient;
use quiver_test_util::wait_for;

use common::*;

const WAIT: Duration = Duration::from_secs(20);

/// The `identity.json` of a coord directory.
fn identity(cluster: &Cluster, id: u64) -> Result<serde_json::Value> {
    let bytes = std::fs::read(cluster.dirs[&id].join("identity.json"))?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// A vote request for `term` from candidate `from`, sent with `cluster_id`.
async fn ask_vote(addr: &str, term: u64, from: u64, cluster_id: &str) -> Result<tonic::Status> {
    let vote = serde_json::json!({
        "vote": {"leader_id": {"term": term, "node_id": from}, "committed": false},
        "last_log_id": {"leader_id": {"term": term, "node_id": from}, "index": 1_000_000}
    });
    let mut req = tonic::Request::new(pb::RaftPayload {
        json: serde_json::to_vec(&vote)?,
    });
    req.metadata_mut()
        .insert("x-quiver-cluster-id", cluster_id.parse()?);
    let mut raft = RaftServiceClient::connect(format!("http://{addr}")).await?;
    match raft.vote(req).await {
        Ok(_) => Ok(tonic::Status::ok("answered")),
        Err(status) => Ok(status),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_coord_does_not_vote_until_it_is_re_admitted() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    create(&client, "before").await?;

    // Every coord registers; they share one cluster id.
    wait_for(WAIT, "every coord votes", || async {
        [1, 2, 3]
            .iter()
            .all(|id| cluster.coord(*id).standing() == Standing::Voter)
    })
    .await?;
    let cluster_id = identity(&cluster, 1)?["cluster_id"]
        .as_str()
        .context("cluster id")?
        .to_string();
    for id in [2, 3] {
        ensure!(identity(&cluster, id)?["cluster_id"] == cluster_id.as_str());
    }

    // Coord 3 loses its directory and comes back empty.
    let old_incarnation = identity(&cluster, 3)?["incarnation"].clone();
    cluster.kill(3).await?;
    std::fs::remove_dir_all(&cluster.dirs[&3])?;
    cluster.restart(3).await?;
    ensure!(identity(&cluster, 3)?["incarnation"] != old_incarnation);
    wait_for(WAIT, "coord 3 knows it is not admitted", || async {
        matches!(cluster.coord(3).standing(), Standing::NotAdmitted { .. })
    })
    .await?;
    let Standing::NotAdmitted { reason } = cluster.coord(3).standing() else {
        anyhow::bail!("coord 3 is admitted again by itself");
    };
    ensure!(reason.contains("quiver coord add 3"), "{reason}");
    ensure!(
        cluster
            .coord(3)
            .status()
            .standing
            .starts_with("not admitted"),
        "status says why"
    );
    // It caught up: what was committed before the wipe is there.
    ensure!(cluster.coord(3).collection("before").is_some());
    // It refuses to vote, even for a candidate with the longest log.
    let refused = ask_vote(&cluster.addr(3), 1_000, 1, &cluster_id).await?;
    ensure!(
        refused.code() == tonic::Code::FailedPrecondition
            && refused.message().contains("does not vote"),
        "{refused:?}"
    );
    // A voter answers the same request (with its own verdict).
    let voter = ask_vote(&cluster.addr(2), 1_000, 1, &cluster_id).await?;
    ensure!(voter.code() != tonic::Code::FailedPrecondition, "{voter:?}");
    // A candidate of another cluster is refused by a voter.
    let other = ask_vote(&cluster.addr(2), 1_000, 1, "another-cluster").await?;
    ensure!(other.message().contains("another-cluster"), "{other:?}");

    // Re-admitted, it registers its new incarnation and votes again.
    client.admit_coord(3).await?;
    wait_for(WAIT, "coord 3 votes again", || async {
        cluster.coord(3).standing() == Standing::Voter
    })
    .await?;
    create(&client, "after").await?;

    // Without the old leader, the cluster elects one with coord 3's vote.
    let leader = cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    cluster.kill(leader).await?;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_leader(&rest, WAIT).await?;
    for name in ["before", "after"] {
        ensure!(
            cluster.coord(new_leader).collection(name).is_some(),
            "{name} lost"
        );
    }
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coord_added_at_runtime_catches_up_votes_and_replaces_an_original() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    cluster.wait_leader(&[1, 2, 3], WAIT).await?;
    let client = CoordClient::connect(cluster.addrs(), client_options()).await?;
    // More entries than `snapshot_every` (50): the log the new coord needs
    // was compacted, so it catches up by snapshot.
    for i in 0..60 {
        create(&client, &format!("c{i}")).await?;
    }

    let addr = cluster.join(4).await?;
    // A joining coord does not form a cluster of its own.
    ensure!(cluster.coord(4).status().leader.is_none());
    let members = client
        .change_membership(4, &addr, false, Duration::from_secs(20))
        .await?;
    ensure!(members.voters.keys().eq([1, 2, 3, 4].iter()), "{members:?}");
    wait_for(WAIT, "coord 4 votes and holds the metadata", || async {
        let c = cluster.coord(4);
        c.standing() == Standing::Voter && c.collection("c0").is_some()
    })
    .await?;
    // Adding it again is a no-op; at another address it is refused.
    let again = client
        .change_membership(4, &addr, false, Duration::from_secs(5))
        .await?;
    ensure!(again == members);
    let moved = client
        .change_membership(4, "127.0.0.1:1", false, Duration::from_secs(5))
        .await
        .err()
        .map(|e| e.to_string());
    ensure!(
        moved
            .as_deref()
            .is_some_and(|e| e.contains("already a voter")),
        "{moved:?}"
    );

    // Remove an original; the cluster goes on with {2, 3, 4}.
    let members = client
        .change_membership(1, "", true, Duration::from_secs(5))
        .await?;
    ensure!(members.voters.keys().eq([2, 3, 4].iter()), "{members:?}");
    cluster.kill(1).await?;
    create(&client, "after").await?;

    // Without the leader, the two left elect one: coord 4's vote counts.
    let leader = cluster.wait_leader(&[2, 3, 4], WAIT).await?;
    cluster.kill(leader).await?;
    let rest: Vec<u64> = [2, 3, 4].into_iter().filter(|id| *id != leader).collect();
    let new_leader = cluster.wait_leader(&rest, WAIT).await?;
    ensure!(cluster.coord(new_leader).collection("after").is_some());
    // With one of the two left down, removing the other is refused: the
    // voters that would stay cannot form a quorum.
    let other = rest
        .iter()
        .copied()
        .find(|id| *id != new_leader)
        .context("other")?;
    let refused = cluster.coord(new_leader).remove_member(other).await.err();
    ensure!(
        refused
            .as_ref()
            .is_some_and(|e| e.to_string().contains("quorum")),
        "{refused:?}"
    );
    cluster.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_calls_of_an_unserved_protocol_are_refused_and_the_previous_one_served()
-> Result<()> {
    use quiver_metrics::protocol::{PROTOCOL, PROTOCOL_HEADER};
    use quiver_proto::coord::coord_service_client::CoordServiceClient;
    let cluster = Cluster::start(1).await?;
    cluster.wait_leader(&[1], WAIT).await?;
    let mut client = CoordServiceClient::connect(format!("http://{}", cluster.addr(1))).await?;
    // No header: a release before versioning (protocol 1), served.
    let status = client.cluster_status(pb::Empty {}).await?.into_inner();
    ensure!(status.protocol == PROTOCOL, "{status:?}");
    // This build's protocol: served.
    let mut req = tonic::Request::new(pb::Empty {});
    req.metadata_mut()
        .insert(PROTOCOL_HEADER, PROTOCOL.to_string().parse()?);
    client.cluster_status(req).await?;
    // A newer protocol than this build speaks: refused, saying what to do.
    let mut req = tonic::Request::new(pb::Empty {});
    req.metadata_mut()
        .insert(PROTOCOL_HEADER, (PROTOCOL + 1).to_string().parse()?);
    let refused = client.cluster_status(req).await.err().context("refused")?;
    ensure!(
        refused.code() == tonic::Code::FailedPrecondition
            && refused.message().contains("upgrade this process"),
        "{refused:?}"
    );
    cluster.shutdown().await
}
