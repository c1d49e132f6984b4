//! Request dedup: the replies of the most recent proposals that carried a
//! [`RequestId`], kept by the state machine (and in its snapshots) so that
//! a proposal retried after its answer was lost applies once. Pure data:
//! every replica applies the same log and so keeps the same table.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{MetaReply, RequestId};

/// How many request ids are remembered. A client retries one proposal for
/// at most its call deadline (seconds), while the coords apply a few
/// proposals with ids per second (DDL, segment registrations, shard
/// acquisitions, id allocations): a retry finds its id unless this many
/// other proposals with ids were applied in between.
pub(crate) const REMEMBERED: usize = 4096;

/// The remembered replies, oldest first out. Stored (in snapshots) as the
/// list of (id, reply) pairs, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    from = "Vec<(RequestId, MetaReply)>",
    into = "Vec<(RequestId, MetaReply)>"
)]
pub(crate) struct RecentRequests {
    replies: BTreeMap<RequestId, MetaReply>,
    order: VecDeque<RequestId>,
}

impl From<Vec<(RequestId, MetaReply)>> for RecentRequests {
    fn from(list: Vec<(RequestId, MetaReply)>) -> Self {
        let mut r = RecentRequests::default();
        for (id, reply) in list {
            r.record(id, reply);
        }
        r
    }
}

impl From<RecentRequests> for Vec<(RequestId, MetaReply)> {
    fn from(mut r: RecentRequests) -> Self {
        r.order
            .iter()
            .filter_map(|id| Some((*id, r.replies.remove(id)?)))
            .collect()
    }
}

impl RecentRequests {
    /// The reply a request got when it was first applied.
    pub(crate) fn get(&self, id: &RequestId) -> Option<&MetaReply> {
        self.replies.get(id)
    }

    /// Remembers the reply of a request applied now (forgetting the oldest
    /// beyond [`REMEMBERED`]).
    pub(crate) fn record(&mut self, id: RequestId, reply: MetaReply) {
        if self.replies.insert(id, reply).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.replies.remove(&old);
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.replies.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetaResponse;
    use crate::error::RuleError;

    fn id(seq: u64) -> RequestId {
        RequestId { client: 7, seq }
    }

    #[test]
    fn a_recorded_reply_is_found_again_errors_included() {
        let mut r = RecentRequests::default();
        r.record(id(1), Ok(MetaResponse::IdsAllocated { first: 10 }));
        r.record(id(2), Err(RuleError::AlreadyExists("c".into())));
        assert_eq!(
            r.get(&id(1)),
            Some(&Ok(MetaResponse::IdsAllocated { first: 10 }))
        );
        assert!(matches!(
            r.get(&id(2)),
            Some(Err(RuleError::AlreadyExists(_)))
        ));
        assert_eq!(r.get(&id(3)), None);
        assert_eq!(r.get(&RequestId { client: 8, seq: 1 }), None);
    }

    #[test]
    fn the_oldest_are_forgotten_beyond_the_bound() {
        let mut r = RecentRequests::default();
        for seq in 0..(REMEMBERED as u64 + 10) {
            r.record(id(seq), Ok(MetaResponse::Done));
        }
        assert_eq!(r.len(), REMEMBERED);
        assert_eq!(r.get(&id(9)), None);
        assert!(r.get(&id(10)).is_some());
        assert!(r.get(&id(REMEMBERED as u64 + 9)).is_some());
    }

    #[test]
    fn the_table_survives_a_json_round_trip() -> Result<(), serde_json::Error> {
        let mut r = RecentRequests::default();
        r.record(id(1), Ok(MetaResponse::ShardAcquired { epoch: 4 }));
        let back: RecentRequests = serde_json::from_slice(&serde_json::to_vec(&r)?)?;
        assert_eq!(back, r);
        Ok(())
    }
}
