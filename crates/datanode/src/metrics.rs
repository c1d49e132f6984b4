//! A datanode's metrics (docs/metrics.md): per owned shard, sampled at each
//! scrape — growing rows and bytes, sealed segments (and those waiting for
//! their graph), the last timestamp's
//! age — and, as they happen, seal and index-build durations.

use std::sync::LazyLock;

use quiver_metrics::{GaugeVec, HistogramVec, Sampled};

use crate::node::Inner;

static GROWING: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_datanode_growing_rows",
        "Rows of an owned shard written and not sealed yet",
        &["node", "collection", "shard"],
    )
});

static GROWING_BYTES: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_datanode_growing_bytes",
        "Bytes of an owned shard's growing data (it seals at seal_bytes)",
        &["node", "collection", "shard"],
    )
});

static SEGMENTS: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_datanode_segments",
        "Sealed segments of an owned shard",
        &["node", "collection", "shard"],
    )
});

static UNINDEXED: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_datanode_unindexed_segments",
        "Sealed segments of an owned shard still waiting for their graph (searched exactly; writes wait at datanode.max_unindexed_factor)",
        &["node", "collection", "shard"],
    )
});

/// Rows of the graphs built (`how`: inserted, or reused from the graph of
/// a merge's largest input).
pub(crate) static GRAPH_ROWS: LazyLock<quiver_metrics::IntCounterVec> = LazyLock::new(|| {
    quiver_metrics::counter_vec(
        "quiver_datanode_graph_rows_total",
        "Rows of the HNSW graphs a datanode built: inserted (each an HNSW insert), or reused (a merge's graph starts from its largest input's, whose rows keep their links)",
        &["how"],
    )
});

/// Seal and index-build durations (`step`: seal, index_build).
pub(crate) static DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    quiver_metrics::histogram_vec(
        "quiver_datanode_step_seconds",
        "Background steps of a datanode: seal (growing data to a registered segment; its graph is built after), index_build (one HNSW build: a sealed segment's, a re-index's or a compaction's), compaction (one rewrite and swap, a graph build for a sealed segment included)",
        &["step"],
        quiver_metrics::LONG_BUCKETS,
    )
});

impl Sampled for Inner {
    fn sample(&self) {
        let node = self.config.node_id.to_string();
        for shard in self.shards.read().values() {
            let ctx = &shard.ctx;
            let labels = [
                node.as_str(),
                ctx.info.schema.name.as_str(),
                &ctx.id.shard.to_string(),
            ];
            let st = ctx.state.lock();
            GROWING
                .with_label_values(&labels)
                .set(st.growing_rows as f64);
            GROWING_BYTES
                .with_label_values(&labels)
                .set(st.growing_bytes as f64);
            SEGMENTS
                .with_label_values(&labels)
                .set(st.sealed.len() as f64);
            UNINDEXED
                .with_label_values(&labels)
                .set(st.unindexed().0 as f64);
        }
    }
}
