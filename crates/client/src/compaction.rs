//! Manual compactions: start one (`ManualCompaction`) and follow it
//! (`GetCompactionState`, `GetCompactionStateWithPlans`).

use quiver_proto::common::CompactionState;
use quiver_proto::milvus::{
    GetCompactionPlansRequest, GetCompactionStateRequest, ManualCompactionRequest,
};

use crate::Client;
use crate::error::{Result, check, grpc};

/// One compaction of a manual compaction: the segments it merged and the
/// segment that replaced them (`None` when none of their rows was live).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionPlan {
    pub sources: Vec<i64>,
    pub target: Option<i64>,
}

/// Where a manual compaction stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionProgress {
    pub id: i64,
    pub completed: bool,
    /// Shards still compacting.
    pub executing: i64,
    pub plans: Vec<CompactionPlan>,
}

impl Client {
    /// Starts a manual compaction of a collection (by name or alias); returns its id.
    pub async fn compact(&self, collection: &str) -> Result<i64> {
        let info = self.describe_collection(collection).await?;
        let r = grpc(
            "ManualCompaction",
            self.stub()
                .manual_compaction(ManualCompactionRequest {
                    collection_id: info.id,
                    collection_name: info.name,
                    ..Default::default()
                })
                .await,
        )?;
        check("ManualCompaction", r.status)?;
        Ok(r.compaction_id)
    }

    /// A manual compaction's state and the compactions it ran so far.
    pub async fn compaction_progress(&self, id: i64) -> Result<CompactionProgress> {
        let state = grpc(
            "GetCompactionState",
            self.stub()
                .get_compaction_state(GetCompactionStateRequest { compaction_id: id })
                .await,
        )?;
        check("GetCompactionState", state.status)?;
        let plans = grpc(
            "GetCompactionStateWithPlans",
            self.stub()
                .get_compaction_state_with_plans(GetCompactionPlansRequest { compaction_id: id })
                .await,
        )?;
        check("GetCompactionStateWithPlans", plans.status)?;
        Ok(CompactionProgress {
            id,
            completed: state.state == CompactionState::Completed as i32,
            executing: state.executing_plan_no,
            plans: plans
                .merge_infos
                .into_iter()
                .map(|m| CompactionPlan {
                    sources: m.sources,
                    target: (m.target >= 0).then_some(m.target),
                })
                .collect(),
        })
    }
}
