//! The memory JSON paths cost a querynode, kept within a budget
//! (`querynode.json_path_cache_mib`).
//!
//! A filter on a JSON path (`meta["lang"] == "en"`) extracts the path's
//! values in every row of each sealed segment it tests (`paths.rs`) and
//! builds term and sorted indexes over them (`terms.rs`, `sorted.rs`). The
//! paths come from requests, so without a bound a client that filters on
//! many distinct paths (`meta["seen_123"]`, ...) would grow the querynode's
//! memory without end, and every segment that loads would extract them all
//! again (`warm.rs` keeps what segments built).
//!
//! Every path entry ([`crate::built::Built`] entries whose key is a JSON
//! path) is charged here with its bytes when it is built, except those of
//! the collection's declared JSON path indexes (the user asked for them;
//! they stay as long as their segment). When the charged bytes pass the
//! budget, the least recently used entries, of any segment, are dropped
//! until they fit: a search holding one keeps using it, and the next filter
//! on that path extracts it again. An entry larger than the whole budget is
//! used by the search that built it and not kept.
//!
//! Exposed as `quiver_querynode_json_path_cache_bytes` and
//! `quiver_querynode_json_path_cache_evictions_total`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use quiver_metrics::{IntCounterVec, IntGauge};

static BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    quiver_metrics::int_gauge(
        "quiver_querynode_json_path_cache_bytes",
        "Bytes held by the extracted values of JSON paths that filters tested and the indexes built from them (declared JSON path indexes aside), kept within querynode.json_path_cache_mib",
    )
});

static EVICTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    quiver_metrics::counter_vec(
        "quiver_querynode_json_path_cache_evictions_total",
        "Extracted JSON path values or indexes over them dropped, least recently used first, to keep within querynode.json_path_cache_mib (a later filter on the path extracts it again)",
        &[],
    )
});

/// The process's ledger (one querynode a process; the budget is set as it
/// starts).
pub(crate) static PATHS: LazyLock<Ledger> = LazyLock::new(|| Ledger::new(DEFAULT_MIB << 20, true));

/// `querynode.json_path_cache_mib`'s default.
pub const DEFAULT_MIB: u64 = 512;

/// Drops an entry from the map that holds it (when it is still the entry
/// charged: a key dropped and built again is a new entry).
pub(crate) type Evict = Box<dyn FnOnce() + Send>;

struct Entry {
    bytes: u64,
    last_use: Arc<AtomicU64>,
    evict: Evict,
}

#[derive(Default)]
struct Charges {
    entries: HashMap<u64, Entry>,
    total: u64,
}

/// Charged entries and their budget.
pub(crate) struct Ledger {
    charges: Mutex<Charges>,
    /// Bytes; 0: no limit.
    budget: AtomicU64,
    next_ticket: AtomicU64,
    /// Whether this is the process's ledger, which the metrics report.
    metrics: bool,
}

