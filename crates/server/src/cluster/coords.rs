//! `quiver coord add|remove` and `quiver cluster add --role coord`: coord
//! membership changes (`quiver_coord::Coord::add_member`,
//! `remove_member`), and for a local cluster (`--dir`) the processes and
//! files that go with them: the new coord started with `join = true`, the
//! removed one stopped, its directory moved aside, and every process's
//! coord list in its config rewritten (so restarts find the coords).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use quiver_coord::{CoordClient, CoordClientOptions, DEFAULT_CATCH_UP, Members};

use super::config::{
    self, CoordConfig, DataNodeProcConfig, Member, ProxyConfig, QueryNodeProcConfig,
};
use super::local::{self, ClusterFile, Process, config_path};

/// The coords of `--dir` or `--coords`.
fn connect_args(
    dir: Option<&Path>,
    coords: Vec<String>,
) -> Result<(Vec<String>, CoordClientOptions)> {
    match dir {
        Some(dir) => {
            let file = ClusterFile::read(dir)?;
            Ok((file.coords(), file.coord_options()?))
        }
        None if !coords.is_empty() => Ok((coords, CoordClientOptions::default())),
        None => {
            bail!("name the cluster: --dir DIR (a local cluster) or --coords HOST:PORT,...")
        }
    }
}

/// `quiver coord add ID [ADDR]`: with ADDR, adds a new coord (started with
/// `join = true`) to the Raft group; without, re-admits coord ID after its
/// directory lost its state. Either way waits (up to `wait` s) until it votes.
pub async fn add(
    id: u64,
    addr: Option<String>,
    dir: Option<PathBuf>,
    coords: Vec<String>,
    wait: u64,
) -> Result<()> {
    use quiver_coord::MetaOps;
    let (addrs, options) = connect_args(dir.as_deref(), coords)?;
    let client = CoordClient::connect(addrs.clone(), options).await?;
    match &addr {
        Some(addr) => {
            let members = client
                .change_membership(id, addr, false, DEFAULT_CATCH_UP)
                .await?;
            println!("coord {id} at {addr} is a voter: {}", describe(&members));
        }
        None => {
            client.admit_coord(id).await?;
            println!("coord {id}: its old incarnation is forgotten; it registers its new one");
        }
    }
    if wait == 0 {
        return Ok(());
    }
    let mut addrs = addrs;
    addrs.extend(addr);
    wait_voting(&client, id, &addrs, Duration::from_secs(wait)).await?;
    println!("coord {id} votes");
    Ok(())
}

