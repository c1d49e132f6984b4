//! Running a role's gRPC server and tasks, and stopping them together.

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio_rustls::rustls::ServerConfig;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;

/// How long [`bind`] waits for a port that is still in use.
pub const BIND_PATIENCE: Duration = Duration::from_secs(15);

/// Binds a role's listening port. A port still in use is retried for up to
/// `patience`: a process restarted right after `kill -9` can find its port
/// held for a moment by the predecessor's threads that are still exiting, or
/// by a connection's short-lived local port. Any other error (a bad address,
/// no permission) fails at once, naming the address.
pub async fn bind<A>(addr: A, patience: Duration) -> Result<TcpListener>
where
    A: ToSocketAddrs + std::fmt::Display + Copy,
{
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(20);
    loop {
        match listen(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                tracing::info!(%addr, "port still in use; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
        }
    }
}

/// The listen backlog of every role's port: room for a burst of new
/// connections while the accept loop is descheduled. The default, 128,
/// overflowed under a connection flood and cost new clients a 1 s SYN
/// retransmit; 4,096 let a flood queue so many that a new client waited
/// ~200 ms behind them. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 1024;

/// Binds `addr` (the first address it resolves to) with [`LISTEN_BACKLOG`].
async fn listen<A: ToSocketAddrs>(addr: A) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// A role's internal gRPC services with `GET /metrics` and the probes
/// (`/livez`, `/readyz` answered by `ready`) beside them, every call
/// counted and timed (`quiver_metrics`) and its internal protocol checked
/// (`quiver_metrics::protocol`); served with HTTP/1.1 accepted so a scraper, a
/// kubelet or `curl` can read them.
pub(crate) fn with_metrics(routes: Routes, ready: quiver_metrics::health::Readiness) -> Routes {
    let router = routes
        .into_axum_router()
        .merge(quiver_metrics::routes_with_probes(ready))
        .layer(axum::middleware::from_fn(quiver_metrics::protocol::check))
        .layer(axum::middleware::from_fn(quiver_metrics::rpc::track));
    Routes::from(router)
}

/// A role's server and background tasks.
pub struct Running {
    server: JoinHandle<Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Serves `routes` on `listener` (HTTP/1.1 accepted when `http1`, for
    /// the status page) until `shutdown` is cancelled; in-flight calls
    /// drain before the server task ends. Over TLS when `tls` is given
    /// (mutual TLS when it verifies clients); a connection that fails the
    /// handshake is closed. Connections are admitted by
    /// [`quiver_rpc::accept::incoming`] (silent ones cannot pile up).
    pub(crate) fn serve_tls(
        routes: Routes,
        listener: TcpListener,
        http1: bool,
        tls: Option<Arc<ServerConfig>>,
        shutdown: CancellationToken,
    ) -> Running {
        let router = Server::builder().accept_http1(http1).add_routes(routes);
        let stop = shutdown.cancelled_owned();
        let server = tokio::spawn(async move {
            let incoming = quiver_rpc::accept::incoming(
                listener,
                tls,
                quiver_rpc::accept::AcceptLimits::default(),
            );
            router
                .serve_with_incoming_shutdown(incoming, stop)
                .await
                .context("gRPC server")
        });
        Running {
            server,
            tasks: Vec::new(),
        }
    }

    /// Adds background tasks (stopped by the role's shutdown token, or
    /// aborted by [`Running::abort`]).
    pub(crate) fn with_tasks(mut self, tasks: impl IntoIterator<Item = JoinHandle<()>>) -> Self {
        self.tasks.extend(tasks);
        self
    }

    /// Waits (after the role's shutdown token was cancelled) until the
    /// server has drained and every task has ended.
    pub async fn finish(self) {
        match self.server.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "gRPC server"),
            Err(e) if !e.is_cancelled() => tracing::warn!(error = %e, "gRPC server task"),
            _ => {}
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Stops the server and every task at once (a crash, for tests).
    pub fn abort(&self) {
        self.server.abort();
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_waits_for_a_port_its_predecessor_still_holds() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("addr").to_string();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let release = std::thread::spawn(move || {
            // Released only once the retrying bind below has started.
            let _ = rx.blocking_recv();
            drop(held);
        });
        let bound = {
            let binding = bind(addr.as_str(), Duration::from_secs(10));
            tokio::pin!(binding);
            // The first attempt fails while the port is held ...
            assert!(
                tokio::time::timeout(Duration::from_millis(50), &mut binding)
                    .await
                    .is_err()
            );
            let _ = tx.send(());
            // ... and a later one succeeds once it is released.
            binding.await.expect("bound after release")
        };
        assert_eq!(bound.local_addr().expect("addr").to_string(), addr);
        release.join().expect("thread");
    }

    #[tokio::test]
    async fn bind_gives_up_after_its_patience_naming_the_address() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = held.local_addr().expect("addr").to_string();
        let err = bind(addr.as_str(), Duration::from_millis(100))
            .await
            .expect_err("port held throughout");
        assert!(err.to_string().contains(&addr), "{err:#}");
    }
}
