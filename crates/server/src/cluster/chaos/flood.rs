//! Connection flood: 10,000 TCP connections to the proxy that never speak
//! (no HTTP/2 preface). New clients must still connect and search at once
//! (each within 100 ms: a time bound), and the load must not fail.

use std::time::{Duration, Instant};

use anyhow::Result;
use quiver_client::SearchParams;
use tokio::net::TcpStream;

use super::load::{self, DIM};
use super::report::ScenarioReport;
use super::scenarios::{COLLECTION, Ctx};

const SILENT: usize = 10_000;
const NEW_CLIENTS: usize = 20;

pub(super) async fn connection_flood(ctx: &mut Ctx<'_>) -> Result<ScenarioReport> {
    let load = ctx.load().await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fds = quiver_rpc::accept::raise_fd_limit();
    let want = SILENT.min(usize::try_from(fds.saturating_sub(512)).unwrap_or(0));
    let proxy = ctx.file.proxy.clone();
    let mut silent = Vec::with_capacity(want);
    let mut refused = 0usize;
    for _ in 0..want {
        match TcpStream::connect(&proxy).await {
            Ok(s) => silent.push(s),
            Err(_) => refused += 1,
        }
    }
    let opened = silent.len();
    // New clients while the silent ones are held open.
    let mut times_ms = Vec::new();
    let mut failures = Vec::new();
    for i in 0..NEW_CLIENTS {
        let t0 = Instant::now();
        let r = async {
            let client = super::connect(&proxy).await?;
            client
                .search(
                    COLLECTION,
                    &load::vector(i as i64),
                    DIM,
                    &SearchParams::new(10),
                )
                .await?;
            anyhow::Ok(())
        };
        match tokio::time::timeout(Duration::from_secs(5), r).await {
            Ok(Ok(())) => times_ms.push(t0.elapsed().as_secs_f64() * 1000.0),
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(_) => failures.push("no answer within 5 s".into()),
        }
    }
    drop(silent);
    times_ms.sort_by(f64::total_cmp);
    let slowest = times_ms.last().copied().unwrap_or(0.0);
    let median = times_ms.get(times_ms.len() / 2).copied().unwrap_or(0.0);
    let fault = format!(
        "{opened} TCP connections to the proxy that never speak ({refused} refused by the kernel), held while {NEW_CLIENTS} new clients connect and search"
    );
    let mut r = ctx.finish("connection flood", &fault, load).await?;
    r.figure("silent_connections", opened);
    r.figure("new_client_median_ms", (median * 10.0).round() / 10.0);
    r.figure("new_client_slowest_ms", (slowest * 10.0).round() / 10.0);
    r.check(
        format!(
            "every new client is served ({} of {NEW_CLIENTS}; {failures:?})",
            times_ms.len()
        ),
        failures.is_empty(),
    );
    r.check_time(
        format!("a new client is served within 100 ms (slowest {slowest:.1} ms)"),
        failures.is_empty() && slowest <= 100.0,
    );
    r.check("0 failed searches", r.load.searches_failed == 0);
    r.check("0 failed inserts", r.load.inserts_failed == 0);
    Ok(r)
}
