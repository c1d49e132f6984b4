//! One config file per role (`quiver coord|datanode|querynode|proxy --config FILE`):
//! TOML, layered file → `QUIVER_` environment variables → flags, then validated.
//!
//! Environment overrides name a key in upper case, nested keys joined by `__`:
//! `QUIVER_LISTEN=0.0.0.0:7200`, `QUIVER_STORE__PATH=/data/objects`,
//! `QUIVER_COORDS=a:7100,b:7100` (a comma list for a list of strings). A value is
//! read as TOML when it parses as one (numbers, booleans, arrays), else as a string.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use quiver_coord::CoordOptions;
use quiver_datanode::DataNodeConfig;
use quiver_querynode::QueryNodeConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use crate::tls::{ClusterTlsConfig, TlsConfig};

/// A coord's identity in the member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub id: u64,
    pub addr: String,
}

/// `quiver coord --config FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordConfig {
    pub id: u64,
    /// Where this coord's Raft log, vote and snapshots live.
    pub dir: PathBuf,
    /// `host:port` this coord listens on (peers and clients); defaults to
    /// this coord's address in `members`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Every coord of the cluster (the same list on each). Read on the
    /// first start only: later the membership stored in `dir` is in force.
    pub members: Vec<Member>,
    /// This coord joins a running cluster: a new directory waits until the
    /// leader adds it (`quiver coord add ID ADDR`, docs/cluster.md) instead
    /// of forming a cluster of `members` (which then needs only this coord).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join: bool,
    #[serde(default)]
    pub raft: CoordOptions,
    /// Automatic failover of mirrored aliases (see docs/aliases.md).
    #[serde(default)]
    pub failover: crate::failover::FailoverOptions,
    /// The divergence check of mirrored aliases (see docs/aliases.md).
    #[serde(default)]
    pub divergence: quiver_admin::divergence::DivergenceOptions,
    /// Accepted in every role's config (and `QUIVER_AUTH`); credentials
    /// are checked at the front door (proxy). Internal ports are guarded by
    /// cluster TLS (docs/security.md).
    #[serde(
        default,
        deserialize_with = "crate::auth::flag_or_table",
        skip_serializing_if = "crate::auth::is_off"
    )]
    pub auth: crate::auth::AuthConfig,
    /// Cluster-internal mutual TLS (see docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_tls: Option<ClusterTlsConfig>,
    /// The object store the leader backs metadata up to (docs/faults.md;
    /// the datanodes' store). None: no backups, and losing every coord's
    /// directory loses the metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreConfig>,
    /// Longest a metadata change waits for a backup to cover it
    /// (milliseconds); past it, it is acknowledged from the Raft log alone.
    #[serde(default = "default_backup_wait_ms")]
    pub backup_wait_ms: u64,
}

fn default_backup_wait_ms() -> u64 {
    2_000
}

/// Where the object store is: a shared local directory or an S3 bucket
/// (see docs/cluster.md, "Object store").
pub use quiver_storage::StoreConfig;

/// `quiver datanode --config FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataNodeProcConfig {
    /// Unique among datanodes and querynodes, never reused for another node.
    pub id: u64,
    /// `host:port` of this node's internal gRPC service (`quiver.node.v1`).
    pub listen: String,
    /// Addresses of the coords (any one is enough; all is better).
    /// `host:port` other processes reach this node at, when it is not
    /// `listen` (e.g. `listen = "0.0.0.0:7200"` in a container, advertised
    /// as the pod's DNS name). Default: `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    pub coords: Vec<String>,
    pub store: StoreConfig,
    /// How often the node tells coord it is alive (milliseconds).
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default)]
    pub datanode: DataNodeConfig,
    /// Accepted in every role's config (and `QUIVER_AUTH`); credentials
    /// are checked at the front door (proxy). Internal ports are guarded by
    /// cluster TLS (docs/security.md).
    #[serde(
        default,
        deserialize_with = "crate::auth::flag_or_table",
        skip_serializing_if = "crate::auth::is_off"
    )]
    pub auth: crate::auth::AuthConfig,
    /// Cluster-internal mutual TLS (see docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_tls: Option<ClusterTlsConfig>,
}

