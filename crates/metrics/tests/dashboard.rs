//! The Grafana dashboard (`deploy/grafana/quiver.json`) parses as a
//! dashboard, and every series its queries name is one Quiver exports:
//! defined in the code (a `"quiver_…"` metric name in `crates/`) and listed
//! in docs/metrics.md. (The multi-process cluster test scrapes the series
//! live from every role.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `quiver_…` names in `text` (metric-name characters after the prefix).
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("quiver_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// A histogram's or counter's series as its family's name.
fn family(series: &str) -> &str {
    ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| series.strip_suffix(s))
        .unwrap_or(series)
}

fn rust_sources(dir: &Path, out: &mut String) {
    for e in std::fs::read_dir(dir).expect("readable").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push_str(&std::fs::read_to_string(&p).expect("utf8"));
        }
    }
}

#[test]
fn the_dashboard_names_only_exported_series() {
    let text =
        std::fs::read_to_string(repo().join("deploy/grafana/quiver.json")).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut queried = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("a panel has a title");
        let targets = p["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("a PromQL expression");
            let found = names(expr);
            assert!(!found.is_empty(), "{title}: names no Quiver series: {expr}");
            queried.extend(found);
        }
    }
    let mut code = String::new();
    rust_sources(&repo().join("crates"), &mut code);
    let defined: BTreeSet<String> = names(&code)
        .into_iter()
        .filter(|n| code.contains(&format!("\"{n}\"")))
        .collect();
    let documented = names(&std::fs::read_to_string(repo().join("docs/metrics.md")).expect("docs"));
    for series in &queried {
        let f = family(series);
        assert!(
            defined.contains(f),
            "{series}: no metric {f:?} is defined in crates/"
        );
        assert!(
            documented.contains(f),
            "{series}: {f:?} is not in docs/metrics.md"
        );
    }
}
