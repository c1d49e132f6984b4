//! Running a role's gRPC server and tasks, and stopping them together.

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// A role's server and background tasks.
pub struct Running {
    server: JoinHandle<Result<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Serves `routes` on `listener` (HTTP/1.1 accepted when `http1`, for
    /// the status page) until `shutdown` is cancelled; in-flight calls
    /// drain before the server task ends.
    pub(crate) fn serve(
        routes: Routes,
        listener: TcpListener,
        http1: bool,
        shutdown: CancellationToken,
    ) -> Running {
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = Server::builder()
            .accept_http1(http1)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned());
        Running {
            server: tokio::spawn(async move { server.await.context("gRPC server") }),
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
