//! `quiver cluster chaos --dir D [--out FILE] [--json]`: brings up a 3-coord /
//! 2-datanode / 2-querynode / 2-proxy cluster on loopback, creates a
//! collection with `replica_number = 2`, and under continuous searches and
//! inserts (10 rows every 20 ms) runs the faults of the cluster-mode
//! contract one after the other, measuring what the clients saw:
//!
//! 1. kill -9 the leader coord (then restart it);
//! 2. kill -9 a querynode (then restart it);
//! 3. kill -9 the datanode owning the shards (then restart it);
//! 4. SIGSTOP the leader coord for 10 s, then SIGCONT;
//! 5. coord state loss: a follower coord's directory deleted, started
//!    again empty (not admitted, never votes), re-admitted;
//! 6. every coord's directory lost: all coords killed, their directories
//!    deleted, rebuilt with `quiver coord recover` from the metadata
//!    backups in the object store, started again;
//! 7. quorum loss: two of three coords killed (DDL refused fast with
//!    "no coord quorum", the data path goes on), then restarted;
//! 8. disk full: the object store's filesystem (a 256 MiB tmpfs, mounted
//!    when run as root; skipped otherwise) filled, held full 3 s, then freed;
//! 9. connection flood: 10,000 silent TCP connections to the proxy while
//!    new clients connect and search;
//! 10. compaction under load: the same 2,000 keys rewritten 5 times (each
//!     round flushed), then a manual compaction to the end: no failed
//!     request, every key at its last version;
//! 11. a mirrored alias with automatic failover: kill -9 every querynode of
//!     the primary (flip, outage, nothing missing from the standby,
//!     divergence back to 0 after they return, manual failback, alias
//!     propagation p99);
//! 12. kill -9 every process, start them all again;
//! 13. coord-replace: a fourth coord joins (`cluster add --role coord`),
//!     the leader coord is removed (`coord remove`);
//! 14. roll: `cluster roll` of every process;
//! 15. elastic: two querynodes and a datanode join (`cluster add`), then a
//!     querynode and a datanode are drained, stopped and removed.
//!
//! Each scenario reports pass/fail against the contract's bounds; the
//! report is JSON and Markdown (see `chaos/README.md`).

mod compaction;
mod coord_state;
mod disk_full;
mod elastic;
mod flood;
mod load;
mod mirror;
mod quorum;
mod report;
mod scenarios;
mod scrape;

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use clap::Args;
use quiver_client::{Client, ConnectOptions};
use quiver_rpc::ClusterTls;

use crate::cluster::local::ClusterFile;

pub use report::{Report, ScenarioReport};

/// `quiver cluster chaos`.
#[derive(Debug, Clone, Args)]
pub struct ChaosArgs {
    /// Where the cluster lives (created; must not hold a running cluster).
    #[arg(long)]
    pub dir: PathBuf,
    /// Writes the Markdown report there.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Prints the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Runs only these scenarios (comma list of: leader, querynode,
    /// datanode, sigstop, coord-state, coord-recover, quorum, disk-full, flood,
    /// compaction, mirror,
    /// restart-all, roll, elastic).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Leaves the cluster running at the end (default: stopped).
    #[arg(long)]
    pub keep: bool,
    /// Runs the cluster with TLS (`quiver cluster up --tls`): mutual TLS
    /// between the processes, TLS to the proxy.
    #[arg(long)]
    pub tls: bool,
}

/// How the scenarios reach the cluster (set once its files exist).
static REACH: OnceLock<Reach> = OnceLock::new();

#[derive(Default)]
struct Reach {
    client: ConnectOptions,
    cluster: Option<ClusterTls>,
}

fn reach() -> &'static Reach {
    REACH.get_or_init(Reach::default)
}

/// Remembers how to reach the cluster of `file` (TLS or not).
fn set_reach(file: &ClusterFile) -> Result<()> {
    let cluster = file.tls.as_ref().map(|t| t.cluster_tls()).transpose()?;
    let _ = REACH.set(Reach {
        client: file.client_options(),
        cluster,
    });
    Ok(())
}

/// A client of the proxy at `proxy` (over TLS when the cluster runs it).
pub(crate) async fn connect(proxy: &str) -> Result<Client> {
    Ok(Client::connect_with(proxy, &reach().client).await?)
}

/// The cluster identity of the tools, if the cluster runs TLS.
fn cluster_tls() -> Option<&'static ClusterTls> {
    reach().cluster.as_ref()
}

pub async fn run(args: ChaosArgs) -> Result<()> {
    let report = scenarios::run_all(&args.dir, &args.only, args.keep, args.tls).await?;
    if let Some(out) = &args.out {
        std::fs::write(out, report.markdown())
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.markdown());
    }
    if !report.passed() {
        anyhow::bail!("some scenarios failed (see the report)");
    }
    Ok(())
}
