//! `quiver-client` and the `quiver` client commands against an in-process
//! standalone server on 127.0.0.1:0.

mod api;
mod auth;
mod bench_churn;
mod bench_search;
mod cli;
mod compat;
mod status_page;
mod tls;

use std::net::SocketAddr;
use std::path::Path;

use quiver_server::{Standalone, StandaloneConfig};
use tokio_util::sync::CancellationToken;

/// The front door's metrics are process-wide: the status page's history
/// test (which must see its own calls appear from zero) takes this for
/// writing before its server starts; every other [`Server`] holds it for
/// reading while it runs (tests run one server at a time).
pub static FRONT_DOOR_METRICS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// A standalone server with its data in `dir`, serving Milvus gRPC.
pub struct Server {
    pub standalone: Standalone,
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _metrics: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
}

impl Server {
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(StandaloneConfig::new(dir)).await
    }

    /// [`Server::start`] with `config` (TLS, ...).
    pub async fn start_with(config: StandaloneConfig) -> Self {
        let guard = FRONT_DOOR_METRICS.read().await;
        let mut server = Self::start_alone(config).await;
        server._metrics = Some(guard);
        server
    }

    /// [`Server::start_with`] for a test that holds [`FRONT_DOOR_METRICS`]
    /// for writing (no other server's calls in the metrics meanwhile).
    pub async fn start_alone(mut config: StandaloneConfig) -> Self {
        config.querynode.search_threads = 2;
        config.divergence.every_ms = 200;
        let standalone = Standalone::open(config, CancellationToken::new())
            .await
            .expect("open standalone");
        let stop = CancellationToken::new();
        let (addr, task) = standalone
            .serve_milvus("127.0.0.1:0".parse().expect("addr"), stop.clone())
            .await
            .expect("serve");
        Self {
            standalone,
            addr,
            stop,
            task,
            _metrics: None,
        }
    }

    pub async fn client(&self) -> quiver_client::Client {
        quiver_client::Client::connect(&self.addr.to_string())
            .await
            .expect("connect")
    }

    /// Stops serving as `quiver standalone` does on SIGINT: the serve task
    /// must end (in-flight calls drained) before the roles close.
    pub async fn close(self) {
        self.stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("the Milvus server stops when asked")
            .expect("serve task")
            .expect("serve");
        self.standalone.close().await;
    }
}

/// `n` deterministic pseudo-random vectors of `dim` in [-1, 1), row-major.
pub fn vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    (0..n * dim)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Writes row-major vectors as a TEXMEX .fvecs file.
pub fn write_fvecs(path: &Path, dim: usize, data: &[f32]) {
    let mut bytes = Vec::with_capacity(data.len() * 4 + data.len() / dim * 4);
    for row in data.chunks(dim) {
        bytes.extend_from_slice(&(dim as i32).to_le_bytes());
        for x in row {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).expect("write fvecs");
}
