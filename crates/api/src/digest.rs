//! Shard digests: how two collections of a mirrored alias are compared
//! without shipping their rows.
//!
//! Every live row hashes to 64 bits over its primary key, vector bytes and
//! scalar values (in schema order). A shard's digest splits its rows into
//! buckets by a hash of the primary key and keeps, per bucket, the row count
//! and the wrapping sum of the row hashes: order-independent, so two
//! replicas holding the same rows agree whatever order they applied them
//! in. Buckets that differ are then listed row by row (`detail`), and only
//! those rows are compared.
//!
//! The hash is FNV-1a followed by a 64-bit finalizer: stable across
//! processes, machines and Rust versions (a cluster may run mixed builds
//! during an upgrade), and not meant to resist an adversary.

use quiver_common::{PrimaryKey, ScalarValue, Timestamp, ValueRef, VectorSlice};
use serde::{Deserialize, Serialize};

use crate::meta::ShardId;

/// Buckets per shard when a caller has no reason to pick another number.
pub const DIGEST_BUCKETS: u32 = 1024;
/// More buckets than this is refused (a digest reply stays small).
pub const MAX_DIGEST_BUCKETS: u32 = 65_536;

/// What to digest of one shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DigestRequest {
    pub shard: ShardId,
    /// Wait until the shard has applied everything up to this timestamp.
    pub guarantee_ts: Timestamp,
    /// How many buckets the rows are split into (1..=[`MAX_DIGEST_BUCKETS`]).
    pub buckets: u32,
    /// List the rows of these buckets in [`ShardDigest::detail`].
    pub detail_buckets: Vec<u32>,
    /// List these keys too (those that are live) in [`ShardDigest::detail`].
    pub pks: Vec<PrimaryKey>,
    /// Only list `pks`: no bucket digest (`buckets` and `detail_buckets`
    /// are ignored; the reply's `rows` and `buckets` are empty).
    pub pks_only: bool,
}

/// One bucket of a shard digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDigest {
    pub rows: u64,
    /// Wrapping sum of the bucket's row hashes.
    pub sum: u64,
}

/// A shard's digest as one replica sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardDigest {
    /// Live rows.
    pub rows: u64,
    /// `buckets` entries.
    pub buckets: Vec<BucketDigest>,
    /// (key, row hash) of the rows asked for, ordered by key, no duplicates.
    pub detail: Vec<(PrimaryKey, u64)>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a hasher with a finalizer.
#[derive(Debug, Clone, Copy)]
pub struct RowHasher(u64);

impl Default for RowHasher {
    fn default() -> Self {
        Self(FNV_OFFSET)
    }
}

impl RowHasher {
    /// Mixes in one 64-bit word.
    pub fn word(&mut self, w: u64) -> &mut Self {
        self.0 = (self.0 ^ w).wrapping_mul(FNV_PRIME).rotate_left(29);
        self
    }

    /// Mixes in bytes, eight at a time (the caller adds a length where a
    /// boundary could be ambiguous).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
        self
    }

    pub fn pk(&mut self, pk: &PrimaryKey) -> &mut Self {
        match pk {
            PrimaryKey::Int(v) => self.bytes(&[1]).bytes(&v.to_le_bytes()),
            PrimaryKey::Str(s) => self
                .bytes(&[2])
                .bytes(&(s.len() as u64).to_le_bytes())
                .bytes(s.as_bytes()),
        }
    }

    pub fn vector(&mut self, v: &[f32]) -> &mut Self {
        let mut pairs = v.chunks_exact(2);
        for p in &mut pairs {
            self.word(u64::from(p[0].to_bits()) | (u64::from(p[1].to_bits()) << 32));
        }
        if let [x] = pairs.remainder() {
            self.word(u64::from(x.to_bits()) | (1 << 63));
        }
        self
    }

    pub fn value(&mut self, v: &ScalarValue) -> &mut Self {
        let text = |h: &mut Self, tag: u8, s: &str| {
            h.bytes(&[tag])
                .bytes(&(s.len() as u64).to_le_bytes())
                .bytes(s.as_bytes());
        };
        match v {
            ScalarValue::Null => {
                self.bytes(&[0]);
            }
            ScalarValue::Bool(b) => {
                self.bytes(&[1, u8::from(*b)]);
            }
            ScalarValue::Int(i) => {
                self.bytes(&[2]).bytes(&i.to_le_bytes());
            }
            ScalarValue::Float(f) => {
                self.bytes(&[3]).bytes(&f.to_le_bytes());
            }
            ScalarValue::Str(s) => text(self, 4, s),
            ScalarValue::Json(s) => text(self, 5, s),
            ScalarValue::Array(items) => {
                self.bytes(&[6]).bytes(&(items.len() as u64).to_le_bytes());
                for item in items {
                    self.value(item);
                }
            }
            ScalarValue::Vector(v) => {
                self.bytes(&[7]).bytes(&(v.len() as u64).to_le_bytes());
                self.vector(v);
            }
            ScalarValue::Sparse(pairs) => {
                self.bytes(&[8]).bytes(&(pairs.len() as u64).to_le_bytes());
                for (i, x) in pairs {
                    self.word(u64::from(*i) | (u64::from(x.to_bits()) << 32));
                }
            }
        }
        self
    }

    /// The hash (finalized so that nearby inputs spread over all bits).
    pub fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The bucket of a key among `buckets`.
pub fn pk_bucket(pk: &PrimaryKey, buckets: u32) -> u32 {
    let h = RowHasher::default().pk(pk).finish();
    (h % u64::from(buckets.max(1))) as u32
}