/// `quiver querynode --config FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryNodeProcConfig {
    pub id: u64,
    pub listen: String,
    /// `host:port` other processes reach this node at, when it is not
    /// `listen` (e.g. `listen = "0.0.0.0:7200"` in a container, advertised
    /// as the pod's DNS name). Default: `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    pub coords: Vec<String>,
    pub store: StoreConfig,
    /// Local directory for segment files downloaded from the store.
    pub cache_dir: PathBuf,
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    #[serde(default)]
    pub querynode: QueryNodeConfig,
    /// Accepted in every role's config (and `QUIVER_AUTH`); credentials
    /// are checked at the front door (proxy). Internal ports are guarded by
    /// cluster TLS (docs/security.md).
    #[serde(
        default,
        deserialize_with = "crate::auth::flag_or_table",
        skip_serializing_if = "crate::auth::is_off"
    )]
    pub auth: crate::auth::AuthConfig,
    /// Cluster-internal mutual TLS (see docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_tls: Option<ClusterTlsConfig>,
}

/// `quiver proxy --config FILE`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub id: u64,
    /// `host:port` of the Milvus gRPC API.
    pub listen: String,
    pub coords: Vec<String>,
    /// How long one request may spend retrying another replica or the new
    /// owner of a shard before it fails (milliseconds).
    #[serde(default = "default_request_deadline_ms")]
    pub request_deadline_ms: u64,
    /// Who may call this front door (`auth = true` or `[auth]`; see
    /// docs/security.md).
    #[serde(
        default,
        deserialize_with = "crate::auth::flag_or_table",
        skip_serializing_if = "crate::auth::is_off"
    )]
    pub auth: crate::auth::AuthConfig,
    /// The front door over TLS (mutual TLS with `ca`; see docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Cluster-internal mutual TLS (see docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_tls: Option<ClusterTlsConfig>,
    /// Request bounds and admission budgets (`[limits]`, docs/faults.md).
    #[serde(default)]
    pub limits: quiver_proxy::Limits,
    /// The status page's charts: how often this front door samples its
    /// metrics and how much it keeps (`[status_history]`, docs/status-page.md).
    #[serde(default)]
    pub status_history: quiver_admin::HistoryOptions,
}

fn default_heartbeat_ms() -> u64 {
    500
}

fn default_request_deadline_ms() -> u64 {
    10_000
}

/// What every role's config can be checked for.
pub trait Validate {
    fn validate(&self) -> Result<()>;
}

fn check_addr(field: &str, addr: &str) -> Result<()> {
    match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(()),
        _ => bail!("{field}: must be host:port (got {addr:?})"),
    }
}

fn check_coords(coords: &[String]) -> Result<()> {
    if coords.is_empty() {
        bail!("coords: must name at least one coord address");
    }
    coords.iter().try_for_each(|a| check_addr("coords", a))
}

fn check_heartbeat(ms: u64) -> Result<()> {
    if !(10..=60_000).contains(&ms) {
        bail!("heartbeat_ms: must be between 10 and 60000 (got {ms})");
    }
    Ok(())
}

impl Validate for CoordConfig {
    fn validate(&self) -> Result<()> {
        if self.id == 0 {
            bail!("id: must be > 0");
        }
        if self.members.is_empty() {
            bail!("members: must list every coord, this one included");
        }
        let mut ids: Vec<u64> = self.members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.members.len() {
            bail!("members: ids must be unique");
        }
        if !ids.contains(&self.id) {
            bail!("members: must contain this coord's id {}", self.id);
        }
        for m in &self.members {
            check_addr("members.addr", &m.addr)?;
        }
        if let Some(l) = &self.listen {
            check_addr("listen", l)?;
        }
        self.raft.validate().map_err(anyhow::Error::from)
    }
}

/// What datanodes and querynodes share: id, addresses, coords, heartbeat, store.
fn check_node(
    id: u64,
    listen: &str,
    advertise: Option<&str>,
    coords: &[String],
    heartbeat_ms: u64,
    store: &StoreConfig,
) -> Result<()> {
    if id == 0 {
        bail!("id: must be > 0");
    }
    check_addr("listen", listen)?;
    if let Some(a) = advertise {
        check_addr("advertise", a)?;
        if a.ends_with(":0") {
            bail!("advertise: must name the port others connect to, not 0 (got {a:?})");
        }
    }
    check_coords(coords)?;
    check_heartbeat(heartbeat_ms)?;
    store.validate().map_err(|e| anyhow::anyhow!("store: {e}"))
}

impl Validate for DataNodeProcConfig {
    fn validate(&self) -> Result<()> {
        check_node(
            self.id,
            &self.listen,
            self.advertise.as_deref(),
            &self.coords,
            self.heartbeat_ms,
            &self.store,
        )?;
        self.datanode.validate().map_err(anyhow::Error::from)
    }
}

