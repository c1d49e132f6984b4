//! ManualCompaction, GetCompactionState, GetCompactionStateWithPlans.
//!
//! A manual compaction is a coord record: every shard's owner compacts what
//! the shard holds (any segment with a dead row, neighbouring small segments
//! merged) and marks its shard done; the compaction is Completed when every
//! shard is. Its plans are the compactions that ran for it (inputs -> output).

use quiver_common::{Error, Result};
use quiver_proto::common::CompactionState;
use quiver_proto::milvus::{
    CompactionMergeInfo, GetCompactionPlansRequest, GetCompactionPlansResponse,
    GetCompactionStateRequest, GetCompactionStateResponse, ManualCompactionRequest,
    ManualCompactionResponse,
};

use super::MilvusFront;
use super::status::{failure, success};

impl MilvusFront {
    pub(crate) async fn manual_compaction(
        &self,
        req: ManualCompactionRequest,
    ) -> ManualCompactionResponse {
        match self.start_compaction(&req).await {
            Ok((id, shards)) => ManualCompactionResponse {
                status: Some(success()),
                compaction_id: id as i64,
                compaction_plan_count: shards as i32,
            },
            Err(e) => ManualCompactionResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    /// The collection is named by `collection_name` or, as pymilvus sends
    /// it, by `collectionID`.
    async fn start_compaction(&self, req: &ManualCompactionRequest) -> Result<(u64, u32)> {
        if !req.segment_ids.is_empty() {
            return Err(Error::invalid(
                "segment_ids",
                "compacting chosen segments is not supported; omit them to compact the collection",
            ));
        }
        let info = if req.collection_name.is_empty() {
            self.catalog
                .collections()
                .into_iter()
                .find(|c| c.id as i64 == req.collection_id)
                .ok_or_else(|| {
                    Error::CollectionNotFound(format!("collectionID {}", req.collection_id))
                })?
        } else {
            self.proxy.describe(&req.collection_name)?
        };
        let id = self.catalog.request_compaction(&info.schema.name).await?;
        Ok((id, info.shards))
    }

    pub(crate) async fn compaction_state(
        &self,
        req: GetCompactionStateRequest,
    ) -> GetCompactionStateResponse {
        match self.compaction_status(req.compaction_id).await {
            Ok(s) => GetCompactionStateResponse {
                status: Some(success()),
                state: state_of(s.finished) as i32,
                executing_plan_no: s.pending_shards.len() as i64,
                completed_plan_no: s.plans.len() as i64,
                ..Default::default()
            },
            Err(e) => GetCompactionStateResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    pub(crate) async fn compaction_plans(
        &self,
        req: GetCompactionPlansRequest,
    ) -> GetCompactionPlansResponse {
        match self.compaction_status(req.compaction_id).await {
            Ok(s) => GetCompactionPlansResponse {
                status: Some(success()),
                state: state_of(s.finished) as i32,
                merge_infos: s
                    .plans
                    .iter()
                    .map(|p| CompactionMergeInfo {
                        sources: p.inputs.iter().map(|&i| i as i64).collect(),
                        // No output: every input row was dead.
                        target: p.output.map_or(-1, |o| o as i64),
                    })
                    .collect(),
            },
            Err(e) => GetCompactionPlansResponse {
                status: Some(failure(&e)),
                ..Default::default()
            },
        }
    }

    async fn compaction_status(&self, id: i64) -> Result<quiver_api::CompactionStatus> {
        let found = match u64::try_from(id) {
            Ok(id) => self.catalog.compaction(id).await?,
            Err(_) => None,
        };
        found.ok_or_else(|| {
            Error::invalid(
                "compactionID",
                format!("no compaction {id} (unknown, or finished long ago)"),
            )
        })
    }
}

fn state_of(finished: bool) -> CompactionState {
    if finished {
        CompactionState::Completed
    } else {
        CompactionState::Executing
    }
}
