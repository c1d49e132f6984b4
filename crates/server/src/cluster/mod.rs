//! Cluster mode: each role as its own process (`quiver coord|datanode|
//! querynode|proxy --config FILE`, built by `quiver_roles`), and `quiver
//! cluster up|status|start|down|chaos` for a local cluster.

pub mod chaos;
pub(crate) mod coords;
pub mod local;
pub(crate) mod recover;
pub mod roll;
mod run;
pub mod status;
pub mod tls;

pub use quiver_roles::config;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

pub use run::{run_coord, run_datanode, run_proxy, run_querynode};

/// `quiver ROLE --config FILE [--id N] [--listen HOST:PORT]`.
#[derive(Debug, Clone, Args)]
pub struct RoleArgs {
    /// The role's TOML config file (see docs/cluster.md); `QUIVER_*`
    /// environment variables and these flags override it.
    #[arg(long)]
    pub config: PathBuf,
    /// Overrides `id`.
    #[arg(long)]
    pub id: Option<u64>,
    /// Overrides `listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

impl RoleArgs {
    fn flags(&self) -> Vec<(&'static str, String)> {
        let mut f = Vec::new();
        if let Some(id) = self.id {
            f.push(("id", id.to_string()));
        }
        if let Some(l) = &self.listen {
            // Quoted: a bare host:port is not a TOML value.
            f.push(("listen", format!("{l:?}")));
        }
        f
    }

    fn load<T: serde::de::DeserializeOwned + config::Validate>(&self) -> Result<T> {
        config::load(&self.config, std::env::vars(), &self.flags())
    }
}

/// `quiver coord --config FILE` (a coordinator), or `quiver coord add ID`.
#[derive(Debug, Clone, Args)]
pub struct CoordArgs {
    #[command(subcommand)]
    pub what: Option<CoordCommand>,
    /// The coord's TOML config file (see docs/cluster.md); `QUIVER_*`
    /// environment variables and these flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Overrides `id`.
    #[arg(long)]
    pub id: Option<u64>,
    /// Overrides `listen`.
    #[arg(long)]
    pub listen: Option<String>,
}

impl CoordArgs {
    /// The arguments of a coordinator process (`--config` is required).
    pub fn role(self) -> Result<RoleArgs> {
        let Some(config) = self.config else {
            anyhow::bail!("--config FILE is required to run a coord (or: quiver coord add ID)");
        };
        Ok(RoleArgs {
            config,
            id: self.id,
            listen: self.listen,
        })
    }
}

/// `quiver coord ...` administration.
#[derive(Debug, Clone, Subcommand)]
pub enum CoordCommand {
    /// With ADDR: adds a new coord to the Raft group (started with
    /// `join = true` and listening at ADDR): a learner until it holds the
    /// log, then a voter. Without ADDR: re-admits coord ID after its
    /// directory lost its state (wiped or replaced): the cluster forgets its
    /// old incarnation; the coord registers its new one and votes again once
    /// it holds every committed entry (docs/faults.md).
    Add {
        /// The coord's id.
        id: u64,
        /// `host:port` where the other coords reach the new coord.
        addr: Option<String>,
        /// The directory of a local cluster (`quiver cluster up`).
        #[arg(long, conflicts_with = "coords")]
        dir: Option<PathBuf>,
        /// Coord addresses (`host:port`, comma-separated).
        #[arg(long, value_delimiter = ',', env = "QUIVER_COORDS")]
        coords: Vec<String>,
        /// How long to wait for the coord to vote (seconds; 0: do not wait).
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Removes coord ID from the Raft group, refused when the coords that
    /// stay could not form a quorum. Removing the leader makes it step
    /// down. With --dir (a local cluster) it also stops the coord's process
    /// and takes it out of DIR/cluster.json and the configs.
    Remove {
        /// The coord's id.
        id: u64,
        /// The directory of a local cluster (`quiver cluster up`).
        #[arg(long, conflicts_with = "coords")]
        dir: Option<PathBuf>,
        /// Coord addresses (`host:port`, comma-separated).
        #[arg(long, value_delimiter = ',', env = "QUIVER_COORDS")]
        coords: Vec<String>,
    },
    /// Rebuilds coord directories from the newest metadata backup in the
    /// object store, after every coord lost its directory (docs/faults.md).
    /// The coords must be stopped; start them afterwards.
    Recover {
        /// A local cluster (`quiver cluster up`): rebuilds every coord's
        /// directory from DIR/objects.
        #[arg(long, conflicts_with = "coord_config")]
        dir: Option<PathBuf>,
        /// One coord's config file (its `id`, `dir` and `store`): rebuilds
        /// that coord's directory. Run it for every coord, from the same backup.
        #[arg(long = "coord-config")]
        coord_config: Option<PathBuf>,
        /// Moves a coord directory that still holds Raft state aside (to
        /// DIR.before-recover-<unix time>) instead of refusing.
        #[arg(long)]
        force: bool,
    },
}

/// Runs `quiver coord add|remove|recover`.
pub async fn run_coord_command(cmd: CoordCommand) -> Result<()> {
    match cmd {
        CoordCommand::Add {
            id,
            addr,
            dir,
            coords,
            wait,
        } => coords::add(id, addr, dir, coords, wait).await,
        CoordCommand::Remove { id, dir, coords } => coords::remove(id, dir, coords).await,
        CoordCommand::Recover {
            dir,
            coord_config,
            force,
        } => recover::run(dir, coord_config, force).await,
    }
}

/// Which role a process runs.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Coord,
    DataNode,
    QueryNode,
    Proxy,
}

impl Role {
    /// The role's name (its subcommand).
    pub fn name(self) -> &'static str {
        match self {
            Role::Coord => "coord",
            Role::DataNode => "datanode",
            Role::QueryNode => "querynode",
            Role::Proxy => "proxy",
        }
    }
}

