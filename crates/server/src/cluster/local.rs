//! `quiver cluster up|status|start|down`: a whole cluster on loopback, one
//! process per role, described by `DIR/cluster.json`:
//!
//! ```json
//! {"proxy": "127.0.0.1:PORT",
//!  "processes": [{"role": "coord", "id": 1, "pid": 1234, "addr": "127.0.0.1:PORT"}, ...]}
//! ```
//!
//! Ids are unique across the cluster: coords `1..=C`, then datanodes,
//! querynodes and proxies in that order. Each process has its config in
//! `DIR/<role>-<id>.toml` and appends its log to `DIR/logs/<role>-<id>.log`;
//! coords keep their Raft data in `DIR/coord-<id>/`, querynodes their
//! segment cache in `DIR/cache-<id>/`; the object store is `DIR/objects/`.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::config::{
    self, CoordConfig, DataNodeProcConfig, Member, ProxyConfig, QueryNodeProcConfig, StoreConfig,
};

/// How long `up` and `start` wait for processes to serve.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One process of a local cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub role: String,
    pub id: u64,
    pub pid: u32,
    pub addr: String,
}

/// `DIR/cluster.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    pub proxy: String,
    pub processes: Vec<Process>,
    /// Set by `up --tls`: the cluster's CA and a client identity for tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::tls::TlsFiles>,
}

impl ClusterFile {
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("cluster.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (is a cluster up there?)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join("cluster.json");
        let tmp = dir.join("cluster.json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }

    /// Coord addresses.
    pub fn coords(&self) -> Vec<String> {
        self.by_role("coord").map(|p| p.addr.clone()).collect()
    }

    pub fn by_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Process> + 'a {
        self.processes.iter().filter(move |p| p.role == role)
    }

    pub fn process(&self, id: u64) -> Option<&Process> {
        self.processes.iter().find(|p| p.id == id)
    }

    /// How a tool reaches the coords (with the tools' cluster identity
    /// when the cluster runs TLS).
    pub fn coord_options(&self) -> Result<quiver_coord::CoordClientOptions> {
        Ok(quiver_coord::CoordClientOptions {
            tls: self.tls.as_ref().map(|t| t.cluster_tls()).transpose()?,
            ..Default::default()
        })
    }

    /// How a client reaches the proxies (TLS verified with the cluster CA
    /// when the cluster runs TLS).
    pub fn client_options(&self) -> quiver_client::ConnectOptions {
        quiver_client::ConnectOptions {
            tls_ca: self.tls.as_ref().map(|t| t.ca.clone()),
            ..Default::default()
        }
    }
}

/// How many processes of each role `up` starts.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub coords: u32,
    pub datanodes: u32,
    pub querynodes: u32,
    pub proxies: u32,
    /// Cluster-internal mutual TLS and TLS on the proxies (`up --tls`).
    pub tls: bool,
}

