//! The `quiver` binary's client commands, run as a child process against an
//! in-process server; `--json` output is parsed and checked.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use super::{Server, vectors, write_fvecs};

const DIM: usize = 8;

/// Runs `quiver ARGS --addr ADDR`.
async fn quiver(addr: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .args(["--addr", addr])
        .env_remove("QUIVER_ADDR")
        .env("RUST_BACKTRACE", "0")
        .output()
        .await
        .expect("run quiver")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed and print JSON lines; returns them.
async fn json_lines(addr: &str, args: &[&str]) -> Vec<Value> {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let out = quiver(addr, &all).await;
    assert!(
        out.status.success(),
        "quiver {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

async fn json(addr: &str, args: &[&str]) -> Value {
    let mut lines = json_lines(addr, args).await;
    assert_eq!(lines.len(), 1, "{args:?}: one JSON object");
    lines.remove(0)
}

/// Runs a command that must fail; returns its stderr.
async fn fails(addr: &str, args: &[&str]) -> String {
    let out = quiver(addr, args).await;
    let err = stderr(&out);
    assert!(!out.status.success(), "quiver {args:?} should fail");
    assert!(!err.contains("panicked"), "quiver {args:?} panicked: {err}");
    err
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_collection_insert_search_alias_with_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    // Both address forms.
    let addr = server.addr.to_string();
    let url = format!("http://{}", server.addr);

    let base = dir.path().join("base.fvecs");
    let data = vectors(100, DIM, 7);
    write_fvecs(&base, DIM, &data);
    let queries = dir.path().join("query.fvecs");
    write_fvecs(&queries, DIM, &data[..5 * DIM]);

    let created = json(
        &addr,
        &[
            "collection",
            "create",
            "films",
            "--dim",
            "8",
            "--metric",
            "l2",
            "--m",
            "8",
            "--ef-construction",
            "64",
        ],
    )
    .await;
    assert_eq!(created["created"], "films");
    assert_eq!(created["dim"], 8);
    assert_eq!(created["metric"], "L2");
    assert_eq!(created["m"], 8);
    let list = json(&url, &["collection", "list"]).await;
    assert_eq!(list["collections"], serde_json::json!(["films"]));

    let inserted = json(
        &addr,
        &["insert", "films", "--fvecs", path(&base), "--batch", "30"],
    )
    .await;
    assert_eq!(inserted["rows"], 100);
    assert_eq!(inserted["batches"], 4);
    assert!(
        inserted["rows_per_s"].as_f64().is_some_and(|r| r > 0.0),
        "{inserted}"
    );

    // Query i is row i: it finds itself first, at distance 0.
    let results = json_lines(
        &addr,
        &[
            "search",
            "films",
            "--fvecs",
            path(&queries),
            "--k",
            "3",
            "--ef",
            "32",
        ],
    )
    .await;
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["query"], i);
        let hits = r["hits"].as_array().expect("hits");
        assert_eq!(hits.len(), 3);
        assert_eq!(hits[0]["id"], i, "{r}");
        assert_eq!(hits[0]["distance"], 0.0, "{r}");
    }
    let results = json_lines(
        &addr,
        &[
            "search",
            "films",
            "--fvecs",
            path(&queries),
            "--k",
            "4",
            "--limit-queries",
            "2",
            "--filter",
            "id >= 50",
        ],
    )
    .await;
    assert_eq!(results.len(), 2);
    for r in &results {
        let hits = r["hits"].as_array().expect("hits");
        assert_eq!(hits.len(), 4);
        assert!(
            hits.iter()
                .all(|h| h["id"].as_i64().is_some_and(|id| id >= 50)),
            "{r}"
        );
    }

    let described = json(&addr, &["collection", "describe", "films"]).await;
    assert_eq!(described["name"], "films");
    assert_eq!(described["rows"], 100);
    assert_eq!(described["dim"], 8);
    assert_eq!(described["metric"], "L2");
    assert_eq!(described["auto_id"], false);
    assert_eq!(described["index"]["type"], "HNSW");
    assert_eq!(described["index"]["params"]["M"], 8);
    assert_eq!(described["fields"][0]["name"], "id");
    assert_eq!(described["fields"][1]["type"], "FloatVector");
    assert_eq!(described["loaded"], true);

    // Release and load: a released collection is described without a row
    // count, its searches fail saying so, and a load serves it again.
    assert_eq!(
        json(&addr, &["collection", "release", "films"]).await["released"],
        "films"
    );
    let described = json(&addr, &["collection", "describe", "films"]).await;
    assert_eq!(
        (&described["loaded"], &described["rows"]),
        (&Value::Bool(false), &Value::Null)
    );
    let err = fails(
        &addr,
        &["search", "films", "--fvecs", path(&queries), "--k", "1"],
    )
    .await;
    assert!(err.contains("not loaded") && err.contains("101"), "{err}");
    assert_eq!(
        json(&addr, &["collection", "load", "films"]).await["loaded"],
        "films"
    );
    assert_eq!(
        json(&addr, &["collection", "describe", "films"]).await["rows"],
        100
    );

    // Aliases.
    json(
        &addr,
        &[
            "collection",
            "create",
            "films_v2",
            "--dim",
            "8",
            "--auto-id",
        ],
    )
    .await;
    let a = json(&addr, &["alias", "create", "cinema", "films"]).await;
    assert_eq!(
        (&a["alias"], &a["collection"]),
        (&"cinema".into(), &"films".into())
    );
    let list = json(&addr, &["alias", "list"]).await;
    assert_eq!(
        list["aliases"],
        serde_json::json!([{"alias": "cinema", "collection": "films"}])
    );
    let by_alias = json(&addr, &["collection", "describe", "cinema"]).await;
    assert_eq!(by_alias["name"], "films");
    assert_eq!(by_alias["aliases"], serde_json::json!(["cinema"]));
    json(&addr, &["alias", "alter", "cinema", "films_v2"]).await;
    let list = json(&addr, &["alias", "list", "--collection", "films"]).await;
    assert_eq!(list["aliases"], serde_json::json!([]));
    let list = json(&addr, &["alias", "list", "--collection", "films_v2"]).await;
    assert_eq!(
        list["aliases"],
        serde_json::json!([{"alias": "cinema", "collection": "films_v2"}])
    );
    // Inserting through the alias writes to films_v2, which assigns its keys.
    let inserted = json(&addr, &["insert", "cinema", "--fvecs", path(&queries)]).await;
    assert_eq!(
        (&inserted["collection"], &inserted["rows"]),
        (&"films_v2".into(), &5.into())
    );
    json(&addr, &["alias", "drop", "cinema"]).await;
    assert_eq!(
        json(&addr, &["alias", "list"]).await["aliases"],
        serde_json::json!([])
    );

    let dropped = json(&addr, &["collection", "drop", "films_v2"]).await;
    assert_eq!(dropped["dropped"], "films_v2");
    let list = json(&addr, &["collection", "list"]).await;
    assert_eq!(list["collections"], serde_json::json!(["films"]));

    // Text output.
    let out = quiver(&addr, &["insert", "films", "--fvecs", path(&queries)]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("inserted 5 rows into films"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("rows/s"), "{}", stdout(&out));
    let out = quiver(
        &addr,
        &["search", "films", "--fvecs", path(&queries), "--k", "1"],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("query 0: 0 (0)"),
        "{}",
        stdout(&out)
    );
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_errors_are_clear_and_exit_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    let addr = server.addr.to_string();

    let err = fails(&addr, &["collection", "describe", "nope"]).await;
    assert!(err.contains("collection not found: nope"), "{err}");
    assert!(err.contains("Milvus code 100"), "{err}");
    let err = fails(&addr, &["collection", "drop", "nope", "--json"]).await;
    assert!(err.contains("Milvus code 100"), "{err}");
    let err = fails(&addr, &["alias", "drop", "nope"]).await;
    assert!(err.contains("alias not found: nope"), "{err}");

    json(&addr, &["collection", "create", "c", "--dim", "8"]).await;
    let err = fails(&addr, &["collection", "create", "c", "--dim", "16"]).await;
    assert!(err.contains("already exists"), "{err}");
    let err = fails(
        &addr,
        &["collection", "create", "bad", "--dim", "8", "--m", "1"],
    )
    .await;
    assert!(err.contains("params.M"), "{err}");

    // A file of the wrong dimension.
    let wrong = dir.path().join("wrong.fvecs");
    write_fvecs(&wrong, 3, &vectors(4, 3, 1));
    let err = fails(&addr, &["insert", "c", "--fvecs", path(&wrong)]).await;
    assert!(err.contains("dim 3") && err.contains("dim 8"), "{err}");
    let err = fails(&addr, &["search", "c", "--fvecs", path(&wrong), "--json"]).await;
    assert!(err.contains("Milvus code 1100"), "{err}");
    let err = fails(
        &addr,
        &[
            "insert",
            "c",
            "--fvecs",
            path(&dir.path().join("missing.fvecs")),
        ],
    )
    .await;
    assert!(err.contains("missing.fvecs"), "{err}");
    let base = dir.path().join("base.fvecs");
    write_fvecs(&base, 8, &vectors(4, 8, 1));
    let err = fails(
        &addr,
        &["search", "c", "--fvecs", path(&base), "--filter", "id >"],
    )
    .await;
    assert!(err.contains("Milvus code 1100"), "{err}");

    // Nothing listening, and a malformed address.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let err = fails(&closed, &["collection", "list"]).await;
    assert!(err.contains("cannot connect"), "{err}");
    let err = fails("not an address", &["collection", "list", "--json"]).await;
    assert!(err.contains("invalid address"), "{err}");
    server.close().await;
}

/// `quiver alias mirror|show|flip|pin|unpin` and `alter --expect`: the admin
/// API end to end (CLI -> quiver.admin.v1 -> coord -> cache -> show).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_mirrored_alias_flip_pin_and_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    let addr = server.addr.to_string();
    for (name, dim) in [("feed_a", "8"), ("feed_b", "8"), ("feed_c", "16")] {
        json(&addr, &["collection", "create", name, "--dim", dim]).await;
    }

    // Mirroring needs two collections of the same shape.
    let err = fails(
        &addr,
        &[
            "alias",
            "mirror",
            "feed",
            "--primary",
            "feed_a",
            "--standby",
            "feed_c",
        ],
    )
    .await;
    assert!(
        err.contains("invalid standby") && err.contains("schema differs"),
        "{err}"
    );
    let err = fails(&addr, &["alias", "show", "feed"]).await;
    assert!(err.contains("alias \"feed\" does not exist"), "{err}");

    let m = json(
        &addr,
        &[
            "alias",
            "mirror",
            "feed",
            "--primary",
            "feed_a",
            "--standby",
            "feed_b",
            "--auto-failover",
            "--max-lag-ms",
            "250",
            "--by",
            "sre-1",
            "--reason",
            "set up",
        ],
    )
    .await;
    assert_eq!(
        (&m["target"], &m["primary"], &m["standby"]),
        (
            &Value::from("feed_a"),
            &Value::from("feed_a"),
            &Value::from("feed_b")
        )
    );
    assert_eq!(
        (&m["auto_failover"], &m["max_lag_ms"], &m["pinned"]),
        (&Value::from(true), &Value::from(250), &Value::from(false))
    );
    for key in ["epoch", "standby_lag_ms", "divergent_rows", "history"] {
        assert!(m.get(key).is_some(), "alias show --json has {key}: {m}");
    }
    let e0 = m["epoch"].as_u64().expect("epoch");

    // Compare-and-swap: a flip expecting the wrong target changes nothing.
    let err = fails(&addr, &["alias", "flip", "feed", "--expect", "feed_b"]).await;
    assert!(
        err.contains("invalid expect") && err.contains("nothing was changed"),
        "{err}"
    );
    let f = json(
        &addr,
        &[
            "alias", "flip", "feed", "--expect", "feed_a", "--by", "sre-1", "--reason", "drill",
        ],
    )
    .await;
    assert_eq!(f["target"], "feed_b");
    let e1 = f["epoch"].as_u64().expect("epoch");
    assert!(e1 > e0, "a flip takes a new epoch");
    // Requests through the alias now go to feed_b.
    let d = json(&addr, &["collection", "describe", "feed"]).await;
    assert_eq!(d["name"], "feed_b");

    let p = json(&addr, &["alias", "pin", "feed", "--reason", "maintenance"]).await;
    assert_eq!(
        (&p["pinned"], &p["target"]),
        (&Value::from(true), &Value::from("feed_b"))
    );
    json(&addr, &["alias", "unpin", "feed"]).await;
    let err = fails(
        &addr,
        &["alias", "alter", "feed", "feed_c", "--expect", "feed_b"],
    )
    .await;
    assert!(err.contains("can only target one of them"), "{err}");
    let back = json(
        &addr,
        &[
            "alias", "alter", "feed", "feed_a", "--expect", "feed_b", "--reason", "failback",
        ],
    )
    .await;
    assert_eq!(back["target"], "feed_a");

    let s = json(&addr, &["alias", "show", "feed"]).await;
    let history = s["history"].as_array().expect("history");
    let actions: Vec<&str> = history
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["mirror", "flip", "pin", "unpin", "alter"]);
    let flip = &history[1];
    assert_eq!(
        (
            &flip["from"],
            &flip["to"],
            &flip["by"],
            &flip["reason"],
            &flip["epoch"]
        ),
        (
            &Value::from("feed_a"),
            &Value::from("feed_b"),
            &Value::from("sre-1"),
            &Value::from("drill"),
            &Value::from(e1)
        )
    );
    assert!(
        history[0]["from"].is_null(),
        "a new alias comes from nowhere"
    );
    assert!(
        history[4]["by"]
            .as_str()
            .is_some_and(|b| b.starts_with("cli:")),
        "{s}"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let at = flip["at_ms"].as_u64().expect("at_ms");
    assert!(
        at <= now_ms && now_ms - at < 600_000,
        "at_ms {at} is wall-clock ms"
    );
    assert!(
        flip["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{flip}"
    );

    // Text output names the target and the pair.
    let out = quiver(&addr, &["alias", "show", "feed"]).await;
    let text = stdout(&out);
    assert!(
        text.contains("feed -> feed_a") && text.contains("standby feed_b"),
        "{text}"
    );

    // Verify: the pair holds the same rows (none yet); an unmirrored alias
    // is refused naming the rule.
    let v = json(
        &addr,
        &["alias", "verify", "feed", "--settle-ms", "100", "--repair"],
    )
    .await;
    assert_eq!(
        (
            &v["target"],
            &v["other"],
            &v["divergent_rows"],
            &v["remaining_rows"]
        ),
        (
            &Value::from("feed_a"),
            &Value::from("feed_b"),
            &Value::from(0),
            &Value::from(0)
        ),
        "{v}"
    );
    json(&addr, &["alias", "create", "plain", "feed_c"]).await;
    let err = fails(&addr, &["alias", "verify", "plain"]).await;
    assert!(err.contains("not a mirrored alias"), "{err}");
    server.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_compact_waits_and_reports_what_was_compacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("data")).await;
    let addr = server.addr.to_string();
    let base = dir.path().join("base.fvecs");
    write_fvecs(&base, DIM, &vectors(100, DIM, 3));
    json(&addr, &["collection", "create", "feed", "--dim", "8"]).await;
    let client = server.client().await;
    // 100 keys, then 10 of them again, each time sealed: the first segment
    // is 10 % dead, under the background threshold (20 %), so only a
    // manual compaction rewrites it (merging the small second one in).
    let again = dir.path().join("again.fvecs");
    write_fvecs(&again, DIM, &vectors(10, DIM, 4));
    for file in [&base, &again] {
        json(&addr, &["insert", "feed", "--fvecs", path(file)]).await;
        client.flush(&["feed"]).await.expect("flush");
    }
    let done = json(&addr, &["collection", "compact", "feed", "--wait"]).await;
    assert_eq!(done["collection"], "feed");
    assert_eq!(done["state"], "completed");
    let plans = done["plans"].as_array().expect("plans");
    assert_eq!(plans.len(), 1, "{done}");
    assert_eq!(
        plans[0]["sources"].as_array().map(Vec::len),
        Some(2),
        "{done}"
    );
    assert!(plans[0]["target"].as_i64().is_some(), "{done}");
    // What is left shows in describe, on the status page and in /metrics.
    let mut described = serde_json::Value::Null;
    quiver_test_util::wait_for(
        std::time::Duration::from_secs(20),
        "describe to show the compacted storage",
        async || {
            described = json(&addr, &["collection", "describe", "feed"]).await;
            let s = &described["storage"];
            s["segments"] == 1 && s["live_rows"] == 100 && s["dead_rows"] == 0 && s["bytes"] != 0
        },
    )
    .await
    .expect("storage");
    let s = &described["storage"];
    assert!(s["compactions"].as_u64() >= Some(1), "{described}");
    assert!(s["last_compaction_ms"].as_u64() > Some(0), "{described}");
    assert_eq!(s["shards"].as_array().map(Vec::len), Some(1), "{described}");
    let status = super::status_page::get_json(&addr, "/api/status").await;
    assert_eq!(
        status["collections"][0]["storage"]["segments"], 1,
        "{status}"
    );
    let (_, metrics) = super::status_page::http(&addr, "GET", "/metrics", None).await;
    for line in [
        "quiver_shard_segments{collection=\"feed\",shard=\"0\"} 1",
        "quiver_shard_live_rows{collection=\"feed\",shard=\"0\"} 100",
        "quiver_shard_dead_rows{collection=\"feed\",shard=\"0\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }
    assert_eq!(client.count("feed").await.expect("count"), 100);
    // Without --wait it answers at once with the id to follow.
    let started = json(&addr, &["collection", "compact", "feed"]).await;
    assert!(started["compaction_id"].as_i64().is_some(), "{started}");
    let err = fails(&addr, &["collection", "compact", "nope"]).await;
    assert!(err.contains("nope"), "{err}");
    server.close().await;
}
