//! The shard stream under network faults between the querynode and the
//! datanode: a cut connection and a frozen peer both end the stream, and the
//! querynode resubscribes and catches up.

mod support;

use std::sync::atomic::Ordering;

use quiver_api::{DataClient, QueryClient, WriteOp};
use quiver_rpc::ClientConfig;
use quiver_test_util::wait_for;
use support::{Cluster, Options, SHARD, WAIT, batch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_ends_the_stream_and_the_querynode_resubscribes() {
    let c = Cluster::start_with(Options {
        relay: true,
        ..Options::default()
    })
    .await;
    c.data
        .write(SHARD, WriteOp::Upsert(batch(&[1, 2])))
        .await
        .expect("write");
    let relay = c.relay.as_ref().expect("relay");
    relay.cut();
    wait_for(WAIT, "the querynode to resubscribe", async || {
        c.subscribes.load(Ordering::SeqCst) >= 2
    })
    .await
    .expect("resubscribed");
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&[3])))
        .await
        .expect("write");
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 3);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_datanode_is_dropped_by_keepalive_and_followed_again() {
    let c = Cluster::start_with(Options {
        relay: true,
        feed: ClientConfig {
            keepalive_interval_ms: 200,
            keepalive_timeout_ms: 200,
            subscribe_timeout_ms: 1_000,
            connect_timeout_ms: 500,
            ..ClientConfig::default()
        },
    })
    .await;
    let relay = c.relay.as_ref().expect("relay");
    relay.pause(true);
    // Writes keep going to the datanode while its stream to the querynode is stuck.
    let ts = c
        .data
        .write(SHARD, WriteOp::Upsert(batch(&[1, 2, 3])))
        .await
        .expect("write");
    wait_for(
        WAIT,
        "the querynode to drop the silent connection",
        async || relay.closed.load(Ordering::SeqCst) >= 1,
    )
    .await
    .expect("the connection dropped");
    assert_eq!(c.subscribes.load(Ordering::SeqCst), 1);
    relay.pause(false);
    wait_for(WAIT, "the querynode to resubscribe", async || {
        c.subscribes.load(Ordering::SeqCst) >= 2
    })
    .await
    .expect("resubscribed");
    assert_eq!(c.query.count(SHARD, ts, None).await.expect("count"), 3);
    c.stop().await;
}