/// A row's hash: its key, vector bytes and scalar values in schema order.
pub fn row_hash<'a>(
    pk: &PrimaryKey,
    vector: VectorSlice<'_>,
    values: impl IntoIterator<Item = Option<ValueRef<'a>>>,
) -> u64 {
    let mut h = RowHasher::default();
    let VectorSlice::F32(v) = vector;
    h.pk(pk).vector(v);
    for v in values {
        v.unwrap_or(ValueRef::Null).with(|v| {
            h.value(v);
        });
    }
    h.finish()
}

/// Accumulates a digest row by row.
pub struct DigestBuilder {
    pks_only: bool,
    buckets: u32,
    detail_buckets: Vec<bool>,
    pks: std::collections::HashSet<PrimaryKey>,
    out: ShardDigest,
}

impl DigestBuilder {
    pub fn new(req: &DigestRequest) -> Self {
        let buckets = req.buckets.clamp(1, MAX_DIGEST_BUCKETS);
        let mut detail_buckets = vec![false; buckets as usize];
        for b in &req.detail_buckets {
            if let Some(d) = detail_buckets.get_mut(*b as usize) {
                *d = true;
            }
        }
        if req.pks_only {
            return Self {
                pks_only: true,
                buckets: 1,
                detail_buckets: Vec::new(),
                pks: Default::default(),
                out: ShardDigest::default(),
            };
        }
        Self {
            pks_only: false,
            buckets,
            detail_buckets,
            pks: req.pks.iter().cloned().collect(),
            out: ShardDigest {
                rows: 0,
                buckets: vec![BucketDigest::default(); buckets as usize],
                detail: Vec::new(),
            },
        }
    }

    pub fn add(&mut self, pk: &PrimaryKey, hash: u64) {
        if self.pks_only {
            self.out.detail.push((pk.clone(), hash));
            return;
        }
        let b = pk_bucket(pk, self.buckets) as usize;
        self.out.rows += 1;
        let bucket = &mut self.out.buckets[b];
        bucket.rows += 1;
        bucket.sum = bucket.sum.wrapping_add(hash);
        if self.detail_buckets[b] || self.pks.contains(pk) {
            self.out.detail.push((pk.clone(), hash));
        }
    }

    pub fn finish(mut self) -> ShardDigest {
        self.out.detail.sort_by(|a, b| a.0.cmp(&b.0));
        self.out.detail.dedup_by(|a, b| a.0 == b.0);
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(buckets: u32, detail: Vec<u32>) -> DigestRequest {
        DigestRequest {
            shard: ShardId {
                collection_id: 1,
                shard: 0,
            },
            guarantee_ts: 0,
            buckets,
            detail_buckets: detail,
            pks: vec![PrimaryKey::Int(7)],
            pks_only: false,
        }
    }

    #[test]
    fn a_digest_does_not_depend_on_row_order() {
        let rows: Vec<(PrimaryKey, u64)> = (0..100)
            .map(|i| {
                let pk = PrimaryKey::Int(i);
                let h = row_hash(
                    &pk,
                    VectorSlice::F32(&[i as f32, 1.0]),
                    [Some(ValueRef::of(&ScalarValue::Int(i)))],
                );
                (pk, h)
            })
            .collect();
        let mut forward = DigestBuilder::new(&req(8, vec![3]));
        let mut backward = DigestBuilder::new(&req(8, vec![3]));
        rows.iter().for_each(|(pk, h)| forward.add(pk, *h));
        rows.iter().rev().for_each(|(pk, h)| backward.add(pk, *h));
        let (f, b) = (forward.finish(), backward.finish());
        assert_eq!(f, b);
        assert_eq!(f.rows, 100);
        assert_eq!(f.buckets.iter().map(|b| b.rows).sum::<u64>(), 100);
        assert!(f.detail.iter().any(|(pk, _)| *pk == PrimaryKey::Int(7)));
        assert!(
            f.detail
                .iter()
                .all(|(pk, _)| *pk == PrimaryKey::Int(7) || pk_bucket(pk, 8) == 3)
        );
    }

    const GOLDEN: u64 = 0xb86d_7f91_c2de_1c80;

    #[test]
    fn the_hash_sees_every_part_of_a_row() {
        let pk = PrimaryKey::Int(1);
        let base = row_hash(
            &pk,
            VectorSlice::F32(&[1.0, 2.0]),
            [Some(ValueRef::of(&ScalarValue::Str("a".into())))],
        );
        assert_ne!(
            base,
            row_hash(
                &PrimaryKey::Int(2),
                VectorSlice::F32(&[1.0, 2.0]),
                [Some(ValueRef::of(&ScalarValue::Str("a".into())))]
            )
        );
        assert_ne!(
            base,
            row_hash(
                &pk,
                VectorSlice::F32(&[1.0, 2.5]),
                [Some(ValueRef::of(&ScalarValue::Str("a".into())))]
            )
        );
        assert_ne!(
            base,
            row_hash(
                &pk,
                VectorSlice::F32(&[1.0, 2.0]),
                [Some(ValueRef::of(&ScalarValue::Json("a".into())))]
            )
        );
        assert_ne!(base, row_hash(&pk, VectorSlice::F32(&[1.0, 2.0]), [None]));
        assert_ne!(
            row_hash(&PrimaryKey::Int(1), VectorSlice::F32(&[]), []),
            row_hash(&PrimaryKey::Str("1".into()), VectorSlice::F32(&[]), [])
        );
        // Stable across builds and versions (nodes of a cluster being
        // upgraded compare digests): a fixed row has a fixed hash.
        assert_eq!(base, GOLDEN, "{base:#x}");
    }
}
