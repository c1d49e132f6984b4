//! Prometheus metrics of a front door, served as text at `GET /metrics` on
//! its port (next to the status page):
//!
//! - `quiver_alias_propagation_seconds` (histogram): for every alias change
//!   this front door saw, the time from coord stamping the change (the
//!   leader's clock when it proposed it) to this process routing by it. On
//!   one machine this is exact; across machines it includes their clock
//!   difference.
//! - `quiver_alias_epoch{alias}`, `quiver_alias_standby_lag_ms{alias}` and
//!   `quiver_alias_divergent_rows{alias}` (gauges; lag and divergence only
//!   while known), and the shard storage series (`crate::storage`).
//!
//! Built per scrape in a registry of their own (the `prometheus` crate),
//! next to the process's registry (`quiver_metrics`).

use std::collections::HashMap;

use parking_lot::Mutex;
use quiver_api::{AliasMeta, CatalogClient};
use quiver_metrics::{Histogram, HistogramOpts, IntGaugeVec, Opts, Registry, prometheus_core};

/// Upper bounds of the propagation histogram's buckets, in seconds.
pub const PROPAGATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A front door's metrics.
pub struct Metrics {
    pub alias_propagation: Histogram,
    /// The last epoch seen per alias (to tell which changed); None before
    /// the first state.
    seen: Mutex<Option<HashMap<String, u64>>>,
}

const PROPAGATION: &str = "quiver_alias_propagation_seconds";

impl Default for Metrics {
    fn default() -> Self {
        let opts = HistogramOpts::new(
            PROPAGATION,
            "Time from coord stamping an alias change to this front door routing by it.",
        )
        .buckets(PROPAGATION_BUCKETS.to_vec());
        Self {
            alias_propagation: Histogram::with_opts(opts)
                .unwrap_or_else(|e| panic!("metric {PROPAGATION}: {e}")),
            seen: Mutex::new(None),
        }
    }
}

impl Metrics {
    /// Feeds the aliases of a metadata state this process now routes by;
    /// records the propagation delay of each change it had not seen. The
    /// first call only learns the epochs (those changes predate us).
    pub fn aliases_seen<'a>(
        &self,
        aliases: impl IntoIterator<Item = (&'a String, &'a AliasMeta)>,
        now_ms: u64,
    ) {
        let mut seen = self.seen.lock();
        let mut next = HashMap::new();
        for (alias, meta) in aliases {
            let changed = seen
                .as_ref()
                .is_some_and(|old| old.get(alias).is_none_or(|e| *e < meta.epoch));
            if changed
                && let Some(event) = meta.history.last()
                && event.epoch == meta.epoch
            {
                let ms = now_ms.saturating_sub(event.at_ms);
                self.alias_propagation.observe(ms as f64 / 1000.0);
            }
            next.insert(alias.clone(), meta.epoch);
        }
        *seen = Some(next);
    }

    /// Alias changes timed so far.
    pub fn propagation_count(&self) -> u64 {
        self.alias_propagation.get_sample_count()
    }

    /// The metrics as Prometheus text: this front door's, from a registry
    /// built per scrape out of the catalog (`prometheus` crate).
    pub async fn render(&self, catalog: &dyn CatalogClient) -> String {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["alias"])
                .unwrap_or_else(|e| panic!("metric {name}: {e}"))
        };
        let epochs = gauge(
            "quiver_alias_epoch",
            "The alias's epoch (grows with every change).",
        );
        let lags = gauge(
            "quiver_alias_standby_lag_ms",
            "How far the collection a mirrored alias does not target is behind the one it does.",
        );
        let divergent = gauge(
            "quiver_alias_divergent_rows",
            "Rows that differ between the two collections of a mirrored alias.",
        );
        let mut aliases = catalog.aliases();
        aliases.sort();
        for (alias, target) in &aliases {
            let Some(meta) = catalog.alias(alias) else {
                continue;
            };
            epochs
                .with_label_values(&[alias.as_str()])
                .set(meta.epoch as i64);
            if meta.mirror.is_none() {
                continue;
            }
            let (lag, rows) = catalog.mirror_status(alias, target).await;
            if let Some(lag) = lag {
                lags.with_label_values(&[alias.as_str()]).set(lag as i64);
            }
            if let Some(rows) = rows {
                divergent
                    .with_label_values(&[alias.as_str()])
                    .set(rows as i64);
            }
        }
        let families: [Box<dyn prometheus_core::Collector>; 4] = [
            Box::new(self.alias_propagation.clone()),
            Box::new(epochs),
            Box::new(lags),
            Box::new(divergent),
        ];
        for f in families {
            if let Err(e) = registry.register(f) {
                tracing::warn!(error = %e, "alias metric not exported");
            }
        }
        let mut collections = catalog.collections();
        collections.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
        crate::storage::register_metrics(&registry, &collections, &catalog.storage().await);
        quiver_metrics::encode(&registry)
    }
}

