//! The connection: address parsing, channel set-up, the generated stub.

use std::time::Duration;

use quiver_proto::admin::admin_service_client::AdminServiceClient;
use quiver_proto::milvus::milvus_service_client::MilvusServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::connect::{Auth, ConnectOptions, Transport};
use crate::error::{Error, Result, root_cause};

/// Where `quiver standalone` listens by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:19530";

/// How long [`Client::connect`] waits for the TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest message either way (the server accepts up to 512 MiB too).
const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// A client of one server. Cloning is cheap and clones share the connection,
/// so one client can serve many tasks at once.
#[derive(Clone, Debug)]
pub struct Client {
    stub: MilvusServiceClient<Transport>,
    admin: AdminServiceClient<Transport>,
    transport: Transport,
    addr: String,
}

/// `host:port`, `http://host:port` or `https://host:port` (a trailing `/`
/// is allowed) as the URI of the endpoint (`http://` unless `https://`).
pub fn endpoint_uri(addr: &str) -> Result<String> {
    let bad = |reason: &str| Error::InvalidAddress {
        addr: addr.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = addr.trim();
    let (scheme, rest) = match trimmed.split_once("://") {
        None => ("http", trimmed),
        Some(("http", rest)) => ("http", rest),
        Some(("https", rest)) => ("https", rest),
        Some(_) => {
            return Err(bad(
                "expected host:port, http://host:port or https://host:port",
            ));
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(bad("missing port (expected host:port)"));
    };
    if host.is_empty() || rest.contains('/') {
        return Err(bad("expected host:port or http://host:port"));
    }
    if port.parse::<u16>().is_err() {
        return Err(bad("the port must be a number between 0 and 65535"));
    }
    Ok(format!("{scheme}://{rest}"))
}

impl Client {
    /// Connects to `addr` (`host:port` or `http://host:port`), failing after
    /// 5 s if the server cannot be reached.
    pub async fn connect(addr: &str) -> Result<Self> {
        Self::connect_with(addr, &ConnectOptions::default()).await
    }

    /// Connects to `addr` with `options`: TLS when the address is
    /// `https://host:port` or a CA is given (mutual TLS with a client
    /// certificate), a token sent with every call.
    pub async fn connect_with(addr: &str, options: &ConnectOptions) -> Result<Self> {
        let mut uri = endpoint_uri(addr)?;
        let auth = options.auth()?;
        if options.wants_tls()
            && let Some(rest) = uri.strip_prefix("http://")
        {
            uri = format!("https://{rest}");
        }
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| Error::InvalidAddress {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if uri.starts_with("https://") {
            endpoint = endpoint
                .tls_config(options.tls_config()?)
                .map_err(|e| Error::Options(format!("TLS settings: {e}")))?;
        }
        let channel = endpoint.connect().await.map_err(|error| Error::Connect {
            addr: uri.clone(),
            reason: root_cause(&error),
            error,
        })?;
        Ok(Self::with_auth(channel, uri, auth))
    }

    /// A client over a channel the caller set up (timeouts, TLS, ...).
    pub fn from_channel(channel: Channel, addr: impl Into<String>) -> Self {
        Self::with_auth(channel, addr, Auth::default())
    }

    fn with_auth(channel: Channel, addr: impl Into<String>, auth: Auth) -> Self {
        Self {
            stub: MilvusServiceClient::with_interceptor(channel.clone(), auth.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            admin: AdminServiceClient::with_interceptor(channel.clone(), auth.clone()),
            transport: Transport::new(channel, auth),
            addr: addr.into(),
        }
    }

    /// The server's URI.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The generated stub, for RPCs this client does not wrap.
    pub fn stub(&self) -> MilvusServiceClient<Transport> {
        self.stub.clone()
    }

    /// The connection with its token interceptor, for callers that drive
    /// `tonic::client::Grpc` themselves (e.g. with pre-encoded requests).
    pub fn transport(&self) -> Transport {
        self.transport.clone()
    }

    /// The generated stub of Quiver's admin API (`quiver.admin.v1`).
    pub fn admin_stub(&self) -> AdminServiceClient<Transport> {
        self.admin.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_and_without_scheme() {
        let ok = |a: &str| endpoint_uri(a).expect(a);
        assert_eq!(ok("127.0.0.1:19530"), "http://127.0.0.1:19530");
        assert_eq!(ok("http://localhost:19530/"), "http://localhost:19530");
        assert_eq!(ok(" [::1]:1 "), "http://[::1]:1");
        assert_eq!(ok("https://localhost:19530"), "https://localhost:19530");
        for bad in [
            "localhost",
            "grpc://h:1",
            ":19530",
            "h:port",
            "h:1/x",
            "h:70000",
        ] {
            let e = endpoint_uri(bad).expect_err(bad);
            assert!(matches!(e, Error::InvalidAddress { .. }), "{bad}: {e}");
        }
    }
}
