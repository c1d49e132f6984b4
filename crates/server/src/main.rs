mod cli;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use quiver_server::cluster::{self, Role};
use quiver_server::{
    Standalone, StandaloneConfig, bench_churn, bench_index, bench_ingest, bench_search, crash,
    init_tracing,
};
use tokio_util::sync::CancellationToken;

/// Quiver: a real-time vector search engine with highly available collections.
#[derive(Debug, Parser)]
#[command(name = "quiver", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every role in one process, with its data in a local directory.
    Standalone {
        /// Where data lives (object store, coord log, segment cache).
        #[arg(long, default_value = "quiver-data", env = "QUIVER_DATA_DIR")]
        data_dir: PathBuf,
        /// Where the Milvus-compatible gRPC API listens.
        #[arg(long, default_value = "127.0.0.1:19530", env = "QUIVER_LISTEN")]
        listen: SocketAddr,
        /// Require credentials (Milvus users and roles) on every call; the
        /// root user's first password comes from QUIVER_ROOT_PASSWORD.
        #[arg(long, env = "QUIVER_AUTH", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true", default_value = "false")]
        auth: bool,
        /// Refuse writes (Milvus rate limit, code 8: clients back off) while
        /// the process's resident memory is at or over this many MiB (0: no
        /// limit; docs/faults.md).
        #[arg(long, env = "QUIVER_MAX_MEMORY_MIB", default_value_t = 0)]
        max_memory_mib: u64,
        /// The values of JSON paths that filters tested and the indexes
        /// built from them take at most this many MiB (the least recently
        /// used are dropped past it; declared JSON path indexes are not
        /// counted; 0: no limit).
        #[arg(long, env = "QUIVER_JSON_PATH_CACHE_MIB", default_value_t = quiver_querynode::JSON_PATH_CACHE_MIB)]
        json_path_cache_mib: u64,
        /// Milliseconds between the samples of the status page's charts
        /// (at least 100; 15 minutes of them are kept).
        #[arg(long, env = "QUIVER_STATUS_SAMPLE_MS", default_value_t = 5_000)]
        status_sample_ms: u64,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// A coordinator of a cluster (one member of its Raft group).
    Coord(cluster::CoordArgs),
    /// A datanode of a cluster (owns shards: WAL, growing data, sealing).
    Datanode(cluster::RoleArgs),
    /// A querynode of a cluster (serves searches of the shards placed on it).
    Querynode(cluster::RoleArgs),
    /// A proxy of a cluster (the Milvus-compatible front door).
    Proxy(cluster::RoleArgs),
    /// A local cluster on loopback: up, status, start, down.
    Cluster {
        #[command(subcommand)]
        what: cluster::ClusterCommand,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
    /// The writer process of the crash test (kill -9 it at any point).
    #[command(hide = true)]
    CrashWriter(crash::WriterArgs),
}

/// The front door over TLS (see docs/security.md).
#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// The server's certificate (PEM; the chain if any): serves TLS.
    #[arg(long, env = "QUIVER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "QUIVER_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A CA (PEM): mutual TLS, clients must present a certificate it signed.
    #[arg(long, env = "QUIVER_TLS_CA")]
    tls_ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The HNSW index alone over TEXMEX files: build time, recall, q/s, latency.
    Index(bench_index::IndexBenchArgs),
    /// Durable ingest through the engine, and insert -> searchable latency.
    Ingest(bench_ingest::IngestBenchArgs),
    /// Rewrites and deletes the same keys round after round: memory, disk,
    /// segments and latencies per round, then an exact check of every key.
    Churn(bench_churn::ChurnBenchArgs),
    /// Search load over the Milvus protocol against a running server (Quiver
    /// or Milvus): N clients for S seconds; q/s, latency percentiles, errors
    /// and recall@k with --truth.
    Search(bench_search::SearchBenchArgs),
}

fn main() -> Result<()> {
    quiver_common::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench {
            what: BenchCommand::Index(args),
        } => bench_index::run_cli(args),
        Command::Bench {
            what: BenchCommand::Ingest(args),
        } => runtime()?.block_on(bench_ingest::run_cli(args)),
        Command::Bench {
            what: BenchCommand::Churn(args),
        } => runtime()?.block_on(bench_churn::run_cli(args)),
        Command::Bench {
            what: BenchCommand::Search(args),
        } => {
            // A bad flag or a missing collection is one line, not a backtrace.
            if let Err(e) = runtime()?.block_on(bench_search::run_cli(args)) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Client(cmd) => {
            // A client command's error is one line for the user, not a backtrace.
            if let Err(e) = runtime()?.block_on(cli::run(cmd)) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Coord(cluster::CoordArgs {
            what: Some(cmd), ..
        }) => {
            if let Err(e) = runtime()?.block_on(cluster::run_coord_command(cmd)) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Coord(args) => match args.role() {
            Ok(args) => role(Role::Coord, args),
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::exit(2);
            }
        },
        Command::Datanode(args) => role(Role::DataNode, args),
        Command::Querynode(args) => role(Role::QueryNode, args),
        Command::Proxy(args) => role(Role::Proxy, args),
        Command::Cluster { what } => {
            init_tracing("quiver-cluster");
            if let Err(e) = runtime()?.block_on(cluster::run_cluster(what)) {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::CrashWriter(args) => {
            init_tracing("quiver-crash-writer");
            runtime()?.block_on(crash::run_writer(args))
        }
        Command::Standalone {
            data_dir,
            listen,
            auth,
            max_memory_mib,
            json_path_cache_mib,
            status_sample_ms,
            tls,
        } => {
            init_tracing("quiver-standalone");
            let tls = match quiver_roles::tls::TlsConfig::from_flags(
                tls.tls_cert,
                tls.tls_key,
                tls.tls_ca,
            ) {
                Ok(tls) => tls,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::exit(2);
                }
            };
            let scheme = if tls.is_some() { "https" } else { "http" };
            let served = runtime()?.block_on(async move {
                let shutdown = CancellationToken::new();
                let mut config = StandaloneConfig {
                    tls,
                    ..StandaloneConfig::new(&data_dir)
                };
                config.auth.enabled = auth;
                config.limits.max_memory_bytes = max_memory_mib.saturating_mul(1 << 20);
                config.querynode.json_path_cache_mib = json_path_cache_mib;
                config.status_history.interval_ms = status_sample_ms;
                let server = Standalone::open(config, shutdown).await?;
                let stop_grpc = CancellationToken::new();
                let (addr, grpc) = server.serve_milvus(listen, stop_grpc.clone()).await?;
                tracing::info!(data_dir = %data_dir.display(), %addr, scheme, "quiver standalone is up (Milvus gRPC API); Ctrl-C stops it");
                println!("quiver standalone listening on {addr}");
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r?,
                    _ = sigterm() => {}
                }
                tracing::info!("shutting down: draining gRPC requests");
                stop_grpc.cancel();
                match grpc.await {
                    Ok(r) => r?,
                    Err(e) => tracing::warn!(error = %e, "gRPC server task"),
                }
                server.close().await;
                Ok::<_, anyhow::Error>(())
            });
            quiver_metrics::trace::shutdown();
            // A start-up error (a bad TLS file, a port in use) is one line.
            if let Err(e) = served {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

fn role(role: Role, args: cluster::RoleArgs) -> Result<()> {
    init_tracing(&format!("quiver-{}", role.name()));
    let served = runtime()?.block_on(cluster::run_role(role, args));
    quiver_metrics::trace::shutdown();
    if let Err(e) = served {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// Resolves on SIGTERM (never on other platforms).
async fn sigterm() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
