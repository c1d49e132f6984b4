//! How a client connects: TLS (one-way or mutual) and a token sent with
//! every call, as pymilvus does.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Request, Status};

use crate::error::{Error, Result};

/// Options of [`crate::Client::connect_with`]. An `https://` address or a
/// `tls_ca` means TLS.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// `user:password`, sent with every call as the gRPC metadata
    /// `authorization: base64(token)` (what pymilvus sends).
    pub token: Option<String>,
    /// The CA (PEM) that signed the server's certificate (or the server's
    /// self-signed certificate itself).
    pub tls_ca: Option<PathBuf>,
    /// This client's certificate and key (PEM), for servers that require
    /// mutual TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The name the server's certificate must carry (default: the host of
    /// the address).
    pub server_name: Option<String>,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("tls_ca", &self.tls_ca)
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ConnectOptions {
    /// Whether these options ask for TLS whatever the address says.
    pub fn wants_tls(&self) -> bool {
        self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// The client TLS settings (`None`: no CA, certificate or key given).
    pub(crate) fn tls_config(&self) -> Result<ClientTlsConfig> {
        let mut tls = ClientTlsConfig::new();
        match &self.tls_ca {
            Some(ca) => tls = tls.ca_certificate(Certificate::from_pem(read_pem("--tls-ca", ca)?)),
            None => {
                return Err(Error::Options(
                    "TLS needs --tls-ca: the CA certificate (PEM) that signed the server's certificate"
                        .into(),
                ));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(
                    read_pem("--tls-cert", cert)?,
                    read_pem("--tls-key", key)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(Error::Options(
                    "--tls-cert and --tls-key go together (the client certificate and its key)"
                        .into(),
                ));
            }
        }
        if let Some(name) = &self.server_name {
            tls = tls.domain_name(name.clone());
        }
        Ok(tls)
    }

    /// The interceptor that sends the token.
    pub(crate) fn auth(&self) -> Result<Auth> {
        let Some(token) = &self.token else {
            return Ok(Auth(None));
        };
        if !token.contains(':') {
            return Err(Error::Options("--token: expected user:password".into()));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(token);
        let value = MetadataValue::try_from(encoded)
            .map_err(|e| Error::Options(format!("--token: {e}")))?;
        Ok(Auth(Some(value)))
    }
}

fn read_pem(flag: &str, path: &Path) -> Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::Options(format!("{flag}: cannot read {}: {e}", path.display())))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN ") {
        return Err(Error::Options(format!(
            "{flag}: {} is not a PEM file",
            path.display()
        )));
    }
    Ok(pem)
}

/// Adds `authorization: base64(user:password)` to every call when a token
/// was given.
#[derive(Clone, Default)]
pub struct Auth(Option<MetadataValue<Ascii>>);

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Auth(token)"
        } else {
            "Auth(none)"
        })
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> std::result::Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// What the stubs run over: the channel, and the token interceptor.
pub type Transport = InterceptedService<Channel, Auth>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_travels_as_pymilvus_sends_it() {
        let opts = ConnectOptions {
            token: Some("root:Milvus".into()),
            ..Default::default()
        };
        let mut auth = opts.auth().expect("token");
        let req = auth.call(Request::new(())).expect("intercepted");
        assert_eq!(
            req.metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some("cm9vdDpNaWx2dXM=")
        );
        assert!(!format!("{opts:?}").contains("Milvus"));
        let bad = ConnectOptions {
            token: Some("nocolon".into()),
            ..Default::default()
        };
        assert!(matches!(bad.auth(), Err(Error::Options(_))));
    }

    #[test]
    fn tls_options_name_the_flag_at_fault() {
        let opts = ConnectOptions {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = opts.tls_config().expect_err("missing file");
        assert!(e.to_string().contains("--tls-ca"), "{e}");
        let dir = std::env::temp_dir().join(format!("quiver-client-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "junk").expect("write");
        let opts = ConnectOptions {
            tls_ca: Some(junk.clone()),
            ..Default::default()
        };
        let e = opts.tls_config().expect_err("not pem");
        assert!(e.to_string().contains("not a PEM"), "{e}");
        let opts = ConnectOptions {
            tls_cert: Some(junk),
            ..Default::default()
        };
        assert!(opts.wants_tls());
        let e = opts.tls_config().expect_err("cert without CA");
        assert!(e.to_string().contains("--tls-ca"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
