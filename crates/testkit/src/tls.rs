//! Cluster-internal mutual TLS of a test cluster ([`crate::ClusterSpec::tls`]):
//! a private CA and one certificate per node (and one for the harness's
//! own observer), written to the cluster's temporary directory and handed
//! to every role exactly as `[cluster_tls]` hands them to a process. The
//! fault-injection links forward raw TCP, so TLS passes through them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use quiver_roles::certs::CertAuthority;
use quiver_roles::config::ClusterTlsConfig;
use quiver_rpc::ClusterTls;

/// Every node's cluster identity, and the harness's.
pub(crate) struct TestCerts {
    pub(crate) ca: PathBuf,
    nodes: HashMap<u64, (ClusterTlsConfig, ClusterTls)>,
    pub(crate) harness: ClusterTls,
}

impl TestCerts {
    /// A CA and certificates for `ids` in `dir` (created).
    pub(crate) fn create(dir: &Path, ids: impl IntoIterator<Item = u64>) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let authority = CertAuthority::new("quiver-testkit CA")?;
        let ca = dir.join("ca.crt");
        authority.write_cert(&ca)?;
        let identity = |stem: &str| -> Result<(ClusterTlsConfig, ClusterTls)> {
            let (cert, key) = authority.issue(stem, &[])?.write(dir, stem)?;
            let cfg = ClusterTlsConfig {
                cert,
                key,
                ca: ca.clone(),
            };
            let tls = cfg.load()?;
            Ok((cfg, tls))
        };
        let mut nodes = HashMap::new();
        for id in ids {
            nodes.insert(id, identity(&format!("node-{id}"))?);
        }
        let (_, harness) = identity("harness")?;
        Ok(Self { ca, nodes, harness })
    }

    /// Node `id`'s `[cluster_tls]` and its loaded identity.
    pub(crate) fn node(&self, id: u64) -> Option<(ClusterTlsConfig, ClusterTls)> {
        self.nodes.get(&id).cloned()
    }
}