impl Validate for QueryNodeProcConfig {
    fn validate(&self) -> Result<()> {
        check_node(
            self.id,
            &self.listen,
            self.advertise.as_deref(),
            &self.coords,
            self.heartbeat_ms,
            &self.store,
        )?;
        self.querynode.validate().map_err(anyhow::Error::from)
    }
}

impl Validate for ProxyConfig {
    fn validate(&self) -> Result<()> {
        check_addr("listen", &self.listen)?;
        check_coords(&self.coords)?;
        if self.request_deadline_ms < 100 {
            bail!(
                "request_deadline_ms: must be at least 100 (got {})",
                self.request_deadline_ms
            );
        }
        self.status_history.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }
}

/// Reads a role's config: `file`, then `QUIVER_*` from `env`, then `flags`
/// (`key`, TOML value or plain string), then validates.
pub fn load<T: DeserializeOwned + Validate>(
    file: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &[(&str, String)],
) -> Result<T> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    for (key, value) in env {
        let Some(name) = key.strip_prefix("QUIVER_") else {
            continue;
        };
        // Variables of other commands (QUIVER_ADDR, QUIVER_DATA_DIR, ...) are
        // not config keys of this role: only keys the file's shape knows win.
        let path: Vec<String> = name.split("__").map(|p| p.to_ascii_lowercase()).collect();
        set(&mut table, &path, &value, true);
    }
    for (key, value) in flags {
        let path: Vec<String> = key.split('.').map(str::to_string).collect();
        set(&mut table, &path, value, false);
    }
    let config: T = table
        .try_into()
        .with_context(|| format!("{}: invalid config", file.display()))?;
    config
        .validate()
        .with_context(|| format!("{}: invalid config", file.display()))?;
    Ok(config)
}

/// Sets `path` in `table` to `raw` (TOML if it parses, else a string; a comma
/// list when the current value is an array of strings). With `known_only`,
/// only top-level keys the file already has or a role accepts are touched.
fn set(table: &mut toml::Table, path: &[String], raw: &str, known_only: bool) {
    const ROLE_KEYS: &[&str] = &[
        "id",
        "dir",
        "listen",
        "advertise",
        "members",
        "raft",
        "coords",
        "store",
        "heartbeat_ms",
        "datanode",
        "querynode",
        "cache_dir",
        "request_deadline_ms",
        "auth",
        "tls",
        "cluster_tls",
        "limits",
    ];
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    if known_only && !ROLE_KEYS.contains(&path[0].as_str()) && !table.contains_key(&path[0]) {
        return;
    }
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            return;
        };
        t = inner;
    }
    let is_list = matches!(t.get(last), Some(toml::Value::Array(_))) || last == "coords";
    let value = parse_value(raw, is_list);
    t.insert(last.clone(), value);
}

fn parse_value(raw: &str, is_list: bool) -> toml::Value {
    if let Ok(t) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        && let Some(v) = t.get("v")
    {
        return v.clone();
    }
    if is_list {
        return toml::Value::Array(
            raw.split(',')
                .map(|s| toml::Value::String(s.trim().to_string()))
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .collect(),
        );
    }
    toml::Value::String(raw.to_string())
}

/// Writes a config as TOML (used by `quiver cluster up`).
pub fn write<T: Serialize>(path: &Path, config: &T) -> Result<()> {
    let text = toml::to_string(config).context("encoding config")?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(f.path(), text).expect("write");
        f
    }

    const DATANODE: &str = r#"
