//! The status page on the Milvus port: plain HTTP/1.1 next to gRPC, the
//! status JSON, and flips with a compare-and-swap guard.

use quiver_client::{Actor, CollectionSpec, MirrorSpec, Rows, SearchParams};
use quiver_server::StandaloneConfig;
use quiver_test_util::wait_for;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Server;

/// One HTTP/1.1 request (`Connection: close`); the status and the body.
pub(super) async fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    http_with(addr, method, path, body, "application/json").await
}

async fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    content_type: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or(""));
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("header end");
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// The response head of an empty POST with `content_type`.
async fn raw_head(addr: &str, path: &str, content_type: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: 0\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split_once("\r\n\r\n")
        .map_or(text.clone(), |(head, _)| head.to_string())
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        s = &rest[size + 2..];
    }
}

pub(super) async fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path, None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn alias<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["aliases"]
        .as_array()
        .expect("aliases")
        .iter()
        .find(|a| a["alias"] == name)
        .unwrap_or_else(|| panic!("alias {name} in {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_aliases_and_flips_with_compare_and_swap() {
    // Before the server (and its history sampler) starts: no flood shows up.
    let _quiet = crate::FRONT_DOOR_METRICS.write().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = StandaloneConfig::new(dir.path());
    // The charts' history samples every 200 ms here (5 s by default).
    config.status_history.interval_ms = 200;
    let server = Server::start_alone(config).await;
    let addr = server.addr.to_string();
    let client = server.client().await;
    for name in ["feed_a", "feed_b"] {
        client
            .create_collection(&CollectionSpec::new(name, 8))
            .await
            .expect("create collection");
    }
    let spec = MirrorSpec {
        alias: "feed".into(),
        primary: "feed_a".into(),
        standby: "feed_b".into(),
        auto_failover: false,
        max_lag_ms: None,
    };
    client
        .mirror_alias(&spec, &Actor::new("test", "set up"))
        .await
        .expect("mirror");

    // The page itself, over HTTP/1.1 on the gRPC port.
    let (status, page) = http(&addr, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("<title>Quiver status</title>"), "{page}");

    let s = get_json(&addr, "/api/status").await;
    let names: Vec<&str> = s["collections"]
        .as_array()
        .expect("collections")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["feed_a", "feed_b"]);
    assert_eq!(s["collections"][0]["shards"], 1);
    assert_eq!(s["collections"][0]["dim"], 8);
    assert_eq!(s["collections"][0]["aliases"], json!(["feed"]));
    let load = &s["collections"][0]["load"];
    assert_eq!(load["state"], "loaded", "{s}");
    assert_eq!(load["memory_bytes"], 0, "nothing sealed yet: {s}");
    let feed = alias(&s, "feed");
    assert_eq!(feed["target"], "feed_a");
    assert_eq!(feed["primary"], "feed_a");
    assert_eq!(feed["standby"], "feed_b");
    assert_eq!(feed["mirrored"], true);
    assert_eq!(
        feed["standby_lag_ms"], 0,
        "mirrored, nothing written: caught up"
    );
    // Divergence is unknown until the first pass of the check, then 0.
    wait_for(
        std::time::Duration::from_secs(30),
        "the first divergence check",
        async || {
            let s = get_json(&addr, "/api/status").await;
            let rows = alias(&s, "feed")["divergent_rows"].clone();
            assert!(
                rows == json!(0) || rows == Value::Null,
                "divergent_rows: {rows}"
            );
            rows == json!(0)
        },
    )
    .await
    .expect("divergence checked");
    let epoch = feed["epoch"].as_u64().expect("epoch");
    let roles: Vec<&str> = s["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["role"].as_str())
        .collect();
    assert_eq!(roles, ["coord", "datanode", "querynode", "proxy"]);
    assert!(
        s["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|n| n["healthy"] == true),
        "{s}"
    );
    assert_eq!(s["recent_flips"], json!([]));

    // A wrong expectation is refused and changes nothing.
    let (code, body) = http(
        &addr,
        "POST",
        "/api/aliases/feed/flip",
        Some(r#"{"expect": "feed_b", "reason": "stale page"}"#),
    )
    .await;
    assert_eq!(code, 409, "{body}");
    let refusal: Value = serde_json::from_str(&body).expect("JSON error");
    assert!(
        refusal["error"]
            .as_str()
            .is_some_and(|e| e.contains("feed_a")),
        "{body}"
    );
    let s = get_json(&addr, "/api/status").await;
    assert_eq!(alias(&s, "feed")["target"], "feed_a");
    assert_eq!(alias(&s, "feed")["epoch"].as_u64(), Some(epoch));

    // Bad requests: no expect, not JSON, unknown alias, unmirrored alias.
    let (code, _) = http(&addr, "POST", "/api/aliases/feed/flip", Some("{}")).await;
    assert_eq!(code, 400);
    let (code, _) = http(&addr, "POST", "/api/aliases/feed/flip", Some("nope")).await;
    assert_eq!(code, 400);
    let (code, _) = http_with(
        &addr,
        "POST",
        "/api/aliases/feed/flip",
        Some(r#"{"expect": "feed_a"}"#),
        "text/plain",
    )
    .await;
    assert_eq!(code, 415);
    let (code, body) = http(
        &addr,
        "POST",
        "/api/aliases/nope/flip",
        Some(r#"{"expect": "feed_a"}"#),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    client
        .create_alias("plain", "feed_a")
        .await
        .expect("plain alias");
    let (code, body) = http(
        &addr,
        "POST",
        "/api/aliases/plain/flip",
        Some(r#"{"expect": "feed_a"}"#),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = http(&addr, "GET", "/no/such/page", None).await;
    assert_eq!(code, 404);
    // A gRPC call to a service nobody serves still gets gRPC's UNIMPLEMENTED.
    let head = raw_head(&addr, "/quiver.nope.v1.Nope/Call", "application/grpc").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("grpc-status: 12"),
        "{head}"
    );

    // The right expectation flips, and the history says who and why.
    let (code, body) = http(
        &addr,
        "POST",
        "/api/aliases/feed/flip",
        Some(r#"{"expect": "feed_a", "reason": "drill"}"#),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let flipped: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(flipped["target"], "feed_b");
    assert!(flipped["epoch"].as_u64().expect("epoch") > epoch);

    let s = get_json(&addr, "/api/status").await;
    assert_eq!(alias(&s, "feed")["target"], "feed_b");
    let last = &s["recent_flips"][0];
    assert_eq!(last["alias"], "feed");
    assert_eq!(last["action"], "flip");
    assert_eq!(last["from"], "feed_a");
    assert_eq!(last["to"], "feed_b");
    assert_eq!(last["by"], "status-page");
    assert_eq!(last["reason"], "drill");

    // gRPC on the same port sees it too.
    let shown = client.show_alias("feed").await.expect("show alias");
    assert_eq!(shown.target, "feed_b");
    let event = shown.history.last().expect("history");
    assert_eq!(
        (event.action.as_str(), event.by.as_str()),
        ("flip", "status-page")
    );

    // Prometheus metrics on the same port: the flip was timed (the alias
    // changes before it too: the mirror, the plain alias), divergence and
    // lag of the mirrored alias are gauges.
    let (code, text) = http(&addr, "GET", "/metrics", None).await;
    assert_eq!(code, 200, "{text}");
    let count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("quiver_alias_propagation_seconds_count "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("propagation count in {text}"));
    assert!(count >= 2, "{text}");
    let p99 =
        quiver_admin::metrics::quantile_from_text(&text, "quiver_alias_propagation_seconds", 0.99);
    assert!(p99.is_some_and(|s| s <= 1.0), "in-process: {p99:?}\n{text}");
    assert!(
        text.contains("quiver_alias_divergent_rows{alias=\"feed\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("quiver_alias_standby_lag_ms{alias=\"feed\"} "),
        "{text}"
    );
    assert!(
        text.contains("quiver_alias_epoch{alias=\"plain\"} "),
        "{text}"
    );

    history_charts_follow_the_traffic(&addr, &client).await;

    server.close().await;
}

/// Series of the history document `h` are as long as its `t_ms`.
fn columns_line_up(h: &Value) {
    let n = h["t_ms"].as_array().expect("t_ms").len();
    for key in [
        "search_qps",
        "search_p99_ms",
        "insert_qps",
        "visible_p99_ms",
    ] {
        assert_eq!(h[key].as_array().map(Vec::len), Some(n), "{key}: {h}");
    }
    for f in h["failed"].as_array().expect("failed") {
        assert_eq!(f["per_s"].as_array().map(Vec::len), Some(n), "{h}");
    }
    for a in h["aliases"].as_array().expect("aliases") {
        for key in ["standby_lag_ms", "divergent_rows"] {
            assert_eq!(a[key].as_array().map(Vec::len), Some(n), "{h}");
        }
    }
}

fn any_above_zero(column: &Value) -> bool {
    column
        .as_array()
        .is_some_and(|v| v.iter().any(|x| x.as_f64().is_some_and(|x| x > 0.0)))
}

/// `/api/history`: the shape, and searches, inserts, a failed call and
/// freshness showing up in the next points (sampled every 200 ms).
async fn history_charts_follow_the_traffic(addr: &str, client: &quiver_client::Client) {
    let h = get_json(addr, "/api/history").await;
    assert_eq!(h["interval_ms"], 200, "{h}");
    assert_eq!(h["window_ms"], 900_000, "{h}");
    columns_line_up(&h);
    assert!(!any_above_zero(&h["search_qps"]), "no searches yet: {h}");
    // The page's assets are served from the binary.
    for (path, needle) in [
        ("/static/uplot.min.js", "uPlot"),
        ("/static/uplot.min.css", ".uplot"),
        ("/static/charts.js", "renderCharts"),
    ] {
        let (code, body) = http(addr, "GET", path, None).await;
        assert_eq!(code, 200, "{path}");
        assert!(body.contains(needle), "{path}");
    }

    let dim = 8;
    let data = super::vectors(50, dim, 7);
    client
        .insert(
            "feed",
            Rows::new(dim, data.clone()).with_ids((0..50).collect()),
        )
        .await
        .expect("insert");
    for i in 0..20 {
        client
            .search(
                "feed",
                &data[i * dim..(i + 1) * dim],
                dim,
                &SearchParams::new(3),
            )
            .await
            .expect("search");
    }
    // A failed call: Milvus code 100 (collection not found).
    assert!(
        client
            .search("nope", &data[..dim], dim, &SearchParams::new(1))
            .await
            .is_err()
    );
    let mut last = Value::Null;
    let seen = wait_for(
        std::time::Duration::from_secs(20),
        "searches, inserts, a failure and freshness in /api/history",
        async || {
            last = get_json(addr, "/api/history").await;
            columns_line_up(&last);
            any_above_zero(&last["search_qps"])
                && any_above_zero(&last["search_p99_ms"])
                && any_above_zero(&last["insert_qps"])
                && any_above_zero(&last["visible_p99_ms"])
                && last["freshness_here"] == true
                && last["failed"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| any_above_zero(&f["per_s"])))
        },
    )
    .await;
    assert!(seen.is_ok(), "{seen:?}: {last}");
    // The mirrored alias is charted with its lag (caught up: 0 or a few ms).
    let feed = last["aliases"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["alias"] == "feed"))
        .unwrap_or_else(|| panic!("feed in {last}"));
    assert!(
        feed["standby_lag_ms"]
            .as_array()
            .is_some_and(|v| v.iter().any(Value::is_u64)),
        "{last}"
    );
}