impl Ledger {
    pub(crate) fn new(budget: u64, metrics: bool) -> Ledger {
        Ledger {
            charges: Mutex::default(),
            budget: AtomicU64::new(budget),
            next_ticket: AtomicU64::new(1),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Charges> {
        self.charges.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the budget (bytes, 0: no limit) and drops what no longer fits.
    pub(crate) fn set_budget(&self, bytes: u64) {
        self.budget.store(bytes, Ordering::Release);
        let evicted = self.over_budget(&mut self.lock());
        self.run(evicted);
    }

    /// The ledger's clock, for "least recently used": each call is later
    /// than the last. Also the ticket of an entry about to be charged.
    pub(crate) fn tick(&self) -> u64 {
        self.next_ticket.fetch_add(1, Ordering::Relaxed)
    }

    /// Charges entry `ticket` with `bytes`, then drops the least recently
    /// used entries (this one too, if it alone passes the budget) until the
    /// charges fit. `evict` must not be called with the map that holds the
    /// entry locked by the caller.
    pub(crate) fn charge(&self, ticket: u64, bytes: u64, last_use: Arc<AtomicU64>, evict: Evict) {
        let evicted = {
            let mut c = self.lock();
            c.total += bytes;
            let entry = Entry {
                bytes,
                last_use,
                evict,
            };
            c.entries.insert(ticket, entry);
            self.over_budget(&mut c)
        };
        self.run(evicted);
    }

    /// Forgets the charges of `tickets` (their segment is gone).
    pub(crate) fn release(&self, tickets: &[u64]) {
        if tickets.is_empty() {
            return;
        }
        let mut c = self.lock();
        for t in tickets {
            if let Some(e) = c.entries.remove(t) {
                c.total -= e.bytes;
            }
        }
        self.report(&c);
    }

    /// The bytes charged now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.lock().total
    }

    /// Takes out the least recently used entries until the rest fit; their
    /// evictions run after the lock is released ([`Self::run`]), since they
    /// lock the maps that hold them.
    fn over_budget(&self, c: &mut Charges) -> Vec<Evict> {
        let budget = self.budget.load(Ordering::Acquire);
        let mut evicted = Vec::new();
        if budget > 0 && c.total > budget {
            let mut order: Vec<(u64, u64)> = (c.entries.iter())
                .map(|(t, e)| (e.last_use.load(Ordering::Relaxed), *t))
                .collect();
            order.sort_unstable();
            for (_, t) in order {
                if c.total <= budget {
                    break;
                }
                if let Some(e) = c.entries.remove(&t) {
                    c.total -= e.bytes;
                    evicted.push(e.evict);
                }
            }
        }
        self.report(c);
        evicted
    }

    fn run(&self, evicted: Vec<Evict>) {
        if self.metrics {
            EVICTIONS
                .with_label_values::<&str>(&[])
                .inc_by(evicted.len() as u64);
        }
        if !evicted.is_empty() {
            // What the shard's segments hold changed: `warm.json` follows.
            crate::built::note_change();
        }
        for e in evicted {
            e();
        }
    }

    fn report(&self, c: &Charges) {
        if self.metrics {
            BYTES.set(c.total as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn entry(ledger: &Ledger, bytes: u64, at: u64) -> (u64, Arc<AtomicBool>, Arc<AtomicU64>) {
        let gone = Arc::new(AtomicBool::new(false));
        let last_use = Arc::new(AtomicU64::new(at));
        let t = ledger.tick();
        let g = gone.clone();
        let evict = Box::new(move || g.store(true, Ordering::SeqCst));
        ledger.charge(t, bytes, last_use.clone(), evict);
        (t, gone, last_use)
    }

    #[test]
    fn the_least_recently_used_entries_go_until_the_rest_fit() {
        let l = Ledger::new(100, false);
        let (_, a, a_use) = entry(&l, 40, 1);
        let (_, b, _) = entry(&l, 40, 2);
        assert_eq!(l.bytes(), 80);
        // `a` used since `b`: `b` is the least recently used.
        a_use.store(3, Ordering::Relaxed);
        let (_, c, _) = entry(&l, 40, 4);
        assert!(b.load(Ordering::SeqCst) && !a.load(Ordering::SeqCst) && !c.load(Ordering::SeqCst));
        assert_eq!(l.bytes(), 80);
        // An entry past the whole budget takes everything with it, itself too.
        let (_, d, _) = entry(&l, 150, 5);
        assert!([&a, &c, &d].iter().all(|g| g.load(Ordering::SeqCst)));
        assert_eq!(l.bytes(), 0);
    }

    #[test]
    fn released_entries_are_not_charged_and_no_budget_keeps_everything() {
        let l = Ledger::new(0, false);
        let (t1, g1, _) = entry(&l, 1 << 40, 1);
        let (t2, _, _) = entry(&l, 10, 2);
        assert_eq!(l.bytes(), (1 << 40) + 10);
        assert!(!g1.load(Ordering::SeqCst));
        l.release(&[t1, t2, 999]);
        assert_eq!(l.bytes(), 0);
        // A budget set later drops what does not fit.
        let (_, g3, _) = entry(&l, 30, 3);
        let (_, g4, _) = entry(&l, 30, 4);
        l.set_budget(40);
        assert!(g3.load(Ordering::SeqCst) && !g4.load(Ordering::SeqCst));
        assert_eq!(l.bytes(), 30);
    }
}