/// A port that is free now, for a process started next. Picked below Linux's
/// ephemeral range (32768-60999), where outgoing connections take their
/// local ports: a port from `bind(:0)` could be taken by some connection
/// before the process binds it (seen as "Address already in use").
/// A port is never handed out twice by one process (its first holder may
/// not have bound it yet: `up` picks every port before starting anyone).
pub(crate) fn free_port() -> Result<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..200 {
        let port: u16 = rand::random_range(20_000..32_000);
        let mut taken = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.push(port);
            return Ok(port);
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn config_path(dir: &Path, role: &str, id: u64) -> PathBuf {
    dir.join(format!("{role}-{id}.toml"))
}

fn log_path(dir: &Path, role: &str, id: u64) -> PathBuf {
    dir.join("logs").join(format!("{role}-{id}.log"))
}

/// Writes every config file and starts every process; returns once each
/// process serves and coord has a leader that sees every node.
pub async fn up(dir: &Path, shape: Shape) -> Result<ClusterFile> {
    if shape.coords == 0 || shape.datanodes == 0 || shape.querynodes == 0 || shape.proxies == 0 {
        bail!("--coords, --datanodes, --querynodes and --proxies: each must be at least 1");
    }
    if let Ok(existing) = ClusterFile::read(dir)
        && existing.processes.iter().any(|p| running(p.pid))
    {
        bail!(
            "{}: a cluster is already running there (quiver cluster down --dir {} stops it)",
            dir.display(),
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut next_id = 1u64;
    let mut ids = |n: u32| {
        let first = next_id;
        next_id += u64::from(n);
        first..next_id
    };
    let coord_ids = ids(shape.coords);
    let data_ids = ids(shape.datanodes);
    let query_ids = ids(shape.querynodes);
    let proxy_ids = ids(shape.proxies);

    let mut members = Vec::new();
    for id in coord_ids.clone() {
        members.push(Member {
            id,
            addr: format!("127.0.0.1:{}", free_port()?),
        });
    }
    let coords: Vec<String> = members.iter().map(|m| m.addr.clone()).collect();
    let store = StoreConfig::Local {
        path: dir.join("objects"),
    };
    let mut planned: Vec<(String, u64, String)> = Vec::new();
    let certs = if shape.tls {
        Some(super::tls::Certs::create(dir)?)
    } else {
        None
    };
    let identity = |role: &str, id: u64| -> Result<_> {
        certs.as_ref().map(|c| c.identity(role, id)).transpose()
    };
    for m in &members {
        let cfg = CoordConfig {
            id: m.id,
            dir: dir.join(format!("coord-{}", m.id)),
            listen: None,
            members: members.clone(),
            join: false,
            raft: Default::default(),
            failover: Default::default(),
            divergence: Default::default(),
            auth: Default::default(),
            cluster_tls: identity("coord", m.id)?,
            store: Some(store.clone()),
            backup_wait_ms: 2_000,
        };
        config::write(&config_path(dir, "coord", m.id), &cfg)?;
        planned.push(("coord".into(), m.id, m.addr.clone()));
    }
    for id in data_ids {
        let addr = write_node_config(dir, "datanode", id, &coords, identity("datanode", id)?)?;
        planned.push(("datanode".into(), id, addr));
    }
    for id in query_ids {
        let addr = write_node_config(dir, "querynode", id, &coords, identity("querynode", id)?)?;
        planned.push(("querynode".into(), id, addr));
    }
    for id in proxy_ids {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let identity = identity("proxy", id)?;
        let cfg = ProxyConfig {
            id,
            listen: addr.clone(),
            coords: coords.clone(),
            request_deadline_ms: 10_000,
            auth: Default::default(),
            tls: identity.clone().map(super::tls::front_door),
            cluster_tls: identity,
            limits: Default::default(),
            status_history: Default::default(),
        };
        config::write(&config_path(dir, "proxy", id), &cfg)?;
        planned.push(("proxy".into(), id, addr));
    }

    let mut file = ClusterFile {
        proxy: planned
            .iter()
            .find(|p| p.0 == "proxy")
            .map(|p| p.2.clone())
            .unwrap_or_default(),
        processes: Vec::new(),
        tls: certs.map(|c| c.files),
    };
    let mut starting = Vec::new();
    for (role, id, addr) in planned {
        let (pid, offset) = spawn(dir, &role, id)?;
        starting.push((role.clone(), id, offset));
        file.processes.push(Process {
            role,
            id,
            pid,
            addr,
        });
        // Written after every spawn: `down` finds whatever did start.
        file.write(dir)?;
    }
    let deadline = Instant::now() + START_TIMEOUT;
    for (role, id, offset) in starting {
        wait_listening(dir, &role, id, offset, deadline).await?;
    }
    wait_serving(&file, deadline).await?;
    Ok(file)
}

/// Writes `DIR/ROLE-ID.toml` for datanode or querynode `id` on a free
/// loopback port; returns its address.
fn write_node_config(
    dir: &Path,
    role: &str,
    id: u64,
    coords: &[String],
    tls: Option<quiver_roles::config::ClusterTlsConfig>,
) -> Result<String> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let store = StoreConfig::Local {
        path: dir.join("objects"),
    };
    let path = config_path(dir, role, id);
    match role {
        "datanode" => config::write(
            &path,
            &DataNodeProcConfig {
                id,
                advertise: None,
                listen: addr.clone(),
                coords: coords.to_vec(),
                store,
                heartbeat_ms: 500,
                datanode: Default::default(),
                auth: Default::default(),
                cluster_tls: tls,
            },
        )?,
        "querynode" => config::write(
            &path,
            &QueryNodeProcConfig {
                id,
                advertise: None,
                listen: addr.clone(),
                coords: coords.to_vec(),
                store,
                cache_dir: dir.join(format!("cache-{id}")),
                heartbeat_ms: 500,
                querynode: Default::default(),
                auth: Default::default(),
                cluster_tls: tls,
            },
        )?,
        other => bail!("no node config for role {other}"),
    }
    Ok(addr)
}

/// `quiver cluster add --dir D --role R`: one more datanode or querynode
/// (the next free id), started, added to `cluster.json`; returns once it
/// listens and coord's leader sees it alive. Placement then gives it its
/// share (balancing). A coord: `super::coords::add_local`.
pub async fn add(dir: &Path, role: &str) -> Result<Process> {
    if !matches!(role, "datanode" | "querynode" | "coord") {
        bail!("--role: must be querynode, datanode or coord (got {role:?})");
    }
    let mut file = ClusterFile::read(dir)?;
    if role == "coord" {
        return super::coords::add_local(dir).await;
    }
    let id = file.processes.iter().map(|p| p.id).max().unwrap_or(0) + 1;
    let identity = new_identity(dir, &file, role, id)?;
    let addr = write_node_config(dir, role, id, &file.coords(), identity)?;
    let (pid, offset) = spawn(dir, role, id)?;
    let process = Process {
        role: role.to_string(),
        id,
        pid,
        addr,
    };
    file.processes.push(process.clone());
    file.write(dir)?;
    let deadline = Instant::now() + START_TIMEOUT;
    wait_listening(dir, role, id, offset, deadline).await?;
    wait_alive(&file, &[id], deadline).await?;
    Ok(process)
}

/// The cluster identity of a process added to a TLS cluster (None without TLS).
pub(crate) fn new_identity(
    dir: &Path,
    file: &ClusterFile,
    role: &str,
    id: u64,
) -> Result<Option<quiver_roles::config::ClusterTlsConfig>> {
    file.tls
        .as_ref()
        .map(|t| super::tls::Certs::open(dir, t)?.identity(role, id))
        .transpose()
}

/// Starts `quiver ROLE --config DIR/ROLE-ID.toml` in its own process group,
/// its output appended to its log. Returns the pid and the log's length before.
pub(crate) fn spawn(dir: &Path, role: &str, id: u64) -> Result<(u32, u64)> {
    use std::os::unix::process::CommandExt;
    // QUIVER_BIN runs another build (e.g. a release binary from a debug CLI).
    let exe = match std::env::var_os("QUIVER_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => std::env::current_exe().context("finding the quiver binary")?,
    };
    let log = log_path(dir, role, id);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    let offset = out.metadata().map(|m| m.len()).unwrap_or(0);
    let err = out.try_clone()?;
    let child = Command::new(exe)
        .arg(role)
        .arg("--config")
        .arg(config_path(dir, role, id))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Not in the caller's process group: Ctrl-C on `cluster up` or the
        // end of a test's process does not stop the cluster.
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {role} {id}"))?;
    Ok((child.id(), offset))
}

/// Waits for the process's "listening on" line after `offset` in its log.
pub(crate) async fn wait_listening(
    dir: &Path,
    role: &str,
    id: u64,
    offset: u64,
    deadline: Instant,
) -> Result<()> {
    let log = log_path(dir, role, id);
    let needle = format!("quiver {role} {id} listening on");
    loop {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&log) {
            f.seek(SeekFrom::Start(offset))?;
            f.read_to_string(&mut text)?;
        }
        if text.contains(&needle) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "{role} {id} did not start within {:?}; {}:\n{}",
                START_TIMEOUT,
                log.display(),
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until coord has a leader that sees every datanode and querynode of
/// the file alive.
async fn wait_serving(file: &ClusterFile, deadline: Instant) -> Result<()> {
    let nodes: Vec<u64> = file
        .processes
        .iter()
        .filter(|p| p.role == "datanode" || p.role == "querynode")
        .map(|p| p.id)
        .collect();
    wait_alive(file, &nodes, deadline).await
}

/// Waits until coord's leader sees every node of `nodes` alive.
async fn wait_alive(file: &ClusterFile, nodes: &[u64], deadline: Instant) -> Result<()> {
    use quiver_coord::CoordApi as _;
    let coord = quiver_coord::CoordClient::connect(file.coords(), file.coord_options()?)
        .await
        .context("connecting to coord")?;
    loop {
        let last = match coord.node_health().await {
            Ok(health) => {
                let alive: Vec<u64> = health.iter().filter(|h| h.alive).map(|h| h.id).collect();
                if nodes.iter().all(|n| alive.contains(n)) {
                    return Ok(());
                }
                format!("alive nodes {alive:?}, expected {nodes:?}")
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("the cluster did not come up within {START_TIMEOUT:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

pub(crate) fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Stops process `pid`: SIGTERM, then SIGKILL if it still runs after
/// `grace`. Returns once it is gone.
pub(crate) async fn stop_process(pid: u32, grace: Duration) {
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while running(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if running(pid) {
        tracing::warn!(pid, "did not stop in time; killing it");
        signal(pid, libc::SIGKILL);
    }
}

/// Restarts the stopped or killed process `id`; returns its new pid.
pub async fn start(dir: &Path, id: u64) -> Result<u32> {
    let mut file = ClusterFile::read(dir)?;
    let Some(p) = file.process(id).cloned() else {
        bail!("--id: no process {id} in {}/cluster.json", dir.display());
    };
    if running(p.pid) {
        bail!("{} {id} is already running (pid {})", p.role, p.pid);
    }
    let (pid, offset) = spawn(dir, &p.role, id)?;
    if let Some(entry) = file.processes.iter_mut().find(|q| q.id == id) {
        entry.pid = pid;
    }
    file.write(dir)?;
    wait_listening(dir, &p.role, id, offset, Instant::now() + START_TIMEOUT).await?;
    Ok(pid)
}

/// Stops every process: SIGTERM, then SIGKILL for those still running after
/// `grace`.
pub async fn down(dir: &Path, grace: Duration) -> Result<Vec<Process>> {
    let file = ClusterFile::read(dir)?;
    let live: Vec<Process> = file
        .processes
        .iter()
        .filter(|p| running(p.pid))
        .cloned()
        .collect();
    // Front doors first, coords last: nodes stop while coord still answers.
    for role in ["proxy", "querynode", "datanode", "coord"] {
        for p in live.iter().filter(|p| p.role == role) {
            signal(p.pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while live.iter().any(|p| running(p.pid)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for p in live.iter().filter(|p| running(p.pid)) {
        tracing::warn!(role = %p.role, id = p.id, "did not stop in time; killing it");
        signal(p.pid, libc::SIGKILL);
    }
    Ok(live)
}

/// Sends `sig` to process `id` of the cluster (tests and chaos scenarios).
pub fn kill(file: &ClusterFile, id: u64, sig: i32) -> Result<()> {
    let Some(p) = file.process(id) else {
        bail!("no process {id}");
    };
    signal(p.pid, sig);
    Ok(())
}

/// The body of `GET path` on `addr` (HTTP/1.1 on a process's port); an error
/// unless it answers 200.
pub(crate) async fn http_get(addr: &str, path: &str) -> Result<String> {
    http_get_with(addr, path, None).await
}

/// [`http_get`] over TLS when `tls` is given (a TLS cluster's internal
/// ports require a client certificate: `TlsFiles::connector`).
pub(crate) async fn http_get_with(
    addr: &str,
    path: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
) -> Result<String> {
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    async fn exchange(mut s: impl AsyncRead + AsyncWrite + Unpin, req: &str) -> Result<String> {
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let call = async {
        let s = tokio::net::TcpStream::connect(addr).await?;
        match tls {
            None => exchange(s, &req).await,
            Some(connector) => {
                let name = rustls::pki_types::ServerName::try_from(quiver_rpc::CLUSTER_SERVER_NAME)
                    .context("the cluster's server name")?;
                exchange(connector.connect(name, s).await?, &req).await
            }
        }
    };
    let text = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .context("GET timed out")??;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("no HTTP header in the answer")?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.to_string())
}
