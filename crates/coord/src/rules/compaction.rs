//! Compaction rules: the atomic swap of a shard's input segments for their
//! compacted output, and manual compactions (Milvus `ManualCompaction`).

use quiver_common::{CollectionId, SegmentId, ShardIndex, Timestamp};

use super::shard::{check_epoch, check_shard};
use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::{CompactionJob, CompactionPlanRecord, MetaState, SegmentMeta};

/// Finished manual compactions kept for `GetCompactionState`; older ones are
/// forgotten (pending ones never are).
pub(crate) const FINISHED_JOBS_KEPT: usize = 64;

/// One compaction's swap, as the shard owner proposes it.
pub(super) struct Swap<'a> {
    pub collection_id: CollectionId,
    pub shard: ShardIndex,
    pub epoch: u64,
    pub inputs: &'a [SegmentId],
    pub output: Option<&'a SegmentMeta>,
    pub job: Option<u64>,
}

pub(super) fn compact(
    state: &mut MetaState,
    swap: Swap<'_>,
    log_ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let Swap {
        collection_id,
        shard,
        epoch,
        inputs,
        output,
        job,
    } = swap;
    check_shard(state, collection_id, shard)?;
    check_epoch(state, collection_id, shard, epoch)?;
    if inputs.is_empty() {
        return Err(RuleError::invalid(
            "inputs",
            "must name at least one segment",
        ));
    }
    let catalog = state
        .segments
        .get(&collection_id)
        .and_then(|s| s.get(&shard));
    let registered = |id: &SegmentId| {
        catalog.is_some_and(|c| c.segments.binary_search_by_key(id, |s| s.id).is_ok())
    };
    for (i, id) in inputs.iter().enumerate() {
        if inputs[..i].contains(id) {
            return Err(RuleError::invalid(
                "inputs",
                format!("segment {id} is named twice"),
            ));
        }
        if !registered(id) {
            return Err(RuleError::invalid(
                "inputs",
                format!(
                    "segment {id} is not registered in shard {collection_id}/{shard} (compacted or dropped meanwhile)"
                ),
            ));
        }
    }
    if let Some(out) = output
        && (registered(&out.id) || inputs.contains(&out.id))
    {
        return Err(RuleError::AlreadyExists(format!(
            "segment {} in shard {collection_id}/{shard}",
            out.id
        )));
    }
    if let Some(id) = job {
        let pending = state
            .compactions
            .get(&id)
            .is_some_and(|j| j.collection_id == collection_id);
        if !pending {
            return Err(RuleError::invalid(
                "job",
                format!("no manual compaction {id} of collection id {collection_id}"),
            ));
        }
    }
    // Checked: apply.
    let catalog = state
        .segments
        .entry(collection_id)
        .or_default()
        .entry(shard)
        .or_default();
    catalog.segments.retain(|s| !inputs.contains(&s.id));
    if let Some(out) = output {
        let pos = catalog
            .segments
            .binary_search_by_key(&out.id, |s| s.id)
            .unwrap_or_else(|p| p);
        catalog.segments.insert(pos, out.clone());
    }
    catalog.compactions += 1;
    catalog.last_compaction_ts = Some(log_ts);
    if let Some(j) = job.and_then(|id| state.compactions.get_mut(&id)) {
        j.plans.push(CompactionPlanRecord {
            shard,
            inputs: inputs.to_vec(),
            output: output.map(|o| o.id),
        });
    }
    Ok(MetaResponse::Done)
}

pub(super) fn request(
    state: &mut MetaState,
    collection: &str,
    log_ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    let Some(meta) = state.collection(collection) else {
        return Err(RuleError::CollectionNotFound(collection.to_string()));
    };
    let (collection_id, shards) = (meta.id, meta.shards);
    let id = state.next_id;
    state.next_id += 1;
    state.compactions.insert(
        id,
        CompactionJob {
            id,
            collection_id,
            requested_ts: log_ts,
            pending: (0..shards).collect(),
            plans: Vec::new(),
            finished_ts: None,
        },
    );
    forget_old_jobs(state);
    Ok(MetaResponse::CompactionRequested { id })
}

