//! Grouping search, as Milvus does it: `group_by_field` names a scalar field
//! (Bool, Int8–Int64 or VarChar); a search returns its best `limit` groups —
//! groups ordered by their best hit — each with up to `group_size` hits
//! (default 1) best first; `strict_group_size` asks for full groups where
//! the collection has enough rows. The engine's top-k is widened (×4 per
//! round, up to the top-k limit) until every query has its groups filled or
//! the rows run out, then the hits are grouped here.

use std::collections::HashMap;

use quiver_api::{CollectionInfo, ShardHit};
use quiver_common::{DataType, Error, FieldSchema, Result, ScalarValue};
use quiver_proto::common::KeyValuePair;

use super::search::param;

/// A grouping search's settings.
#[derive(Debug, Clone)]
pub(crate) struct GroupBy {
    pub field: FieldSchema,
    pub size: usize,
    pub strict: bool,
}

/// Milvus's bound on `group_size`.
const MAX_GROUP_SIZE: usize = 1024;

impl GroupBy {
    /// The grouping a search's parameters ask for (None: a plain search).
    pub fn parse(params: &[KeyValuePair], info: &CollectionInfo) -> Result<Option<GroupBy>> {
        let Some(name) = param(params, "group_by_field").map(str::trim) else {
            return Ok(None);
        };
        if name.is_empty() {
            return Ok(None);
        }
        let field = info
            .schema
            .field(name)
            .filter(|f| !super::schema::is_hidden(&f.name))
            .ok_or_else(|| {
                Error::invalid(
                    "group_by_field",
                    format!("no field {name:?} in the collection"),
                )
            })?;
        let groupable = matches!(
            field.data_type,
            DataType::Bool
                | DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::VarChar
        );
        if !groupable {
            return Err(Error::invalid(
                "group_by_field",
                format!(
                    "cannot group by {name:?}, a {:?} field (Bool, Int8-64 and VarChar fields can be grouped by)",
                    field.data_type
                ),
            ));
        }
        let size = match param(params, "group_size") {
            None => 1,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|s| (1..=MAX_GROUP_SIZE).contains(s))
                .ok_or_else(|| {
                    Error::invalid(
                        "group_size",
                        format!("must be an integer in 1..={MAX_GROUP_SIZE} (got {v:?})"),
                    )
                })?,
        };
        let strict = match param(params, "strict_group_size").map(str::trim) {
            None => false,
            Some(v) => v.eq_ignore_ascii_case("true"),
        };
        Ok(Some(GroupBy {
            field: field.clone(),
            size,
            strict,
        }))
    }

    /// The first top-k to ask the engine for `groups` groups.
    pub fn first_k(&self, groups: usize, max_topk: usize) -> usize {
        groups
            .saturating_mul(self.size)
            .saturating_mul(4)
            .clamp(1, max_topk)
    }

    /// One query's hits (best first, the group value at `fields[col]`) as
    /// its first `groups` groups, each best first, after skipping `skip`
    /// groups; and whether more hits could not change them (every group is
    /// full, or there were fewer than `k` hits to look at).
    pub fn group(
        &self,
        hits: &[ShardHit],
        col: usize,
        skip: usize,
        groups: usize,
        k: usize,
    ) -> (Vec<ShardHit>, bool) {
        let want = skip + groups;
        let mut order: Vec<Vec<&ShardHit>> = Vec::new();
        let mut at: HashMap<String, usize> = HashMap::new();
        for h in hits {
            let key = format!("{:?}", h.fields.get(col).unwrap_or(&ScalarValue::Null));
            match at.get(&key) {
                Some(&i) if order[i].len() < self.size => order[i].push(h),
                Some(_) => {}
                None if order.len() < want => {
                    at.insert(key, order.len());
                    order.push(vec![h]);
                }
                None => {}
            }
        }
        let exhausted = hits.len() < k;
        let full = order.len() == want && order.iter().all(|g| g.len() == self.size);
        // Without `strict_group_size`, `want` groups are enough: later hits
        // only add to groups already chosen (Milvus fills them as it can).
        let done = exhausted || full || (!self.strict && order.len() == want);
        let out = order.into_iter().skip(skip).flatten().cloned().collect();
        (out, done)
    }
}

#[cfg(test)]
mod tests {
    use quiver_common::PrimaryKey;

    use super::*;

    fn hit(id: i64, group: i64) -> ShardHit {
        ShardHit {
            pk: PrimaryKey::Int(id),
            score: id as f32,
            fields: vec![ScalarValue::Str("x".into()), ScalarValue::Int(group)],
            vector: None,
        }
    }

    fn ids(h: &[ShardHit]) -> Vec<i64> {
        h.iter()
            .map(|h| match h.pk {
                PrimaryKey::Int(i) => i,
                PrimaryKey::Str(_) => -1,
            })
            .collect()
    }

    #[test]
    fn groups_follow_their_best_hit() {
        let g = GroupBy {
            field: FieldSchema::new("g", DataType::Int64),
            size: 2,
            strict: true,
        };
        // Groups: 7 (hits 1, 2, 5), 8 (hits 3, 6), 9 (hit 4).
        let hits: Vec<_> = [(1, 7), (2, 7), (3, 8), (4, 9), (5, 7), (6, 8)]
            .iter()
            .map(|&(i, g)| hit(i, g))
            .collect();
        let (out, done) = g.group(&hits, 1, 0, 2, 6);
        assert_eq!(ids(&out), [1, 2, 3, 6]);
        assert!(done, "two full groups");
        let (out, done) = g.group(&hits, 1, 1, 2, 6);
        assert_eq!(ids(&out), [3, 6, 4]);
        assert!(!done, "group 9 is not full and more hits may come");
        let (_, done) = g.group(&hits, 1, 1, 2, 10);
        assert!(done, "fewer hits than asked for: the rows ran out");
        let loose = GroupBy { strict: false, ..g };
        let (out, done) = loose.group(&hits, 1, 0, 3, 6);
        assert_eq!(ids(&out), [1, 2, 3, 6, 4]);
        assert!(done);
    }
}
