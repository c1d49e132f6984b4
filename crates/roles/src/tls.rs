//! TLS settings of the roles, read from files with errors that name the
//! flag or config key at fault:
//! - [`TlsConfig`] (`[tls]` of a proxy's config, `quiver standalone
//!   --tls-cert/--tls-key/--tls-ca`): the front door over TLS; with `ca`,
//!   mutual TLS (clients must present a certificate signed by it).
//! - [`ClusterTlsConfig`] (`[cluster_tls]` of every role's config): this
//!   process's identity and the cluster CA; every internal port then
//!   requires mutual TLS, and every internal client presents the identity.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use quiver_rpc::ClusterTls;
use quiver_rpc::tls::{parse_certs, parse_key, server_config};
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::ServerConfig;

/// What the three files are called where they were given (flags or keys).
#[derive(Debug, Clone, Copy)]
pub struct Names {
    pub cert: &'static str,
    pub key: &'static str,
    pub ca: &'static str,
}

/// `quiver standalone`'s flags.
pub const FLAGS: Names = Names {
    cert: "--tls-cert",
    key: "--tls-key",
    ca: "--tls-ca",
};

/// A role config's `[tls]` section.
pub const TLS_KEYS: Names = Names {
    cert: "tls.cert",
    key: "tls.key",
    ca: "tls.ca",
};

/// A role config's `[cluster_tls]` section.
pub const CLUSTER_TLS_KEYS: Names = Names {
    cert: "cluster_tls.cert",
    key: "cluster_tls.key",
    ca: "cluster_tls.ca",
};

/// The front door's TLS: its certificate (PEM, the chain if any) and key;
/// with `ca`, clients must present a certificate signed by that CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
}

impl TlsConfig {
    /// From `quiver standalone`'s flags: none of them is plain text; a key
    /// or a CA without a certificate (or a certificate without a key) is an
    /// error naming the flags.
    pub fn from_flags(
        cert: Option<PathBuf>,
        key: Option<PathBuf>,
        ca: Option<PathBuf>,
    ) -> Result<Option<TlsConfig>> {
        match (cert, key, ca) {
            (None, None, None) => Ok(None),
            (Some(cert), Some(key), ca) => Ok(Some(TlsConfig { cert, key, ca })),
            (Some(_), None, _) => {
                bail!("--tls-cert needs --tls-key (the certificate's private key)")
            }
            (None, _, _) => bail!(
                "--tls-key and --tls-ca need --tls-cert (the server's certificate): TLS is on only with --tls-cert and --tls-key"
            ),
        }
    }

    /// Reads and checks the files; the server's TLS settings.
    pub fn server_config(&self, names: Names) -> Result<Arc<ServerConfig>> {
        let cert = read_certs(names.cert, &self.cert)?;
        let key = read_key(names.key, &self.key)?;
        let ca = match &self.ca {
            Some(ca) => Some(read_certs(names.ca, ca)?),
            None => None,
        };
        server_config(&cert, &key, ca.as_deref()).map_err(|e| {
            anyhow::anyhow!(
                "{} {} / {} {}: {e}",
                names.cert,
                self.cert.display(),
                names.key,
                self.key.display()
            )
        })
    }
}

/// Cluster-internal mutual TLS: this process's certificate and key, and the
/// cluster CA that signed every process's certificate. Certificates must
/// name [`quiver_rpc::CLUSTER_SERVER_NAME`] among their DNS names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl ClusterTlsConfig {
    /// Reads and checks the files.
    pub fn load(&self) -> Result<ClusterTls> {
        let names = CLUSTER_TLS_KEYS;
        let cert = read_certs(names.cert, &self.cert)?;
        let key = read_key(names.key, &self.key)?;
        let ca = read_certs(names.ca, &self.ca)?;
        ClusterTls::from_pem(&cert, &key, &ca).map_err(|e| {
            anyhow::anyhow!(
                "{} {} / {} {}: {e}",
                names.cert,
                self.cert.display(),
                names.key,
                self.key.display()
            )
        })
    }
}

/// Loads an optional `[cluster_tls]`.
pub fn load_cluster_tls(cfg: Option<&ClusterTlsConfig>) -> Result<Option<ClusterTls>> {
    cfg.map(ClusterTlsConfig::load).transpose()
}

fn read(name: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{name}: cannot read {}", path.display()))
}

fn read_certs(name: &str, path: &Path) -> Result<Vec<u8>> {
    let pem = read(name, path)?;
    parse_certs(&pem).map_err(|e| anyhow::anyhow!("{name}: {}: {e}", path.display()))?;
    Ok(pem)
}

fn read_key(name: &str, path: &Path) -> Result<Vec<u8>> {
    let pem = read(name, path)?;
    parse_key(&pem).map_err(|e| anyhow::anyhow!("{name}: {}: {e}", path.display()))?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_must_come_in_order() {
        let p = |s: &str| Some(PathBuf::from(s));
        assert_eq!(TlsConfig::from_flags(None, None, None).expect("none"), None);
        let e = TlsConfig::from_flags(None, p("k"), None).expect_err("key alone");
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        let e = TlsConfig::from_flags(None, None, p("ca")).expect_err("ca alone");
        assert!(e.to_string().contains("--tls-ca"), "{e}");
        let e = TlsConfig::from_flags(p("c"), None, None).expect_err("cert alone");
        assert!(e.to_string().contains("--tls-key"), "{e}");
        let c = TlsConfig::from_flags(p("c"), p("k"), p("ca")).expect("all three");
        assert_eq!(c.and_then(|c| c.ca), p("ca"));
    }

    #[test]
    fn missing_and_invalid_files_name_the_flag() {
        let dir = tempfile::tempdir().expect("dir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem").expect("write");
        let cfg = TlsConfig {
            cert: dir.path().join("absent.pem"),
            key: junk.clone(),
            ca: None,
        };
        let e = cfg.server_config(FLAGS).expect_err("missing cert");
        assert!(format!("{e:#}").contains("--tls-cert"), "{e:#}");
        let cfg = TlsConfig {
            cert: junk.clone(),
            key: junk.clone(),
            ca: None,
        };
        let e = cfg.server_config(TLS_KEYS).expect_err("junk cert");
        assert!(format!("{e:#}").contains("tls.cert"), "{e:#}");
        let e = ClusterTlsConfig {
            cert: junk.clone(),
            key: junk.clone(),
            ca: junk,
        }
        .load()
        .expect_err("junk");
        assert!(format!("{e:#}").contains("cluster_tls.cert"), "{e:#}");
    }
}
