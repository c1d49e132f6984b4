//! A segment's indexes of one kind (term, sorted, sparse), each built once
//! per key: ahead of searches when the segment loads
//! ([`crate::view::LoadedSegment::warm`]: the keys the shard's other
//! segments have built, and the collection's declared scalar indexes), or
//! else by the first search that needs it. Counted by
//! `quiver_querynode_segment_index_builds_total{kind, when}`: builds at
//! `when="search"` are the ones a search waited for.
//!
//! Entries whose key is a JSON path (the path's extracted values, and the
//! term and sorted indexes built from them) are charged to the process's
//! JSON path budget (`path_cache.rs`), which drops the least recently used
//! when they pass it; a declared JSON path index's are not.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use quiver_metrics::IntCounterVec;

use crate::path_cache::Ledger as PathLedger;

static BUILDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    quiver_metrics::counter_vec(
        "quiver_querynode_segment_index_builds_total",
        "Indexes of sealed segments built by a querynode (kind: terms, sorted, sparse, path: the extracted values of a JSON path), when the segment loads or by the first search that needs one (a search waits for it)",
        &["kind", "when"],
    )
});

/// Indexes searches have built, and entries the JSON path budget dropped,
/// in this process, of any shard.
static SEARCH_BUILT: AtomicU64 = AtomicU64::new(0);

/// How many times searches built an index or the JSON path budget dropped
/// one in this process: a replica whose kept keys (`warm.rs`) are older
/// keeps them again (`ShardReplica::remember_search_builds`).
pub(crate) fn search_builds() -> u64 {
    SEARCH_BUILT.load(Ordering::Acquire)
}

/// What a segment holds changed outside a search's build.
pub(crate) fn note_change() {
    SEARCH_BUILT.fetch_add(1, Ordering::Release);
}

/// When an index is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// As the segment loads, for a collection's declared index: kept as
    /// long as the segment.
    Declared,
    /// As the segment loads, for a key the shard's segments used.
    Load,
    Search,
}

impl When {
    fn label(self) -> &'static str {
        match self {
            When::Declared | When::Load => "load",
            When::Search => "search",
        }
    }
}

/// What keeping a built index costs.
pub(crate) trait HeapBytes {
    /// Bytes on the heap.
    fn heap_bytes(&self) -> usize;
}

impl HeapBytes for quiver_common::StoredColumn {
    fn heap_bytes(&self) -> usize {
        quiver_common::StoredColumn::heap_bytes(self)
    }
}

/// Bytes a map entry costs beside its index (key, slot, hash table).
const ENTRY_BYTES: usize = 96;

struct Slot<V> {
    /// None: the column cannot take this kind.
    index: Option<Arc<V>>,
    /// The entry's charge to a JSON path budget: its ticket and last use.
    charge: Option<(u64, Arc<AtomicU64>)>,
}

type Map<K, V> = Arc<Mutex<HashMap<K, Slot<V>>>>;

fn lock<K, V>(map: &Map<K, V>) -> std::sync::MutexGuard<'_, HashMap<K, Slot<V>>> {
    map.lock().unwrap_or_else(|p| p.into_inner())
}

/// Built indexes by key.
pub(crate) struct Built<K, V> {
    kind: &'static str,
    map: Map<K, V>,
    /// Whether a key's entry is charged to `ledger` (a JSON path's).
    charged: fn(&K) -> bool,
    ledger: &'static PathLedger,
}

impl<K: Eq + Hash + Clone + Send + 'static, V: HeapBytes + Send + Sync + 'static> Built<K, V> {
    /// Entries of `kind`; those of keys `charged` says are charged to the
    /// process's JSON path budget.
    pub(crate) fn new(kind: &'static str, charged: fn(&K) -> bool) -> Self {
        Self::with_ledger(kind, charged, &crate::path_cache::PATHS)
    }

    /// [`Self::new`] charging `ledger`.
    pub(crate) fn with_ledger(
        kind: &'static str,
        charged: fn(&K) -> bool,
        ledger: &'static PathLedger,
    ) -> Self {
        Self {
            kind,
            map: Arc::default(),
            charged,
            ledger,
        }
    }

    /// The index of `key`, built by `build` the first time (concurrent
    /// callers wait for that build).
    pub(crate) fn get(
        &self,
        key: &K,
        when: When,
        build: impl FnOnce() -> Option<V>,
    ) -> Option<Arc<V>> {
        let mut map = lock(&self.map);
        if let Some(found) = map.get(key) {
            if let Some((_, last_use)) = &found.charge {
                last_use.store(self.ledger.tick(), Ordering::Relaxed);
            }
            return found.index.clone();
        }
        let index = build().map(Arc::new);
        if index.is_some() {
            BUILDS.with_label_values(&[self.kind, when.label()]).inc();
        }
        if index.is_some() && when == When::Search {
            SEARCH_BUILT.fetch_add(1, Ordering::Release);
        }
        if when == When::Declared || !(self.charged)(key) {
            let slot = Slot {
                index: index.clone(),
                charge: None,
            };
            map.insert(key.clone(), slot);
            return index;
        }
        let ticket = self.ledger.tick();
        let last_use = Arc::new(AtomicU64::new(ticket));
        let slot = Slot {
            index: index.clone(),
            charge: Some((ticket, last_use.clone())),
        };
        map.insert(key.clone(), slot);
        drop(map);
        let bytes = ENTRY_BYTES + index.as_deref().map_or(0, HeapBytes::heap_bytes);
        let (weak, key) = (Arc::downgrade(&self.map), key.clone());
        let evict = Box::new(move || {
            let Some(map) = weak.upgrade() else { return };
            let mut map = lock(&map);
            if (map.get(&key)).is_some_and(|s| s.charge.as_ref().is_some_and(|c| c.0 == ticket)) {
                map.remove(&key);
            }
        });
        self.ledger.charge(ticket, bytes as u64, last_use, evict);
        index
    }

    /// The index of `key` if it was built; builds nothing.
    pub(crate) fn built(&self, key: &K) -> Option<Arc<V>> {
        let map = lock(&self.map);
        let slot = map.get(key)?;
        if let Some((_, last_use)) = &slot.charge {
            last_use.store(self.ledger.tick(), Ordering::Relaxed);
        }
        slot.index.clone()
    }

    /// The keys whose index exists.
    pub(crate) fn keys(&self) -> Vec<K> {
        let map = lock(&self.map);
        (map.iter())
            .filter(|(_, v)| v.index.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether `key` was tried (built or found not to apply).
    #[cfg(test)]
    pub(crate) fn tried(&self, key: &K) -> bool {
        lock(&self.map).contains_key(key)
    }
}

impl<K, V> Drop for Built<K, V> {
    /// The segment is gone: its entries are no longer charged.
    fn drop(&mut self) {
        let tickets: Vec<u64> = (lock(&self.map).values())
            .filter_map(|s| s.charge.as_ref().map(|c| c.0))
            .collect();
        self.ledger.release(&tickets);
    }
}
