//! Where things live in the object store.
//!
//! - `wal/<collection_id>/<shard>/<seq:020>.wal` — one group-committed WAL batch per object;
//! - `segments/<collection_id>/<shard>/<segment_id:020>.seg` — a sealed segment;
//! - `segments/<collection_id>/<shard>/<segment_id:020>.idx` — its index bytes (opaque here);
//! - `mirror/<collection_id>/<shard>/cursor` — the last WAL seq whose writes a mirror shipped
//!   to the partner collection;
//! - `probe/<collection_id>/<shard>` — written and deleted again while a shard's WAL waits for
//!   a full or failing store to take writes again;
//! - `quarantine/wal/<collection_id>/<shard>/<seq:020>.<epoch>.wal` — a torn WAL tail, kept
//!   for inspection after recovery replaced it.

use object_store::path::Path as ObjectPath;

/// Prefix holding every WAL object of a shard.
pub fn wal_prefix(collection_id: u64, shard: u32) -> ObjectPath {
    ObjectPath::from(format!("wal/{collection_id}/{shard}"))
}

/// The WAL object holding batch `seq` of a shard.
pub fn wal_path(collection_id: u64, shard: u32, seq: u64) -> ObjectPath {
    ObjectPath::from(format!("wal/{collection_id}/{shard}/{seq:020}.wal"))
}

/// Prefix of a shard's mirror state.
pub fn mirror_prefix(collection_id: u64, shard: u32) -> ObjectPath {
    ObjectPath::from(format!("mirror/{collection_id}/{shard}"))
}

/// The mirror cursor of a shard.
pub fn mirror_cursor_path(collection_id: u64, shard: u32) -> ObjectPath {
    ObjectPath::from(format!("mirror/{collection_id}/{shard}/cursor"))
}

/// The object a stalled WAL writes to learn whether the store takes writes again.
pub fn wal_probe_path(collection_id: u64, shard: u32) -> ObjectPath {
    ObjectPath::from(format!("probe/{collection_id}/{shard}"))
}

/// The seq of a WAL object path, if `path` names one.
pub fn parse_wal_seq(path: &ObjectPath) -> Option<u64> {
    parse_numbered(path, ".wal")
}

/// Where a torn WAL object is copied before recovery replaces it.
pub fn wal_quarantine_path(collection_id: u64, shard: u32, seq: u64, epoch: u64) -> ObjectPath {
    ObjectPath::from(format!(
        "quarantine/wal/{collection_id}/{shard}/{seq:020}.{epoch}.wal"
    ))
}

/// Prefix holding every segment and index file of a shard.
pub fn segments_prefix(collection_id: u64, shard: u32) -> ObjectPath {
    ObjectPath::from(format!("segments/{collection_id}/{shard}"))
}

/// The segment file of `segment_id`.
pub fn segment_path(collection_id: u64, shard: u32, segment_id: u64) -> ObjectPath {
    ObjectPath::from(format!(
        "segments/{collection_id}/{shard}/{segment_id:020}.seg"
    ))
}

/// The index file of `segment_id`.
pub fn index_path(collection_id: u64, shard: u32, segment_id: u64) -> ObjectPath {
    ObjectPath::from(format!(
        "segments/{collection_id}/{shard}/{segment_id:020}.idx"
    ))
}

/// The segment id of a segment (`.seg`) path, if `path` names one.
pub fn parse_segment_id(path: &ObjectPath) -> Option<u64> {
    parse_numbered(path, ".seg")
}

/// The segment id of an index (`.idx`) path, if `path` names one.
pub fn parse_index_id(path: &ObjectPath) -> Option<u64> {
    parse_numbered(path, ".idx")
}

fn parse_numbered(path: &ObjectPath, ext: &str) -> Option<u64> {
    let name = path.filename()?;
    let digits = name.strip_suffix(ext)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        let p = wal_path(7, 3, 42);
        assert_eq!(p.as_ref(), "wal/7/3/00000000000000000042.wal");
        assert_eq!(parse_wal_seq(&p), Some(42));
        assert_eq!(parse_wal_seq(&segment_path(7, 3, 42)), None);
        let s = segment_path(7, 3, u64::MAX);
        assert_eq!(parse_segment_id(&s), Some(u64::MAX));
        assert_eq!(parse_index_id(&s), None);
        assert_eq!(parse_index_id(&index_path(7, 3, 5)), Some(5));
        assert_eq!(
            index_path(1, 0, 5).as_ref(),
            "segments/1/0/00000000000000000005.idx"
        );
        assert!(p.prefix_matches(&wal_prefix(7, 3)));
        assert_eq!(parse_wal_seq(&ObjectPath::from("wal/7/3/12.wal")), None);
    }
}