/// Waits until coord `id` (at one of `addrs`) says it may vote.
async fn wait_voting(
    client: &CoordClient,
    id: u64,
    addrs: &[String],
    wait: Duration,
) -> Result<()> {
    let deadline = Instant::now() + wait;
    loop {
        let mut last = String::from("not reachable");
        for addr in addrs {
            if let Ok(s) = client.status_of(addr).await
                && s.node_id == id
            {
                if s.standing == "voter" {
                    return Ok(());
                }
                last = s.standing;
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "coord {id} does not vote yet after {} s ({last})",
                wait.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `quiver coord remove ID`: removes coord ID from the Raft group (refused
/// when the coords that stay could not form a quorum). With `--dir`, also
/// stops its process and takes it out of the local cluster's files.
pub async fn remove(id: u64, dir: Option<PathBuf>, coords: Vec<String>) -> Result<()> {
    let members = remove_member(id, dir.as_deref(), coords).await?;
    println!("coord {id} removed: {}", describe(&members));
    if let Some(dir) = dir {
        println!(
            "coord {id}'s process stopped; {} updated",
            dir.join("cluster.json").display()
        );
    }
    Ok(())
}

/// Removes coord `id` of the local cluster in `dir` from the Raft group,
/// stops its process and takes it out of the cluster's files.
pub async fn remove_local(dir: &Path, id: u64) -> Result<Members> {
    remove_member(id, Some(dir), Vec::new()).await
}

/// Removes coord `id` from the Raft group of `dir` or `coords`; for a local
/// cluster (`dir`) also retires its process and files.
async fn remove_member(id: u64, dir: Option<&Path>, coords: Vec<String>) -> Result<Members> {
    let (addrs, options) = connect_args(dir, coords)?;
    let client = CoordClient::connect(addrs, options).await?;
    let members = client
        .change_membership(id, "", true, DEFAULT_CATCH_UP)
        .await?;
    if let Some(dir) = dir {
        retire_local(dir, id, &members).await?;
    }
    Ok(members)
}

fn describe(m: &Members) -> String {
    let voters: Vec<String> = m.voters.iter().map(|(id, a)| format!("{id}@{a}")).collect();
    let mut out = format!("voters [{}]", voters.join(", "));
    if !m.learners.is_empty() {
        out.push_str(&format!(
            ", learners {:?}",
            m.learners.keys().collect::<Vec<_>>()
        ));
    }
    out
}

/// `quiver cluster add --dir D --role coord`: writes the next coord's
/// config (`join = true`), starts it, adds it to the Raft group, waits until
/// it votes, then records it in `cluster.json` and every process's config.
pub async fn add_local(dir: &Path) -> Result<Process> {
    let mut file = ClusterFile::read(dir)?;
    let id = file.processes.iter().map(|p| p.id).max().unwrap_or(0) + 1;
    let template = file
        .by_role("coord")
        .next()
        .map(|p| config_path(dir, "coord", p.id))
        .context("the cluster has no coord to copy a config from")?;
    let mut cfg: CoordConfig = read_config(&template)?;
    let addr = format!("127.0.0.1:{}", local::free_port()?);
    let mut members = coord_members(&file);
    members.push(Member {
        id,
        addr: addr.clone(),
    });
    cfg.id = id;
    cfg.dir = dir.join(format!("coord-{id}"));
    cfg.listen = None;
    cfg.members = members;
    cfg.join = true;
    cfg.cluster_tls = local::new_identity(dir, &file, "coord", id)?;
    config::write(&config_path(dir, "coord", id), &cfg)?;
    let (pid, offset) = local::spawn(dir, "coord", id)?;
    let process = Process {
        role: "coord".into(),
        id,
        pid,
        addr: addr.clone(),
    };
    let deadline = Instant::now() + local::START_TIMEOUT;
    let added = async {
        local::wait_listening(dir, "coord", id, offset, deadline).await?;
        let client = CoordClient::connect(file.coords(), file.coord_options()?).await?;
        client
            .change_membership(id, &addr, false, DEFAULT_CATCH_UP)
            .await?;
        let mut addrs = file.coords();
        addrs.push(addr.clone());
        wait_voting(&client, id, &addrs, local::START_TIMEOUT).await
    };
    if let Err(e) = added.await {
        local::signal(pid, libc::SIGKILL);
        return Err(e.context(format!("adding coord {id}")));
    }
    file.processes.push(process.clone());
    file.write(dir)?;
    rewrite_coord_lists(dir, &file)?;
    Ok(process)
}

/// After coord `id` left the Raft group: stops its process, moves its
/// directory aside (a later coord with this id starts empty), drops it
/// from `cluster.json` and from every config's coord list.
async fn retire_local(dir: &Path, id: u64, members: &Members) -> Result<()> {
    let mut file = ClusterFile::read(dir)?;
    let Some(p) = file.process(id).cloned() else {
        bail!("--dir: no process {id} in {}/cluster.json", dir.display());
    };
    if members.voters.contains_key(&id) {
        bail!("coord {id} is still a voter");
    }
    local::stop_process(p.pid, Duration::from_secs(10)).await;
    let data = dir.join(format!("coord-{id}"));
    if data.exists() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = dir.join(format!("coord-{id}.removed-{stamp}"));
        std::fs::rename(&data, &aside)
            .with_context(|| format!("moving {} aside", data.display()))?;
    }
    file.processes.retain(|q| q.id != id);
    file.write(dir)?;
    rewrite_coord_lists(dir, &file)
}

fn read_config<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn coord_members(file: &ClusterFile) -> Vec<Member> {
    file.by_role("coord")
        .map(|p| Member {
            id: p.id,
            addr: p.addr.clone(),
        })
        .collect()
}

/// Every process's config names the coords of `file` (coords: `members`;
/// the others: `coords`).
fn rewrite_coord_lists(dir: &Path, file: &ClusterFile) -> Result<()> {
    let members = coord_members(file);
    let coords = file.coords();
    for p in &file.processes {
        let path = config_path(dir, &p.role, p.id);
        match p.role.as_str() {
            "coord" => {
                let mut c: CoordConfig = read_config(&path)?;
                c.members = members.clone();
                config::write(&path, &c)?;
            }
            "datanode" => {
                let mut c: DataNodeProcConfig = read_config(&path)?;
                c.coords = coords.clone();
                config::write(&path, &c)?;
            }
            "querynode" => {
                let mut c: QueryNodeProcConfig = read_config(&path)?;
                c.coords = coords.clone();
                config::write(&path, &c)?;
            }
            "proxy" => {
                let mut c: ProxyConfig = read_config(&path)?;
                c.coords = coords.clone();
                config::write(&path, &c)?;
            }
            _ => {}
        }
    }
    Ok(())
}