/// Runs one role until SIGINT/SIGTERM.
pub async fn run_role(role: Role, args: RoleArgs) -> Result<()> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::wait_for_signal().await;
        tracing::info!("stopping");
        stop.cancel();
    });
    match role {
        Role::Coord => run_coord(args.load()?, shutdown).await,
        Role::DataNode => run_datanode(args.load()?, shutdown).await,
        Role::QueryNode => run_querynode(args.load()?, shutdown).await,
        Role::Proxy => run_proxy(args.load()?, shutdown).await,
    }
}

/// `quiver cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Starts a cluster on loopback, one process per role; returns once it serves.
    Up {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 3)]
        coords: u32,
        #[arg(long, default_value_t = 2)]
        datanodes: u32,
        #[arg(long, default_value_t = 2)]
        querynodes: u32,
        #[arg(long, default_value_t = 1)]
        proxies: u32,
        /// Mutual TLS on every internal port (a private CA and one
        /// certificate per process, in DIR/tls/) and TLS on the proxies;
        /// clients connect with `--tls-ca DIR/tls/ca.crt`.
        #[arg(long)]
        tls: bool,
    },
    /// Coord's leader, where each collection is served, every process's health.
    Status {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Starts one more datanode, querynode or coord (the next free id), adds
    /// it to DIR/cluster.json and returns once it is registered: a node once
    /// coord sees it alive (placement then moves its share onto it), a coord
    /// once it is a voter of the Raft group.
    Add {
        #[arg(long)]
        dir: PathBuf,
        /// querynode, datanode or coord.
        #[arg(long)]
        role: String,
        #[arg(long)]
        json: bool,
    },
    /// Restarts every running process one at a time (coords, followers
    /// first, then datanodes, querynodes, proxies), each once the cluster is
    /// whole again (every process ready); returns when all were restarted.
    Roll {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Restarts one stopped or killed process of the cluster.
    Start {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        id: u64,
    },
    /// Stops every process (SIGTERM, SIGKILL after 10 s).
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Brings a 3/2/2/2 cluster up in --dir, runs the fault scenarios under
    /// load and writes the chaos report (see chaos/README.md).
    Chaos(chaos::ChaosArgs),
}

pub async fn run_cluster(cmd: ClusterCommand) -> Result<()> {
    match cmd {
        ClusterCommand::Up {
            dir,
            coords,
            datanodes,
            querynodes,
            proxies,
            tls,
        } => {
            let shape = local::Shape {
                coords,
                datanodes,
                querynodes,
                proxies,
                tls,
            };
            let file = local::up(&dir, shape).await?;
            println!(
                "cluster up: proxy (Milvus API) on {}; {} processes; {}/cluster.json",
                file.proxy,
                file.processes.len(),
                dir.display()
            );
            if let Some(t) = &file.tls {
                println!(
                    "TLS: internal ports require the cluster's client certificates; clients \
                     connect with: quiver collection list --addr https://{} --tls-ca {}",
                    file.proxy,
                    t.ca.display()
                );
            }
        }
        ClusterCommand::Status { dir, json } => {
            let v = status::status(&dir).await?;
            if json {
                println!("{v}");
            } else {
                print!("{}", status::render(&v));
            }
        }
        ClusterCommand::Add { dir, role, json } => {
            let p = local::add(&dir, &role).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({"role": p.role, "id": p.id, "pid": p.pid, "addr": p.addr})
                );
            } else {
                println!("added {} {} (pid {}) at {}", p.role, p.id, p.pid, p.addr);
            }
        }
        ClusterCommand::Roll { dir, json } => {
            let started = std::time::Instant::now();
            let rolled = roll::roll(&dir).await?;
            let ms = started.elapsed().as_millis() as u64;
            if json {
                println!("{}", serde_json::json!({"restarted": rolled, "ms": ms}));
            } else {
                println!(
                    "restarted {} processes one at a time ({ms} ms): {rolled:?}",
                    rolled.len()
                );
            }
        }
        ClusterCommand::Start { dir, id } => {
            let pid = local::start(&dir, id).await?;
            println!("process {id} started (pid {pid})");
        }
        ClusterCommand::Down { dir } => {
            let stopped = local::down(&dir, Duration::from_secs(10)).await?;
            println!("stopped {} processes", stopped.len());
        }
        ClusterCommand::Chaos(args) => chaos::run(args).await?,
    }
    Ok(())
}
