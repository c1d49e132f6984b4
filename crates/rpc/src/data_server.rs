//! `DataService` over a datanode's [`DataClient`] and [`ShardFeed`].

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt, stream};
use quiver_api::{DataClient, ShardFeed, Subscription, WriteOp};
use quiver_common::Result;
use quiver_proto::node::data_service_server::{DataService, DataServiceServer};
use quiver_proto::node::{Empty, FeedMessage, ShardRequest, TsReply, WriteRequest, feed_message};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::codec::{decode_arg, encode, encode_event, shard_id};
use crate::config::MAX_MESSAGE_BYTES;
use crate::server::reply;

/// The datanode's side of the data path, as a tonic service.
pub struct DataServiceImpl {
    data: Arc<dyn DataClient>,
    feed: Arc<dyn ShardFeed>,
    shutdown: CancellationToken,
}

impl DataServiceImpl {
    pub fn new(data: Arc<dyn DataClient>, feed: Arc<dyn ShardFeed>) -> Self {
        Self {
            data,
            feed,
            shutdown: CancellationToken::new(),
        }
    }

    /// Ends every open shard stream when `token` is cancelled, so that a
    /// graceful server shutdown does not wait for streams that never end
    /// (subscribers then resubscribe elsewhere or later).
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.shutdown = token;
        self
    }

    /// The service to add to a tonic `Router`, with Quiver's message limits.
    pub fn into_service(self) -> DataServiceServer<Self> {
        DataServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<FeedMessage, Status>> + Send>>;

fn msg(m: feed_message::Msg) -> Result<FeedMessage, Status> {
    Ok(FeedMessage { msg: Some(m) })
}

fn payload(r: Result<Vec<u8>>, m: fn(Vec<u8>) -> feed_message::Msg) -> Result<FeedMessage, Status> {
    match r {
        Ok(bytes) => msg(m(bytes)),
        Err(e) => Err(crate::error::to_status(&e)),
    }
}

/// The starting point, then the live events until the datanode ends the
/// stream or `shutdown` fires.
fn feed_stream(sub: Subscription, shutdown: CancellationToken) -> FeedStream {
    let Subscription {
        sealed,
        growing,
        events,
    } = sub;
    let head = stream::once(async move {
        payload(
            encode("sealed segments", &sealed),
            feed_message::Msg::Sealed,
        )
    });
    let growing = stream::iter(growing).map(|m| {
        payload(
            encode("growing mutation", m.as_ref()),
            feed_message::Msg::Growing,
        )
    });
    let ready = stream::once(async { msg(feed_message::Msg::Ready(Empty {})) });
    let live = stream::unfold((events, shutdown), |(mut events, shutdown)| async move {
        let event = tokio::select! {
            e = events.recv() => e?,
            () = shutdown.cancelled() => return None,
        };
        let m = payload(encode_event(&event), feed_message::Msg::Event);
        Some((m, (events, shutdown)))
    });
    Box::pin(head.chain(growing).chain(ready).chain(live))
}

#[tonic::async_trait]
impl DataService for DataServiceImpl {
    async fn write(&self, req: Request<WriteRequest>) -> Result<Response<TsReply>, Status> {
        let r = req.into_inner();
        let result = async {
            let shard = shard_id(r.shard)?;
            let op: WriteOp = decode_arg("op", &r.op)?;
            self.data.write(shard, op).await
        }
        .await;
        reply("Write", result.map(|ts| TsReply { ts }))
    }

    async fn last_ts(&self, req: Request<ShardRequest>) -> Result<Response<TsReply>, Status> {
        let r = req.into_inner();
        let result = async { self.data.last_ts(shard_id(r.shard)?).await }.await;
        reply("LastTs", result.map(|ts| TsReply { ts }))
    }

    async fn flush(&self, req: Request<ShardRequest>) -> Result<Response<Empty>, Status> {
        let r = req.into_inner();
        let result = async { self.data.flush(shard_id(r.shard)?).await }.await;
        reply("Flush", result.map(|()| Empty {}))
    }

    type SubscribeStream = FeedStream;

    async fn subscribe(
        &self,
        req: Request<ShardRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let r = req.into_inner();
        let result = async {
            let shard = shard_id(r.shard)?;
            let sub = self.feed.subscribe(shard).await?;
            tracing::debug!(%shard, sealed = sub.sealed.len(), growing = sub.growing.len(), "shard stream opened");
            Ok(feed_stream(sub, self.shutdown.clone()))
        }
        .await;
        reply("Subscribe", result)
    }
}
