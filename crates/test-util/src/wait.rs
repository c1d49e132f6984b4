//! Waiting on conditions: polled until they hold, never a fixed sleep.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

/// How often a condition is asked again.
const POLL: Duration = Duration::from_millis(10);
/// How often a blocking wait asks again: its conditions are usually other
/// processes (a CLI run, a status file), too costly to ask every 10 ms.
const POLL_BLOCKING: Duration = Duration::from_millis(100);

/// Polls `cond` until it holds; fails naming `what` after `timeout`.
///
/// `cond` is an async closure (`async || ...`) or a closure returning a
/// future (`|| async { ... }`).
pub async fn wait_for(
    timeout: Duration,
    what: &str,
    mut cond: impl AsyncFnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// [`wait_for`] for a thread outside any async runtime.
pub fn wait_for_blocking(
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(POLL_BLOCKING);
    }
}
