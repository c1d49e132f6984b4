//! The divergence check of mirrored aliases in cluster mode: run next to
//! every coord, active on the leader only, reading shards through the
//! querynodes and repairing through the datanodes that coord's placement
//! names (see `quiver_admin::divergence`). Its counts are reported by the
//! leader (`NodeHealth`), which proxies show as `divergent_rows`.

use std::sync::Arc;

use async_trait::async_trait;
use quiver_admin::divergence::{DivergenceOptions, PairCatalog, spawn_watch};
use quiver_api::{AliasMeta, CollectionInfo, RouteTable, ShardId, ShardRoute};
use quiver_coord::{Coord, collection_info, route_of};
use quiver_proxy::{ClusterClientConfig, ClusterData, ClusterQuery};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Coord's own placement as a route table.
struct CoordRoutes(Coord);

#[async_trait]
impl RouteTable for CoordRoutes {
    fn route(&self, shard: ShardId) -> ShardRoute {
        route_of(&self.0.state(), shard)
    }

    fn version(&self) -> u64 {
        self.0.state().version()
    }

    async fn changed(&self, since: u64) -> u64 {
        let mut watch = self.0.watch();
        match watch.wait_for(|s| s.version() > since).await {
            Ok(state) => state.version(),
            Err(_) => self.0.state().version(),
        }
    }
}

/// Coord's metadata and mirror lags as the check needs them.
struct CoordPairs(Coord);

#[async_trait]
impl PairCatalog for CoordPairs {
    fn aliases(&self) -> Vec<String> {
        self.0.aliases().into_keys().collect()
    }

    fn alias(&self, alias: &str) -> Option<AliasMeta> {
        self.0.state().alias(alias)
    }

    fn collection(&self, name: &str) -> Option<CollectionInfo> {
        self.0.collection(name).map(|m| collection_info(&m))
    }

    async fn mirror_lag_ms(&self, collection: &str) -> Option<u64> {
        let id = self.0.collection(collection)?.id;
        self.0.mirror_lag_ms(id)
    }
}

/// Starts the check (see the module docs).
pub fn spawn(
    coord: Coord,
    opts: DivergenceOptions,
    tls: Option<quiver_rpc::ClusterTls>,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    opts.validate()?;
    let routes: Arc<dyn RouteTable> = Arc::new(CoordRoutes(coord.clone()));
    let mut config = ClusterClientConfig::default();
    config.rpc.tls = tls;
    let query = Arc::new(ClusterQuery::new(routes.clone(), config.clone())?);
    let data = Arc::new(ClusterData::new(routes, config)?);
    let leader = coord.clone();
    let board = coord.clone();
    Ok(spawn_watch(
        Arc::new(CoordPairs(coord)),
        query,
        data,
        opts,
        Arc::new(move || leader.is_leader()),
        Arc::new(move |alias, rows| board.set_divergence(alias, rows)),
        shutdown,
    ))
}
