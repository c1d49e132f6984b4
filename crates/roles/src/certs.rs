//! Certificates for a local cluster's TLS and for tests, made with rcgen
//! (on ring): a private CA, and the certificates it signs. Every issued
//! certificate names [`CLUSTER_SERVER_NAME`], `localhost` and `127.0.0.1`
//! and serves both as a server and as a client certificate, so one file pair
//! is a process's whole cluster identity.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use quiver_rpc::CLUSTER_SERVER_NAME;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A private certificate authority.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl CertAuthority {
    /// A new CA named `name` (its key lives only in memory until
    /// [`CertAuthority::write_key`]).
    pub fn new(name: &str) -> Result<Self> {
        let key = KeyPair::generate().context("generating the CA key")?;
        let params = ca_params(name)?;
        let cert = params.self_signed(&key).context("signing the CA")?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// The CA `name` of `cert_pem` again, from its key (`write_key`): it
    /// issues certificates that chain to the same CA certificate.
    pub fn load(name: &str, cert_pem: &str, key_pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(key_pem).context("reading the CA key")?;
        Ok(Self {
            issuer: Issuer::new(ca_params(name)?, key),
            cert_pem: cert_pem.to_string(),
        })
    }

    /// Writes the CA's private key to `path` (readable by its owner only).
    pub fn write_key(&self, path: &Path) -> Result<()> {
        write_private(path, &self.issuer.key().serialize_pem())
    }

    /// The CA certificate (what clients and servers verify peers against).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A certificate for `common_name`, valid for [`CLUSTER_SERVER_NAME`],
    /// `localhost`, `127.0.0.1` and `extra_names`, as server and client.
    pub fn issue(&self, common_name: &str, extra_names: &[&str]) -> Result<CertPair> {
        let mut names = vec![
            CLUSTER_SERVER_NAME.to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ];
        names.extend(extra_names.iter().map(|n| n.to_string()));
        let key = KeyPair::generate().context("generating a key")?;
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing the certificate of {common_name}"))?;
        Ok(CertPair {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA certificate to `path`.
    pub fn write_cert(&self, path: &Path) -> Result<()> {
        std::fs::write(path, &self.cert_pem).with_context(|| format!("writing {}", path.display()))
    }
}

/// The CA certificate's fields (the same for a CA made and one loaded).
fn ca_params(name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

impl CertPair {
    /// Writes `DIR/STEM.crt` and `DIR/STEM.key` (the key readable by its
    /// owner only); returns both paths.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, &self.cert_pem)
            .with_context(|| format!("writing {}", cert.display()))?;
        write_private(&key, &self.key_pem)?;
        Ok((cert, key))
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{ClusterTlsConfig, FLAGS, TlsConfig};

    #[test]
    fn issued_certificates_load_as_server_and_cluster_identity() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = CertAuthority::new("test CA").expect("ca");
        let ca_path = dir.path().join("ca.crt");
        ca.write_cert(&ca_path).expect("write ca");
        let (cert, key) = ca
            .issue("node", &[])
            .expect("issue")
            .write(dir.path(), "node")
            .expect("write");
        TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
            ca: Some(ca_path.clone()),
        }
        .server_config(FLAGS)
        .expect("front door settings");
        ClusterTlsConfig {
            cert: cert.clone(),
            key,
            ca: ca_path,
        }
        .load()
        .expect("cluster identity");

        // A key that is not the certificate's is refused, naming both flags.
        let (_, other_key) = ca
            .issue("other", &[])
            .expect("issue")
            .write(dir.path(), "other")
            .expect("write");
        let e = TlsConfig {
            cert,
            key: other_key,
            ca: None,
        }
        .server_config(FLAGS)
        .expect_err("mismatched key");
        let msg = format!("{e:#}");
        assert!(
            msg.contains("--tls-cert") && msg.contains("--tls-key"),
            "{msg}"
        );
    }
}
