//! [`RemoteData`]: a datanode across the network, as [`DataClient`] and
//! [`ShardFeed`].

use std::sync::Arc;

use async_trait::async_trait;
use quiver_api::{DataClient, SegmentInfo, ShardEvent, ShardFeed, ShardId, Subscription, WriteOp};
use quiver_common::{Error, Mutation, Result, Timestamp};
use quiver_metrics::trace::{Propagate, Traced};
use quiver_proto::node::data_service_client::DataServiceClient;
use quiver_proto::node::{FeedMessage, ShardRequest, WriteRequest, feed_message};
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::transport::Channel;

use crate::client::Conn;
use crate::codec::{decode_event, decode_reply, encode, shard_ref};
use crate::config::{ClientConfig, MAX_MESSAGE_BYTES};
use crate::error::from_status;

/// A datanode reached over gRPC. Cheap to clone; connects lazily and
/// reconnects after failures.
#[derive(Clone)]
pub struct RemoteData {
    conn: Arc<Conn>,
}

impl RemoteData {
    /// A client of the datanode at `addr` (`host:port`). Must be called
    /// inside a Tokio runtime; does not connect yet.
    pub fn new(addr: &str, config: ClientConfig) -> Result<Self> {
        Ok(Self {
            conn: Arc::new(Conn::new(addr, config)?),
        })
    }

    pub fn addr(&self) -> &str {
        &self.conn.addr
    }

    fn client(&self) -> DataServiceClient<Traced<Channel>> {
        DataServiceClient::with_interceptor(self.conn.channel.clone(), Propagate)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Reads the starting point of a stream: `sealed`, the growing
    /// mutations, `ready`.
    async fn start(
        &self,
        shard: ShardId,
    ) -> Result<(Vec<SegmentInfo>, Vec<Arc<Mutation>>, Streaming<FeedMessage>)> {
        let mut stream = self
            .client()
            .subscribe(ShardRequest {
                shard: Some(shard_ref(shard)),
            })
            .await
            .map_err(|s| from_status(&s))?
            .into_inner();
        let mut next = async || -> Result<feed_message::Msg> {
            match stream.message().await {
                Ok(Some(FeedMessage { msg: Some(m) })) => Ok(m),
                Ok(Some(FeedMessage { msg: None })) => Err(Error::Internal(format!(
                    "shard {shard}: empty stream message from the datanode"
                ))),
                Ok(None) => Err(Error::Unavailable(format!(
                    "shard {shard}: the stream ended before its starting point was complete"
                ))),
                Err(s) => Err(from_status(&s)),
            }
        };
        let sealed = match next().await? {
            feed_message::Msg::Sealed(b) => decode_reply("sealed segments", &b)?,
            other => return Err(unexpected(shard, "sealed", &other)),
        };
        let mut growing = Vec::new();
        loop {
            match next().await? {
                feed_message::Msg::Growing(b) => {
                    growing.push(Arc::new(decode_reply("growing mutation", &b)?));
                }
                feed_message::Msg::Ready(_) => break,
                other => return Err(unexpected(shard, "growing or ready", &other)),
            }
        }
        Ok((sealed, growing, stream))
    }
}

fn unexpected(shard: ShardId, wanted: &str, got: &feed_message::Msg) -> Error {
    let got = match got {
        feed_message::Msg::Sealed(_) => "sealed",
        feed_message::Msg::Growing(_) => "growing",
        feed_message::Msg::Ready(_) => "ready",
        feed_message::Msg::Event(_) => "event",
    };
    Error::Internal(format!(
        "shard {shard}: expected {wanted} on the stream, got {got}"
    ))
}

/// Forwards live events until the stream ends or breaks (then the receiver
/// closes, and the subscriber resubscribes) or the subscriber goes away.
async fn forward(
    shard: ShardId,
    addr: String,
    mut stream: Streaming<FeedMessage>,
    tx: mpsc::UnboundedSender<ShardEvent>,
) {
    loop {
        let m = tokio::select! {
            m = stream.message() => m,
            () = tx.closed() => return,
        };
        let event = match m {
            Ok(Some(FeedMessage {
                msg: Some(feed_message::Msg::Event(b)),
            })) => decode_event(&b),
            Ok(Some(FeedMessage { msg: Some(other) })) => Err(unexpected(shard, "event", &other)),
            Ok(Some(FeedMessage { msg: None })) => Err(Error::Internal(format!(
                "shard {shard}: empty stream message from the datanode"
            ))),
            Ok(None) => {
                tracing::info!(%shard, %addr, "shard stream ended");
                return;
            }
            Err(s) => Err(from_status(&s)),
        };
        match event {
            Ok(e) => {
                if tx.send(e).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::info!(%shard, %addr, error = %e, "shard stream broke");
                return;
            }
        }
    }
}

#[async_trait]
impl DataClient for RemoteData {
    async fn write(&self, shard: ShardId, op: WriteOp) -> Result<Timestamp> {
        let req = WriteRequest {
            shard: Some(shard_ref(shard)),
            op: encode("write", &op)?,
        };
        let c = &self.conn;
        let r = c
            .call("Write", c.config.call_timeout(), self.client().write(req))
            .await?;
        Ok(r.ts)
    }

    async fn last_ts(&self, shard: ShardId) -> Result<Timestamp> {
        let req = ShardRequest {
            shard: Some(shard_ref(shard)),
        };
        let c = &self.conn;
        let r = c
            .call(
                "LastTs",
                c.config.call_timeout(),
                self.client().last_ts(req),
            )
            .await?;
        Ok(r.ts)
    }

    async fn flush(&self, shard: ShardId) -> Result<()> {
        let req = ShardRequest {
            shard: Some(shard_ref(shard)),
        };
        let c = &self.conn;
        c.call("Flush", c.config.flush_timeout(), self.client().flush(req))
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ShardFeed for RemoteData {
    async fn subscribe(&self, shard: ShardId) -> Result<Subscription> {
        let deadline = self.conn.config.subscribe_timeout();
        let (sealed, growing, stream) = tokio::time::timeout(deadline, self.start(shard))
            .await
            .map_err(|_| {
            Error::DeadlineExceeded(format!(
                "Subscribe to {}: shard {shard}: no starting point within {} ms",
                self.conn.addr,
                deadline.as_millis()
            ))
        })??;
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(forward(shard, self.conn.addr.clone(), stream, tx));
        Ok(Subscription {
            sealed,
            growing,
            events,
        })
    }
}
