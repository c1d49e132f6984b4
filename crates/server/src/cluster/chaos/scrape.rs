//! Reading the proxy's `/metrics` around a scenario: what the injected
//! fault did to the request series (docs/metrics.md), for the report.

use quiver_admin::metrics::quantile_of_buckets;

use super::report::ScenarioReport;
use super::scenarios::Ctx;

/// The proxy's address and its `/metrics` now (empty if it cannot be read).
pub(super) async fn before(ctx: &Ctx<'_>) -> (String, String) {
    let proxy = ctx.file.proxy.clone();
    let text = crate::cluster::local::http_get(&proxy, "/metrics")
        .await
        .unwrap_or_default();
    (proxy, text)
}

/// Adds to the report what the proxy's request series showed since
/// `before` (docs/metrics.md): searches and inserts, their p50 / p99 from
/// the latency histogram's delta, and calls that failed.
pub(super) async fn report(r: &mut ScenarioReport, proxy: &str, before: &str) {
    let after = crate::cluster::local::http_get(proxy, "/metrics")
        .await
        .unwrap_or_default();
    let calls = "quiver_rpc_requests_total";
    let latency = "quiver_rpc_request_duration_seconds";
    let kinds = [
        ("searches", "search", r#"method="Search""#),
        ("inserts", "insert", r#"method="Insert""#),
    ];
    for (count, kind, method) in kinds {
        let labels = [r#"service="MilvusService""#, method];
        let n = sum(&after, calls, &labels) - sum(before, calls, &labels);
        r.figure(&format!("metrics_{count}"), n);
        for (q, name) in [(0.5, "p50"), (0.99, "p99")] {
            let v = quantile_between(before, &after, latency, &labels, q);
            r.figure(&format!("metrics_{kind}_{name}_s"), v);
        }
    }
    r.figure("metrics_failed_calls", failures(&after) - failures(before));
}

/// The samples of `name` whose labels include every one of `labels`
/// (`key="value"` strings): (the labels text, the value).
fn samples<'a>(text: &'a str, name: &str, labels: &[&str]) -> Vec<(&'a str, f64)> {
    let open = format!("{name}{{");
    text.lines()
        .filter_map(|l| l.strip_prefix(&open))
        .filter_map(|rest| {
            let (labels_text, value) = rest.rsplit_once("} ")?;
            Some((labels_text, value.trim().parse().ok()?))
        })
        .filter(|(l, _)| labels.iter().all(|x| l.contains(x)))
        .collect()
}

/// The sum of the samples of `name` with `labels`.
pub(super) fn sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    samples(text, name, labels).iter().map(|(_, v)| v).sum()
}

/// Calls with a failure code (`code` other than 0) of any method.
pub(super) fn failures(text: &str) -> f64 {
    samples(text, "quiver_rpc_requests_total", &[])
        .iter()
        .filter(|(l, _)| !l.contains("code=\"0\""))
        .map(|(_, v)| v)
        .sum()
}

/// Cumulative buckets `(le, count)` of histogram `name` summed over the
/// series with `labels`.
fn buckets(text: &str, name: &str, labels: &[&str]) -> Vec<(f64, u64)> {
    let mut by_le: Vec<(f64, u64)> = Vec::new();
    for (l, v) in samples(text, &format!("{name}_bucket"), labels) {
        let Some(le) = l.split("le=\"").nth(1).and_then(|x| x.split('"').next()) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse() {
                Ok(x) => x,
                Err(_) => continue,
            }
        };
        match by_le.iter_mut().find(|(x, _)| *x == le) {
            Some((_, c)) => *c += v as u64,
            None => by_le.push((le, v as u64)),
        }
    }
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    by_le
}

/// Cumulative buckets of histogram `name` (series with `labels`) over what
/// was observed between two scrapes.
pub(super) fn buckets_between(
    before: &str,
    after: &str,
    name: &str,
    labels: &[&str],
) -> Vec<(f64, u64)> {
    let earlier = buckets(before, name, labels);
    buckets(after, name, labels)
        .into_iter()
        .map(|(le, c)| {
            let was = earlier
                .iter()
                .find(|(x, _)| *x == le)
                .map_or(0, |(_, c)| *c);
            (le, c.saturating_sub(was))
        })
        .collect()
}

/// The `q` quantile (a bucket's upper bound) of histogram `name` over what
/// was observed between two scrapes.
pub(super) fn quantile_between(
    before: &str,
    after: &str,
    name: &str,
    labels: &[&str],
    q: f64,
) -> Option<f64> {
    quantile_of_buckets(&buckets_between(before, after, name, labels), q)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "quiver_rpc_request_duration_seconds_bucket{method=\"Search\",service=\"MilvusService\",le=\"0.001\"} 10\n\
quiver_rpc_request_duration_seconds_bucket{method=\"Search\",service=\"MilvusService\",le=\"0.1\"} 10\n\
quiver_rpc_request_duration_seconds_bucket{method=\"Search\",service=\"MilvusService\",le=\"+Inf\"} 10\n\
quiver_rpc_requests_total{code=\"0\",method=\"Search\",service=\"MilvusService\"} 10\n";
    const AFTER: &str = "quiver_rpc_request_duration_seconds_bucket{method=\"Search\",service=\"MilvusService\",le=\"0.001\"} 15\n\
quiver_rpc_request_duration_seconds_bucket{method=\"Search\",service=\"MilvusService\",le=\"0.1\"} 20\n\
quiver_rpc_request_duration_seconds_bucket{method=\"Search\",service=\"MilvusService\",le=\"+Inf\"} 20\n\
quiver_rpc_requests_total{code=\"0\",method=\"Search\",service=\"MilvusService\"} 19\n\
quiver_rpc_requests_total{code=\"65535\",method=\"Insert\",service=\"MilvusService\"} 1\n";

    #[test]
    fn deltas_between_scrapes() {
        let search = ["method=\"Search\""];
        let name = "quiver_rpc_request_duration_seconds";
        assert_eq!(
            quantile_between(BEFORE, AFTER, name, &search, 0.5),
            Some(0.001)
        );
        assert_eq!(
            quantile_between(BEFORE, AFTER, name, &search, 0.99),
            Some(0.1)
        );
        assert_eq!(sum(AFTER, "quiver_rpc_requests_total", &search), 19.0);
        assert_eq!(failures(AFTER) - failures(BEFORE), 1.0);
        // An unlabelled histogram (the alias propagation's) reads alike.
        let before = "p_bucket{le=\"0.1\"} 2\np_bucket{le=\"+Inf\"} 3\n";
        let after = "p_bucket{le=\"0.1\"} 4\np_bucket{le=\"+Inf\"} 6\n";
        assert_eq!(
            buckets_between(before, after, "p", &[]),
            [(0.1, 2), (f64::INFINITY, 3)]
        );
    }
}
