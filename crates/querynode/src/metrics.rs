//! A querynode's metrics (docs/metrics.md): per shard replica, sampled at
//! each scrape — rows by state, sealed segments, and how far the replica's
//! applied timestamp is behind the wall clock — and, as mutations arrive,
//! the delay from a write's timestamp to its being searchable here.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::RwLock;
use quiver_api::ShardId;
use quiver_metrics::{GaugeVec, Histogram, Sampled};

use crate::replica::ShardReplica;

static ROWS: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_querynode_rows",
        "Rows of a shard replica by state: growing (not sealed yet), sealed (live rows of sealed segments), dead (sealed rows deleted or replaced, until compaction)",
        &["node", "collection", "shard", "state"],
    )
});

static SEGMENTS: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_querynode_segments",
        "Sealed segments a shard replica serves",
        &["node", "collection", "shard"],
    )
});

static LAG: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_querynode_service_lag_seconds",
        "Wall clock minus the timestamp a shard replica has applied up to (the stream's ticks keep an idle shard near 0)",
        &["node", "collection", "shard"],
    )
});

/// Delay from a write's timestamp to its being applied (searchable) here.
pub(crate) static VISIBLE: LazyLock<Histogram> = LazyLock::new(|| {
    quiver_metrics::histogram(
        "quiver_querynode_visible_delay_seconds",
        "Insert-to-visible freshness: a mutation's timestamp to its being applied on this querynode",
        quiver_metrics::LATENCY_BUCKETS,
    )
});

/// Seconds from hybrid timestamp `ts` to now (0 if in the future).
pub(crate) fn age_seconds(ts: quiver_common::Timestamp) -> f64 {
    let now = quiver_common::ts_physical_ms(quiver_common::wall_ts());
    now.saturating_sub(quiver_common::ts_physical_ms(ts)) as f64 / 1000.0
}

/// Samples the replicas of one querynode.
pub(crate) struct Replicas {
    pub node: String,
    pub shards: Weak<RwLock<HashMap<ShardId, Arc<ShardReplica>>>>,
}

impl Sampled for Replicas {
    fn sample(&self) {
        let Some(shards) = self.shards.upgrade() else {
            return;
        };
        let replicas: Vec<Arc<ShardReplica>> = shards.read().values().cloned().collect();
        for r in replicas {
            let collection = r.info.schema.name.as_str();
            let shard = r.id.shard.to_string();
            let labels = [self.node.as_str(), collection, shard.as_str()];
            let (growing, sealed, dead, segments) = {
                let view = r.view.read();
                let live: usize = view.sealed.iter().map(|s| s.live()).sum();
                let total: usize = view.sealed.iter().map(|s| s.alive.len()).sum();
                (view.growing.live, live, total - live, view.sealed.len())
            };
            for (state, n) in [("growing", growing), ("sealed", sealed), ("dead", dead)] {
                let l = [labels[0], labels[1], labels[2], state];
                ROWS.with_label_values(&l).set(n as f64);
            }
            SEGMENTS.with_label_values(&labels).set(segments as f64);
            LAG.with_label_values(&labels)
                .set(age_seconds(*r.service_ts.borrow()));
        }
    }
}
