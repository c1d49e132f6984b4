//! The `quiver` binary's library: the cluster process runners and local
//! cluster tooling, benchmarks and the crash-test writer. Every role is
//! built by `quiver_roles`; `main.rs` is only argument parsing.

pub mod bench_churn;
pub mod bench_index;
pub mod bench_ingest;
pub mod bench_search;
pub mod bench_util;
pub mod cluster;
pub mod crash;

pub use quiver_roles::{Standalone, StandaloneConfig};

/// Logs to stderr, filtered by `RUST_LOG` (default: info).
pub fn init_tracing(service: &str) {
    quiver_metrics::trace::init(service);
}

/// Resolves on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
