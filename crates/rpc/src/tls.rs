//! TLS for Quiver's servers and internal clients: rustls on ring.
//!
//! - [`server_config`]: a server's certificate and key, and for mutual TLS
//!   the CA every client certificate must be signed by. ALPN offers `h2` and
//!   `http/1.1`, so the front door's status page and `/metrics` also answer
//!   HTTP/1.1 clients over TLS (browsers, Prometheus, curl).
//! - Connections, TLS or not, are accepted by [`crate::accept::incoming`]:
//!   each handshake in its own task, bounded in time and number.
//! - [`ClusterTls`]: a cluster process's identity and the cluster CA. Its
//!   servers require a client certificate signed by the CA; its clients
//!   present the identity and verify every peer against the CA under the
//!   fixed name [`CLUSTER_SERVER_NAME`], so addresses never matter.

use std::fmt;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// The TLS server name every cluster-internal certificate carries (next to
/// `localhost` and `127.0.0.1`) and every internal client verifies.
pub const CLUSTER_SERVER_NAME: &str = "quiver-cluster";

/// A TLS setting that cannot be used; the message says which part and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM text; at least one.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("not a valid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(
            "no certificate found (expected a PEM \"BEGIN CERTIFICATE\" block)".into(),
        ));
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        TlsError(format!(
            "no valid PEM private key found (expected a \"BEGIN PRIVATE KEY\" block): {e}"
        ))
    })
}

fn roots(ca_pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(ca_pem)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// A plain rustls client (for HTTP/1.1 on an internal port: probes,
/// `/metrics`) that presents `cert_pem`/`key_pem` and trusts `ca_pem`.
pub fn client_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    ca_pem: &[u8],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?
        .with_root_certificates(roots(ca_pem)?)
        .with_client_auth_cert(parse_certs(cert_pem)?, parse_key(key_pem)?)
        .map_err(|e| TlsError(format!("client certificate: {e}")))?;
    Ok(Arc::new(config))
}

/// A server's TLS settings: its certificate chain and key; with
/// `client_ca_pem`, mutual TLS (a client without a certificate signed by
/// that CA is refused during the handshake).
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = parse_certs(cert_pem).map_err(|e| TlsError(format!("certificate: {e}")))?;
    let key = parse_key(key_pem).map_err(|e| TlsError(format!("key: {e}")))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS versions: {e}")))?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = roots(ca).map_err(|e| TlsError(format!("CA: {e}")))?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .map_err(|e| TlsError(format!("CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A cluster process's TLS identity and the cluster CA (see the module
/// docs). Cheap to clone.
#[derive(Clone)]
pub struct ClusterTls {
    server: Arc<ServerConfig>,
    client: ClientTlsConfig,
}

impl fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterTls { .. }")
    }
}

impl ClusterTls {
    /// This process's certificate and key, and the cluster CA (PEM texts).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> Result<Self, TlsError> {
        let server = server_config(cert_pem, key_pem, Some(ca_pem))?;
        let client = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .identity(Identity::from_pem(cert_pem, key_pem))
            .domain_name(CLUSTER_SERVER_NAME);
        Ok(Self { server, client })
    }

    /// The settings of this process's internal servers (mutual TLS).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The client settings of this process's internal calls.
    pub fn client_config(&self) -> ClientTlsConfig {
        self.client.clone()
    }
}

/// An endpoint for `addr` (`host:port`, `http://host:port` or
/// `https://host:port`): plain text without `tls`, else TLS with this
/// process's cluster identity.
pub fn endpoint(addr: &str, tls: Option<&ClusterTls>) -> Result<Endpoint, TlsError> {
    let bare = addr
        .strip_prefix("http://")
        .or_else(|| addr.strip_prefix("https://"))
        .unwrap_or(addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let endpoint = Endpoint::from_shared(format!("{scheme}://{bare}"))
        .map_err(|e| TlsError(format!("bad address {addr:?}: {e}")))?;
    match tls {
        None => Ok(endpoint),
        Some(tls) => endpoint
            .tls_config(tls.client_config())
            .map_err(|e| TlsError(format!("TLS settings for {addr}: {e}"))),
    }
}
