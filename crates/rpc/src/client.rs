//! What both clients share: a lazily connected channel and calls with a
//! deadline whose failures become [`quiver_common::Error`]s.

use std::future::Future;
use std::time::Duration;

use quiver_common::{Error, Result};
use tonic::transport::Channel;
use tonic::{Response, Status};

use crate::config::ClientConfig;
use crate::error::from_status;

pub(crate) struct Conn {
    pub(crate) addr: String,
    pub(crate) channel: Channel,
    pub(crate) config: ClientConfig,
}

impl Conn {
    /// Needs a Tokio runtime (the channel's worker task runs on it); connects
    /// on the first call.
    pub(crate) fn new(addr: &str, config: ClientConfig) -> Result<Self> {
        config.validate()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Internal(
                "an rpc client must be created inside a Tokio runtime".into(),
            ));
        }
        Ok(Self {
            addr: addr.to_string(),
            channel: config.channel(addr)?,
            config,
        })
    }

    /// Runs one call with `deadline`: a late answer is DeadlineExceeded, a
    /// failed one the error the peer sent (or Unavailable from the transport).
    pub(crate) async fn call<T>(
        &self,
        rpc: &str,
        deadline: Duration,
        fut: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T> {
        match tokio::time::timeout(deadline, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(from_status(&s)),
            Err(_) => Err(Error::DeadlineExceeded(format!(
                "{rpc} to {}: no answer within {} ms",
                self.addr,
                deadline.as_millis()
            ))),
        }
    }
}
