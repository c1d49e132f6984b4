//! The graph builder of one shard. A seal hands rows off before their graph
//! is built (`INDEX_PENDING`: searched exactly meanwhile); this task builds
//! each such segment's graph, oldest first, on `datanode.index_threads`, and
//! swaps the segment for the same rows and tombstones with their graph
//! ([`Reason::Index`]), through coord like any compaction. It runs beside
//! the compactor and outside its one-at-a-time limit, so a long merge never
//! holds graphs back (nor, at `datanode.max_unindexed_factor`, writers).
//! The compactor does not merge a segment until it has its graph.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quiver_api::MetaClient;
use quiver_common::SegmentId;
use quiver_storage::ObjectStore;

use super::Compactor;
use super::plan::Reason;
use crate::shard::ShardCtx;

/// The graph builder task of one shard.
pub(crate) async fn run_graph_builder(
    ctx: Arc<ShardCtx>,
    store: Arc<dyn ObjectStore>,
    meta: Arc<dyn MetaClient>,
) {
    let grace = ctx.config.compaction.gc_grace();
    // Graph builds keep every row: its directory stays empty.
    let mut c = Compactor::new(ctx, store, meta);
    loop {
        while let Some(id) = pending(&c.ctx) {
            if c.ctx.cancel.is_cancelled() {
                return;
            }
            if let Err(e) = c.compact(&[id], Reason::Index, None).await {
                tracing::warn!(shard = %c.ctx.id, segment = id, error = %e, "graph build failed; will retry");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    () = c.ctx.cancel.cancelled() => return,
                }
                break;
            }
        }
        c.delete_retired(grace).await;
        // Wake for new seals, for retired objects coming due, and every second.
        let nap = (c.retired.first())
            .map_or(Duration::from_secs(1), |(at, _)| {
                (*at + grace).saturating_duration_since(Instant::now())
            })
            .min(Duration::from_secs(1));
        tokio::select! {
            () = c.ctx.graph_wakeup.notified() => {}
            () = tokio::time::sleep(nap) => {}
            () = c.ctx.cancel.cancelled() => return,
        }
    }
}

/// The oldest sealed segment still waiting for its graph.
fn pending(ctx: &ShardCtx) -> Option<SegmentId> {
    let st = ctx.state.lock();
    (st.sealed.iter())
        .filter(|s| s.graph_pending())
        .min_by_key(|s| s.max_ts)
        .map(|s| s.id)
}
