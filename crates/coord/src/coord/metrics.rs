//! A coord member's metrics (docs/metrics.md): its Raft state sampled at
//! each scrape (term, whether it leads, applied and last log index, the
//! metadata version) and the latency of proposals it handled as leader.

use std::sync::LazyLock;

use openraft::Raft;
use quiver_metrics::{GaugeVec, Histogram, Sampled};

use crate::raft::TypeConfig;

static RAFT: LazyLock<GaugeVec> = LazyLock::new(|| {
    quiver_metrics::sampled_gauge_vec(
        "quiver_coord_raft",
        "A coord member's Raft state: term, is_leader (1 or 0), applied_index, last_log_index",
        &["node", "value"],
    )
});

/// A metadata change from proposal to applied (and backed up, when
/// backups run), on the leader.
pub(crate) static PROPOSAL: LazyLock<Histogram> = LazyLock::new(|| {
    quiver_metrics::histogram(
        "quiver_coord_proposal_seconds",
        "A metadata change on the leader: proposed to applied (and backed up)",
        quiver_metrics::LATENCY_BUCKETS,
    )
});

/// Samples one coord member.
pub(crate) struct Member {
    pub node_id: u64,
    pub raft: Raft<TypeConfig>,
}

impl Sampled for Member {
    fn sample(&self) {
        let node = self.node_id.to_string();
        let m = self.raft.metrics().borrow().clone();
        let leader = f64::from(u8::from(m.current_leader == Some(self.node_id)));
        for (value, v) in [
            ("term", m.current_term as f64),
            ("is_leader", leader),
            (
                "applied_index",
                m.last_applied.map_or(0, |l| l.index) as f64,
            ),
            ("last_log_index", m.last_log_index.unwrap_or(0) as f64),
        ] {
            RAFT.with_label_values(&[node.as_str(), value]).set(v);
        }
    }
}