id = 4
listen = "127.0.0.1:7201"
coords = ["127.0.0.1:7101"]
[store]
kind = "local"
path = "/tmp/objects"
"#;

    #[test]
    fn file_then_env_then_flags() {
        let f = file(DATANODE);
        let env = vec![
            ("QUIVER_COORDS".to_string(), "a:1, b:2".to_string()),
            ("QUIVER_STORE__PATH".to_string(), "/data/o".to_string()),
            ("QUIVER_DATANODE__SEAL_ROWS".to_string(), "5000".to_string()),
            ("QUIVER_ADDR".to_string(), "ignored:1".to_string()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        let c: DataNodeProcConfig =
            load(f.path(), env, &[("listen", "0.0.0.0:9".to_string())]).expect("loads");
        assert_eq!(c.id, 4);
        assert_eq!(c.coords, vec!["a:1".to_string(), "b:2".to_string()]);
        assert_eq!(c.listen, "0.0.0.0:9");
        assert_eq!(c.datanode.seal_rows, 5000);
        assert_eq!(c.heartbeat_ms, 500);
        match &c.store {
            StoreConfig::Local { path } => assert_eq!(path, Path::new("/data/o")),
            other => panic!("expected a local store, got {other:?}"),
        }
    }

    /// What a Kubernetes pod gives a node: the file without an id, the id
    /// and the advertised DNS name from the environment.
    #[test]
    fn id_and_advertised_address_from_the_environment() {
        let f = file(
            &DATANODE
                .replace("id = 4\n", "")
                .replace("127.0.0.1:7201", "0.0.0.0:7200"),
        );
        let env = vec![
            ("QUIVER_ID".to_string(), "101".to_string()),
            (
                "QUIVER_ADVERTISE".to_string(),
                "quiver-datanode-101.quiver-datanode.default.svc.cluster.local:7200".to_string(),
            ),
        ];
        let c: DataNodeProcConfig = load(f.path(), env, &[]).expect("loads");
        assert_eq!(c.id, 101);
        assert_eq!(c.listen, "0.0.0.0:7200");
        assert_eq!(
            c.advertise.as_deref(),
            Some("quiver-datanode-101.quiver-datanode.default.svc.cluster.local:7200")
        );
        let env = vec![("QUIVER_ADVERTISE".to_string(), "node:0".to_string())];
        let e = load::<DataNodeProcConfig>(f.path(), env, &[("id", "3".into())])
            .expect_err("port 0 advertised");
        assert!(format!("{e:#}").contains("advertise"), "{e:#}");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let f = file(&format!("{DATANODE}\nbogus = 1\n"));
        let e = load::<DataNodeProcConfig>(f.path(), vec![], &[]).expect_err("unknown key");
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");

        let f = file(DATANODE);
        let e = load::<DataNodeProcConfig>(f.path(), vec![], &[("listen", "nope".into())])
            .expect_err("bad listen");
        assert!(format!("{e:#}").contains("listen"), "{e:#}");

        let f = file(DATANODE);
        let e = load::<DataNodeProcConfig>(f.path(), vec![], &[("heartbeat_ms", "0".into())])
            .expect_err("bad heartbeat");
        assert!(format!("{e:#}").contains("heartbeat_ms"), "{e:#}");
    }

    #[test]
    fn a_proxy_takes_the_status_pages_history_options() {
        const PROXY: &str = "id = 1\nlisten = \"127.0.0.1:19530\"\ncoords = [\"127.0.0.1:7101\"]\n";
        let f = file(PROXY);
        let c: ProxyConfig = load(f.path(), vec![], &[]).expect("loads");
        assert_eq!(c.status_history, quiver_admin::HistoryOptions::default());
        let f = file(&format!("{PROXY}[status_history]\ninterval_ms = 1000\n"));
        let c: ProxyConfig = load(f.path(), vec![], &[]).expect("loads");
        assert_eq!(c.status_history.interval_ms, 1000);
        assert_eq!(c.status_history.window_ms, 900_000);
        let f = file(&format!("{PROXY}[status_history]\ninterval_ms = 10\n"));
        let e = load::<ProxyConfig>(f.path(), vec![], &[]).expect_err("too fast");
        assert!(
            format!("{e:#}").contains("status_history.interval_ms"),
            "{e:#}"
        );
    }

    #[test]
    fn coord_members_must_include_itself() {
        let f = file(
            r#"
id = 2
dir = "/tmp/c"
members = [{ id = 1, addr = "127.0.0.1:7101" }]
"#,
        );
        let e = load::<CoordConfig>(f.path(), vec![], &[]).expect_err("not a member");
        assert!(format!("{e:#}").contains("members"), "{e:#}");
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    #[test]
    fn an_s3_store_is_configured_and_checked() {
        let f = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(
            f.path(),
            r#"
id = 6
listen = "127.0.0.1:7300"
coords = ["127.0.0.1:7100"]
cache_dir = "/tmp/cache"
store = { kind = "s3", endpoint = "http://127.0.0.1:9000", bucket = "quiver", allow_http = true }
"#,
        )
        .expect("write");
        let c: QueryNodeProcConfig = load(f.path(), vec![], &[]).expect("loads");
        assert!(matches!(c.store, StoreConfig::S3 { .. }));
        let e = load::<QueryNodeProcConfig>(
            f.path(),
            vec![("QUIVER_STORE__BUCKET".to_string(), "Bad_Bucket".to_string())],
            &[],
        )
        .expect_err("bad bucket name");
        assert!(format!("{e:#}").contains("bucket"), "{e:#}");
    }
}
