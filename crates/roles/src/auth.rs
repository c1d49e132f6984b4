//! Authentication settings of a role (`auth = true`, or an `[auth]` table;
//! `QUIVER_AUTH`; `quiver standalone --auth`) and the front door's gate
//! built from them, with the root user's first-start bootstrap.

use std::fmt;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use quiver_api::CatalogClient;
use quiver_auth::layer::{Gate, HttpPolicy};
use quiver_auth::{Guard, ROOT, SecurityOp};
use serde::{Deserialize, Deserializer, Serialize};

/// Where the root user's first password comes from (never a flag: argv is
/// visible to every user of the machine).
pub const ROOT_PASSWORD_ENV: &str = "QUIVER_ROOT_PASSWORD";
/// How long a front door without a root password waits to see the root
/// user another one created, before it refuses to start.
const ROOT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `[auth]` of a role's config (or `auth = true`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials on the front door (gRPC and HTTP).
    #[serde(default)]
    pub enabled: bool,
    /// The root user's password at the first start with auth on (later
    /// starts ignore it: change it with UpdateCredential). Defaults to
    /// `QUIVER_ROOT_PASSWORD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_password: Option<String>,
    /// `/metrics` needs credentials too.
    #[serde(default)]
    pub protect_metrics: bool,
    /// Host names the status page answers to besides IP addresses and
    /// `localhost` (DNS-rebinding protection).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl fmt::Debug for AuthConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("enabled", &self.enabled)
            .field(
                "root_password",
                &self.root_password.as_ref().map(|_| "<set>"),
            )
            .field("protect_metrics", &self.protect_metrics)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl AuthConfig {
    /// Auth on, everything else default.
    pub fn on() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }
}

/// Whether auth is off with nothing else set (left out of written configs).
pub fn is_off(cfg: &AuthConfig) -> bool {
    *cfg == AuthConfig::default()
}

/// `auth = true` or an `[auth]` table.
pub fn flag_or_table<'de, D: Deserializer<'de>>(d: D) -> Result<AuthConfig, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Flag(bool),
        Table(AuthConfig),
    }
    Ok(match Either::deserialize(d)? {
        Either::Flag(enabled) => AuthConfig {
            enabled,
            ..AuthConfig::default()
        },
        Either::Table(t) => t,
    })
}

/// The gate of a front door over `catalog`. With auth on, the root user is
/// created at the first start (its password from the config or
/// `QUIVER_ROOT_PASSWORD`; refused without one) — a no-op once it exists.
pub async fn gate(cfg: &AuthConfig, catalog: Arc<dyn CatalogClient>) -> Result<Arc<Gate>> {
    let source = catalog.clone();
    let guard = Arc::new(Guard::new(cfg.enabled, Arc::new(move || source.security())));
    let password = cfg
        .root_password
        .clone()
        .or_else(|| std::env::var(ROOT_PASSWORD_ENV).ok())
        .filter(|p| !p.is_empty());
    if cfg.enabled && password.is_none() {
        // Another front door may have created root already: a cluster
        // proxy's view of coord's metadata can lag its start for a moment.
        let deadline = std::time::Instant::now() + ROOT_WAIT;
        while !catalog.security().users.contains_key(ROOT) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    if cfg.enabled && !catalog.security().users.contains_key(ROOT) {
        let Some(password) = password else {
            bail!(
                "auth is on and the root user does not exist yet: set {ROOT_PASSWORD_ENV} \
                 (or [auth] root_password) for the first start"
            );
        };
        quiver_auth::check_password(ROOT_PASSWORD_ENV, &password)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let password_hash =
            tokio::task::spawn_blocking(move || quiver_auth::hash_password(&password))
                .await
                .context("hashing the root password")?
                .map_err(|e| anyhow::anyhow!(e))?;
        catalog
            .change_security(SecurityOp::CreateUser {
                name: ROOT.to_string(),
                password_hash,
                if_absent: true,
            })
            .await
            .context("creating the root user")?;
        tracing::info!("auth: the root user was created");
    }
    if cfg.enabled {
        tracing::info!("auth is on: every call needs credentials");
    }
    Ok(Arc::new(Gate {
        guard,
        http: HttpPolicy {
            allowed_hosts: cfg.allowed_hosts.clone(),
            protect_metrics: cfg.protect_metrics,
        },
    }))
}

/// Says loudly that a cluster role with auth on serves its internal port
/// without cluster TLS: anyone who reaches that port bypasses the front
/// door's credentials.
pub fn warn_internal_open(role: &str, cfg: &AuthConfig, cluster_tls: bool) {
    if cfg.enabled && !cluster_tls {
        tracing::warn!(
            role,
            "auth is on but this {role}'s internal port has no [cluster_tls]: any process that \
             reaches it can call it without credentials (see docs/security.md, Cluster TLS)"
        );
    }
}

/// Says loudly that a front door on a non-loopback address has auth off.
pub fn warn_if_open(cfg: &AuthConfig, addr: std::net::SocketAddr) {
    if !cfg.enabled && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "AUTH IS OFF on a non-loopback address: anyone who can reach {addr} can read, \
             write and drop every collection. Start with --auth (QUIVER_AUTH=true) and \
             QUIVER_ROOT_PASSWORD; see docs/security.md"
        );
        eprintln!(
            "WARNING: auth is off and quiver listens on {addr}: anyone who can reach it can \
             read, write and drop every collection (see docs/security.md)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Role {
        #[serde(default, deserialize_with = "flag_or_table")]
        auth: AuthConfig,
    }

    #[test]
    fn auth_is_a_flag_or_a_table_and_never_printed() {
        let r: Role = toml::from_str("auth = true").expect("flag");
        assert!(r.auth.enabled);
        let r: Role = toml::from_str(
            "[auth]\nenabled = true\nroot_password = \"s3cret-pw\"\nprotect_metrics = true",
        )
        .expect("table");
        assert!(r.auth.enabled && r.auth.protect_metrics);
        assert!(!format!("{:?}", r.auth).contains("s3cret"));
        let r: Role = toml::from_str("").expect("default");
        assert!(!r.auth.enabled);
        assert!(toml::from_str::<Role>("[auth]\nenable = true").is_err());
    }
}
