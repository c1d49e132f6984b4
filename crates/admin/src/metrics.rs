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
//!   while known).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use quiver_api::{AliasMeta, CatalogClient};

/// Upper bounds of the propagation histogram's buckets, in seconds.
pub const PROPAGATION_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of durations (lock-free observations).
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), plus one for +Inf.
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe_ms(&self, ms: u64) {
        let secs = ms as f64 / 1000.0;
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(ms * 1000, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Prometheus text lines for the histogram `name`.
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// A front door's metrics.
pub struct Metrics {
    pub alias_propagation: Histogram,
    /// The last epoch seen per alias (to tell which changed); None before
    /// the first state.
    seen: Mutex<Option<HashMap<String, u64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            alias_propagation: Histogram::new(&PROPAGATION_BUCKETS),
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
                self.alias_propagation
                    .observe_ms(now_ms.saturating_sub(event.at_ms));
            }
            next.insert(alias.clone(), meta.epoch);
        }
        *seen = Some(next);
    }

    /// The metrics as Prometheus text.
    pub async fn render(&self, catalog: &dyn CatalogClient) -> String {
        let mut out = String::new();
        self.alias_propagation.render(
            &mut out,
            "quiver_alias_propagation_seconds",
            "Time from coord stamping an alias change to this front door routing by it.",
        );
        let mut aliases = catalog.aliases();
        aliases.sort();
        let mut epochs = String::new();
        let mut lags = String::new();
        let mut divergent = String::new();
        for (alias, target) in &aliases {
            let Some(meta) = catalog.alias(alias) else {
                continue;
            };
            let label = escape(alias);
            let _ = writeln!(
                epochs,
                "quiver_alias_epoch{{alias=\"{label}\"}} {}",
                meta.epoch
            );
            if meta.mirror.is_none() {
                continue;
            }
            let (lag, rows) = catalog.mirror_status(alias, target).await;
            if let Some(lag) = lag {
                let _ = writeln!(
                    lags,
                    "quiver_alias_standby_lag_ms{{alias=\"{label}\"}} {lag}"
                );
            }
            if let Some(rows) = rows {
                let _ = writeln!(
                    divergent,
                    "quiver_alias_divergent_rows{{alias=\"{label}\"}} {rows}"
                );
            }
        }
        for (name, help, body) in [
            (
                "quiver_alias_epoch",
                "The alias's epoch (grows with every change).",
                epochs,
            ),
            (
                "quiver_alias_standby_lag_ms",
                "How far the collection a mirrored alias does not target is behind the one it does.",
                lags,
            ),
            (
                "quiver_alias_divergent_rows",
                "Rows that differ between the two collections of a mirrored alias.",
                divergent,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            out.push_str(&body);
        }
        let mut collections = catalog.collections();
        collections.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
        crate::storage::render_metrics(&mut out, &collections, &catalog.storage().await);
        out
    }
}

pub(crate) fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_api::AliasEvent;

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
        assert_eq!(m.alias_propagation.count(), 0, "predates this process");
        m.aliases_seen([(&name, &meta(3, 1_000))], 51_000);
        assert_eq!(m.alias_propagation.count(), 0, "no change");
        m.aliases_seen([(&name, &meta(5, 60_000))], 60_040);
        m.aliases_seen([(&name, &meta(6, 61_000))], 61_700);
        assert_eq!(m.alias_propagation.count(), 2);
        let other = "other".to_string();
        m.aliases_seen(
            [(&name, &meta(6, 61_000)), (&other, &meta(7, 62_000))],
            62_003,
        );
        assert_eq!(m.alias_propagation.count(), 3, "a new alias counts");

        let mut text = String::new();
        m.alias_propagation.render(&mut text, "p", "help");
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