pub(super) fn finish(
    state: &mut MetaState,
    collection_id: CollectionId,
    shard: ShardIndex,
    epoch: u64,
    job: u64,
    log_ts: Timestamp,
) -> Result<MetaResponse, RuleError> {
    check_shard(state, collection_id, shard)?;
    check_epoch(state, collection_id, shard, epoch)?;
    let Some(j) = state
        .compactions
        .get_mut(&job)
        .filter(|j| j.collection_id == collection_id)
    else {
        return Err(RuleError::invalid(
            "job",
            format!("no manual compaction {job} of collection id {collection_id}"),
        ));
    };
    // Idempotent: a retried finish changes nothing more.
    if j.pending.remove(&shard) && j.pending.is_empty() {
        j.finished_ts = Some(log_ts);
    }
    forget_old_jobs(state);
    Ok(MetaResponse::Done)
}

/// Keeps every pending job and the newest [`FINISHED_JOBS_KEPT`] finished ones.
fn forget_old_jobs(state: &mut MetaState) {
    let finished: Vec<u64> = state
        .compactions
        .values()
        .filter(|j| j.finished_ts.is_some())
        .map(|j| j.id)
        .collect();
    let excess = finished.len().saturating_sub(FINISHED_JOBS_KEPT);
    for id in finished.into_iter().take(excess) {
        state.compactions.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::super::apply;
    use crate::command::{MetaCommand, MetaResponse};
    use crate::error::RuleError;
    use crate::state::{MetaState, SegmentMeta};
    use quiver_common::CollectionSchema;

    fn seg(id: u64, max_ts: u64) -> SegmentMeta {
        SegmentMeta {
            id,
            rows: 10,
            max_ts,
            wal_seq: id,
            has_index: false,
            index_version: 0,
        }
    }

    /// A collection with 2 shards, shard 0 owned at epoch 1 with segments 10, 11, 12.
    fn state() -> (MetaState, u64) {
        let mut s = MetaState::default();
        let created = apply(
            &mut s,
            &MetaCommand::CreateCollection {
                schema: CollectionSchema::simple("c", 4),
                shards: 2,
                metric: quiver_common::Metric::L2,
                index: None,
                partitions: None,
            },
            1,
        )
        .expect("create");
        let MetaResponse::CollectionCreated { id } = created else {
            panic!("{created:?}")
        };
        for shard in 0..2 {
            apply(
                &mut s,
                &MetaCommand::AcquireShard {
                    collection_id: id,
                    shard,
                    node_id: 1,
                },
                2,
            )
            .expect("acquire");
        }
        apply(
            &mut s,
            &MetaCommand::RegisterSegments {
                collection_id: id,
                shard: 0,
                epoch: Some(1),
                segments: vec![seg(10, 100), seg(11, 200), seg(12, 300)],
                wal_checkpoint: 12,
            },
            3,
        )
        .expect("register");
        (s, id)
    }

    fn swap(id: u64, epoch: u64, inputs: &[u64], output: Option<SegmentMeta>) -> MetaCommand {
        MetaCommand::CompactSegments {
            collection_id: id,
            shard: 0,
            epoch,
            inputs: inputs.to_vec(),
            output,
            job: None,
        }
    }

    fn ids(s: &MetaState, id: u64) -> Vec<u64> {
        s.segments(id, 0).segments.iter().map(|m| m.id).collect()
    }

    #[test]
    fn a_swap_replaces_inputs_by_the_output_in_one_step() {
        let (mut s, id) = state();
        apply(&mut s, &swap(id, 1, &[10, 11], Some(seg(20, 200))), 9).expect("swap");
        assert_eq!(ids(&s, id), vec![12, 20]);
        let c = s.segments(id, 0);
        assert_eq!((c.compactions, c.last_compaction_ts), (1, Some(9)));
        assert_eq!(c.wal_checkpoint, 12, "the checkpoint does not move");
        // An all-dead input goes without an output.
        apply(&mut s, &swap(id, 1, &[12], None), 10).expect("swap");
        assert_eq!(ids(&s, id), vec![20]);
    }

    #[test]
    fn a_stale_owner_or_a_stale_plan_changes_nothing() {
        let (mut s, id) = state();
        let before = s.clone();
        let e = apply(&mut s, &swap(id, 0, &[10], None), 9).expect_err("stale epoch");
        assert!(matches!(e, RuleError::Fenced(_)), "{e}");
        let e = apply(&mut s, &swap(id, 1, &[10, 99], None), 9).expect_err("gone input");
        assert!(
            e.to_string().contains("segment 99 is not registered"),
            "{e}"
        );
        let e = apply(&mut s, &swap(id, 1, &[10, 10], None), 9).expect_err("twice");
        assert!(e.to_string().contains("named twice"), "{e}");
        let e = apply(&mut s, &swap(id, 1, &[10], Some(seg(11, 1))), 9).expect_err("dup out");
        assert!(matches!(e, RuleError::AlreadyExists(_)), "{e}");
        let e = apply(&mut s, &swap(id, 1, &[], None), 9).expect_err("no inputs");
        assert!(e.to_string().contains("inputs"), "{e}");
        assert_eq!(s, before);
    }

    #[test]
    fn a_manual_compaction_finishes_when_every_shard_did() {
        let (mut s, id) = state();
        let r = apply(
            &mut s,
            &MetaCommand::RequestCompaction {
                collection: "c".into(),
            },
            5,
        )
        .expect("request");
        let MetaResponse::CompactionRequested { id: job } = r else {
            panic!("{r:?}")
        };
        assert_eq!(s.pending_compactions(id, 0), vec![job]);
        let mut cmd = swap(id, 1, &[10, 11], Some(seg(20, 200)));
        if let MetaCommand::CompactSegments { job: j, .. } = &mut cmd {
            *j = Some(job);
        }
        apply(&mut s, &cmd, 6).expect("swap");
        let finish = |shard| MetaCommand::FinishCompaction {
            collection_id: id,
            shard,
            epoch: 1,
            job,
        };
        apply(&mut s, &finish(0), 7).expect("finish 0");
        apply(&mut s, &finish(0), 7).expect("a retried finish is harmless");
        let j = s.compaction(job).expect("job").clone();
        assert_eq!(j.finished_ts, None, "shard 1 is still pending");
        assert_eq!(j.plans.len(), 1);
        assert_eq!(j.plans[0].inputs, vec![10, 11]);
        apply(&mut s, &finish(1), 8).expect("finish 1");
        assert_eq!(s.compaction(job).and_then(|j| j.finished_ts), Some(8));
        assert!(s.pending_compactions(id, 1).is_empty());
        // A job id is never reused as another id.
        assert!(s.next_id() > job);
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept() {
        let (mut s, id) = state();
        let mut jobs = Vec::new();
        for _ in 0..(super::FINISHED_JOBS_KEPT + 5) {
            let r = apply(
                &mut s,
                &MetaCommand::RequestCompaction {
                    collection: "c".into(),
                },
                5,
            )
            .expect("request");
            let MetaResponse::CompactionRequested { id: job } = r else {
                panic!("{r:?}")
            };
            for shard in 0..2 {
                let cmd = MetaCommand::FinishCompaction {
                    collection_id: id,
                    shard,
                    epoch: 1,
                    job,
                };
                apply(&mut s, &cmd, 6).expect("finish");
            }
            jobs.push(job);
        }
        assert!(s.compaction(jobs[0]).is_none(), "the oldest is forgotten");
        assert!(s.compaction(*jobs.last().expect("jobs")).is_some());
        assert_eq!(s.compactions.len(), super::FINISHED_JOBS_KEPT);
    }
}
