//! Client settings and the channel to one node.

use std::time::Duration;

use quiver_common::{Error, Result};
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::tls::ClusterTls;

/// Largest message either side sends or accepts. A write carries a whole
/// batch and a subscription's growing data travels one mutation per message,
/// so this bounds the largest batch, like the front door's own limit.
pub const MAX_MESSAGE_BYTES: usize = 512 << 20;

/// How a client reaches a node. Durations in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// Longest wait for a TCP connection.
    pub connect_timeout_ms: u64,
    /// Deadline of one call (write, last_ts, search, query, count). A read
    /// waits on the querynode for its guarantee timestamp, so keep this above
    /// the querynode's `max_wait_ms`.
    pub call_timeout_ms: u64,
    /// Deadline of a flush (it seals and indexes the growing data).
    pub flush_timeout_ms: u64,
    /// Deadline for a subscription's starting point (sealed list and growing
    /// data); the live stream after it has none.
    pub subscribe_timeout_ms: u64,
    /// HTTP/2 keep-alive: a ping this often, and a connection whose ping is
    /// not answered within `keepalive_timeout_ms` is closed (a stopped or
    /// partitioned node ends its streams instead of hanging them).
    pub keepalive_interval_ms: u64,
    pub keepalive_timeout_ms: u64,
    /// Cluster-internal mutual TLS: this process's identity and the cluster
    /// CA (not a config key: set from the role's `[cluster_tls]`).
    #[serde(skip)]
    pub tls: Option<ClusterTls>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            call_timeout_ms: 30_000,
            flush_timeout_ms: 600_000,
            subscribe_timeout_ms: 60_000,
            keepalive_interval_ms: 5_000,
            keepalive_timeout_ms: 5_000,
            tls: None,
        }
    }
}

impl ClientConfig {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("connect_timeout_ms", self.connect_timeout_ms),
            ("call_timeout_ms", self.call_timeout_ms),
            ("flush_timeout_ms", self.flush_timeout_ms),
            ("subscribe_timeout_ms", self.subscribe_timeout_ms),
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
        ] {
            if v == 0 {
                return Err(Error::invalid(format!("rpc.{name}"), "must be > 0"));
            }
        }
        Ok(())
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }

    pub(crate) fn flush_timeout(&self) -> Duration {
        Duration::from_millis(self.flush_timeout_ms)
    }

    pub(crate) fn subscribe_timeout(&self) -> Duration {
        Duration::from_millis(self.subscribe_timeout_ms)
    }

    /// A lazily connected channel to `addr` (`host:port` or `http://host:port`;
    /// TLS with [`ClientConfig::tls`]):
    /// it connects on the first call and reconnects after a failure.
    pub(crate) fn channel(&self, addr: &str) -> Result<Channel> {
        let endpoint = crate::tls::endpoint(addr, self.tls.as_ref())
            .map_err(|e| Error::invalid("address", e.to_string()))?
            .connect_timeout(Duration::from_millis(self.connect_timeout_ms))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_millis(self.keepalive_interval_ms))
            .keep_alive_timeout(Duration::from_millis(self.keepalive_timeout_ms))
            .keep_alive_while_idle(true);
        Ok(endpoint.connect_lazy())
    }
}
