//! A segment's indexes of one kind (term, sorted, sparse), each built once
//! per key: ahead of searches when the segment loads
//! ([`crate::view::LoadedSegment::warm`]: the keys the shard's other
//! segments have built, and the collection's declared scalar indexes), or
//! else by the first search that needs it. Counted by
//! `quiver_querynode_segment_index_builds_total{kind, when}`: builds at
//! `when="search"` are the ones a search waited for.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use quiver_metrics::IntCounterVec;

static BUILDS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    quiver_metrics::counter_vec(
        "quiver_querynode_segment_index_builds_total",
        "Indexes of sealed segments built by a querynode (kind: terms, sorted, sparse, path: the extracted values of a JSON path), when the segment loads or by the first search that needs one (a search waits for it)",
        &["kind", "when"],
    )
});

/// Indexes searches have built in this process, of any shard.
static SEARCH_BUILT: AtomicU64 = AtomicU64::new(0);

/// How many indexes searches have built in this process: a replica whose
/// kept keys (`warm.rs`) are older keeps them again
/// (`ShardReplica::remember_search_builds`).
pub(crate) fn search_builds() -> u64 {
    SEARCH_BUILT.load(Ordering::Acquire)
}

/// When an index is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    Load,
    Search,
}

impl When {
    fn label(self) -> &'static str {
        match self {
            When::Load => "load",
            When::Search => "search",
        }
    }
}

/// Built indexes by key (None: the column cannot take this kind).
pub(crate) struct Built<K, V> {
    kind: &'static str,
    map: Mutex<HashMap<K, Option<Arc<V>>>>,
}

impl<K: Eq + Hash + Clone, V> Built<K, V> {
    pub(crate) fn new(kind: &'static str) -> Self {
        Self {
            kind,
            map: Mutex::new(HashMap::new()),
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
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = map.get(key) {
            return found.clone();
        }
        let index = build().map(Arc::new);
        if index.is_some() {
            BUILDS.with_label_values(&[self.kind, when.label()]).inc();
        }
        map.insert(key.clone(), index.clone());
        if index.is_some() && when == When::Search {
            SEARCH_BUILT.fetch_add(1, Ordering::Release);
        }
        index
    }

    /// The index of `key` if it was built; builds nothing.
    pub(crate) fn built(&self, key: &K) -> Option<Arc<V>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned().flatten()
    }

    /// The keys whose index exists.
    pub(crate) fn keys(&self) -> Vec<K> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        (map.iter())
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Whether `key` was tried (built or found not to apply).
    #[cfg(test)]
    pub(crate) fn tried(&self, key: &K) -> bool {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.contains_key(key)
    }
}