/// The `q` quantile (0..=1) of a histogram as Prometheus text renders it:
/// the upper bound of the first bucket holding it (None: no observations or
/// beyond the last bound). For tools and tests reading `/metrics`.
pub fn quantile_from_text(text: &str, name: &str, q: f64) -> Option<f64> {
    quantile_of_buckets(&buckets_from_text(text, name), q)
}

/// The cumulative buckets `(le, count)` of histogram `name` in a scrape.
pub fn buckets_from_text(text: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket holding quantile `q` of cumulative
/// buckets (None when empty or past the last finite bucket).
pub fn quantile_of_buckets(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as u64;
    buckets
        .iter()
        .find(|(_, c)| *c >= rank)
        .map(|(le, _)| *le)
        .filter(|le| le.is_finite())
}

/// The `q` quantile (0..=1) of cumulative buckets (`+Inf` last) as
/// Prometheus's `histogram_quantile` estimates it: linear within the bucket
/// that holds it (from 0 for the first); in the `+Inf` bucket, the last
/// finite bound. None when empty.
pub fn histogram_quantile(buckets: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let i = buckets.iter().position(|(_, c)| *c as f64 >= rank)?;
    let (le, count) = buckets[i];
    let (lower, below) = if i == 0 { (0.0, 0) } else { buckets[i - 1] };
    if !le.is_finite() {
        return Some(lower);
    }
    if count == below {
        return Some(le);
    }
    Some(lower + (le - lower) * (rank - below as f64) / (count - below) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_api::AliasEvent;

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let inf = f64::INFINITY;
        assert_eq!(histogram_quantile(&[], 0.99), None);
        assert_eq!(histogram_quantile(&[(1.0, 0), (inf, 0)], 0.99), None);
        // 100 observations: 50 at or below 1, 100 at or below 2.
        let b = [(1.0, 50), (2.0, 100), (inf, 100)];
        assert_eq!(histogram_quantile(&b, 0.5), Some(1.0));
        assert_eq!(histogram_quantile(&b, 0.99), Some(1.98));
        assert_eq!(histogram_quantile(&[(1.0, 10), (inf, 10)], 0.5), Some(0.5));
        // Beyond the last finite bound: that bound.
        assert_eq!(histogram_quantile(&[(1.0, 1), (inf, 10)], 0.99), Some(1.0));
    }

    fn meta(epoch: u64, at_ms: u64) -> AliasMeta {
        AliasMeta {
            collection: "a".into(),
            epoch,
            mirror: None,
            history: vec![AliasEvent {
                epoch,
                at_ms,
                action: quiver_api::AliasAction::Alter,
                from: None,
                to: "a".into(),
                by: "t".into(),
                reason: String::new(),
            }],
        }
    }

    #[test]
    fn only_changes_seen_after_start_are_timed() {
        let m = Metrics::default();
        let name = "feed".to_string();
        m.aliases_seen([(&name, &meta(3, 1_000))], 50_000);
        assert_eq!(m.propagation_count(), 0, "predates this process");
        m.aliases_seen([(&name, &meta(3, 1_000))], 51_000);
        assert_eq!(m.propagation_count(), 0, "no change");
        m.aliases_seen([(&name, &meta(5, 60_000))], 60_040);
        m.aliases_seen([(&name, &meta(6, 61_000))], 61_700);
        assert_eq!(m.propagation_count(), 2);
        let other = "other".to_string();
        m.aliases_seen(
            [(&name, &meta(6, 61_000)), (&other, &meta(7, 62_000))],
            62_003,
        );
        assert_eq!(m.propagation_count(), 3, "a new alias counts");

        let registry = Registry::new();
        registry
            .register(Box::new(m.alias_propagation.clone()))
            .expect("registers");
        let text = quiver_metrics::encode(&registry).replace(PROPAGATION, "p");
        assert!(text.contains("p_bucket{le=\"0.005\"} 1"), "{text}");
        assert!(text.contains("p_bucket{le=\"0.05\"} 2"), "{text}");
        assert!(text.contains("p_bucket{le=\"1\"} 3"), "{text}");
        assert!(text.contains("p_bucket{le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("p_count 3"), "{text}");
        assert_eq!(quantile_from_text(&text, "p", 0.5), Some(0.05));
        assert_eq!(quantile_from_text(&text, "p", 0.99), Some(1.0));
        assert_eq!(quantile_from_text("", "p", 0.99), None);
    }
}
