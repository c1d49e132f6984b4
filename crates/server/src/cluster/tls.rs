//! `quiver cluster up --tls`: a private CA and one certificate per process in
//! `DIR/tls/`, wired into every role's `[cluster_tls]` (mutual TLS on every
//! internal port) and into the proxies' `[tls]` (the front door, one-way).
//! Clients verify the proxies with `DIR/tls/ca.crt` (`quiver --tls-ca`);
//! `DIR/tls/client.crt`/`.key` is the cluster identity of the local tools
//! (`cluster status`, `cluster chaos`, `cluster roll`). The CA's key stays in
//! `DIR/tls/ca.key` (owner-only) so `cluster add` can issue the identity of
//! a process added later. Running `up` again makes new files (a new CA):
//! every process restarts with them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use quiver_roles::certs::CertAuthority;
use quiver_roles::config::{ClusterTlsConfig, TlsConfig};
use quiver_rpc::ClusterTls;
use serde::{Deserialize, Serialize};

/// What `cluster.json` records of a TLS cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    /// The cluster CA: it signed every process's certificate, the proxies'
    /// included (`quiver --tls-ca` this file).
    pub ca: PathBuf,
    /// A client identity for the local tools, signed by the CA.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The CA's key (absent in a cluster made before it was kept: nothing
    /// can be added to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_key: Option<PathBuf>,
}

impl TlsFiles {
    /// A TLS connector presenting the tools' identity (plain HTTP on an
    /// internal port: `/readyz`, `/metrics`).
    pub fn connector(&self) -> Result<tokio_rustls::TlsConnector> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let config = quiver_rpc::tls::client_config(
            &read(&self.client_cert)?,
            &read(&self.client_key)?,
            &read(&self.ca)?,
        )?;
        Ok(tokio_rustls::TlsConnector::from(config))
    }

    /// The tools' cluster identity.
    pub fn cluster_tls(&self) -> Result<ClusterTls> {
        ClusterTlsConfig {
            cert: self.client_cert.clone(),
            key: self.client_key.clone(),
            ca: self.ca.clone(),
        }
        .load()
    }
}

const CA_NAME: &str = "Quiver local cluster CA";

/// The CA of a cluster being written, and the files written so far.
pub struct Certs {
    ca: CertAuthority,
    dir: PathBuf,
    pub files: TlsFiles,
}

impl Certs {
    /// Makes `DIR/tls/` with a new CA and the tools' identity.
    pub fn create(cluster_dir: &Path) -> Result<Self> {
        let dir = cluster_dir.join("tls");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = CertAuthority::new(CA_NAME)?;
        let ca_path = dir.join("ca.crt");
        ca.write_cert(&ca_path)?;
        let ca_key = dir.join("ca.key");
        ca.write_key(&ca_key)?;
        let (client_cert, client_key) = ca.issue("quiver tools", &[])?.write(&dir, "client")?;
        Ok(Self {
            ca,
            dir,
            files: TlsFiles {
                ca: ca_path,
                client_cert,
                client_key,
                ca_key: Some(ca_key),
            },
        })
    }

    /// The CA of a running TLS cluster (to issue a new process's identity).
    pub fn open(cluster_dir: &Path, files: &TlsFiles) -> Result<Self> {
        let Some(key_path) = &files.ca_key else {
            anyhow::bail!(
                "--dir: this TLS cluster was made before `cluster up --tls` kept its CA's key, so a new process cannot get a certificate (bring it up again)"
            );
        };
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let ca = CertAuthority::load(CA_NAME, &read(&files.ca)?, &read(key_path)?)?;
        Ok(Self {
            ca,
            dir: cluster_dir.join("tls"),
            files: files.clone(),
        })
    }

    /// Issues the certificate of `role` `id` (`DIR/tls/ROLE-ID.crt`, `.key`).
    pub fn identity(&self, role: &str, id: u64) -> Result<ClusterTlsConfig> {
        let stem = format!("{role}-{id}");
        let (cert, key) = self.ca.issue(&stem, &[])?.write(&self.dir, &stem)?;
        Ok(ClusterTlsConfig {
            cert,
            key,
            ca: self.files.ca.clone(),
        })
    }
}

/// A proxy's front door over one-way TLS with its cluster certificate.
pub fn front_door(identity: ClusterTlsConfig) -> TlsConfig {
    TlsConfig {
        cert: identity.cert,
        key: identity.key,
        ca: None,
    }
}
