//! [`StaticRoutes`]: a route table held in memory and changed by hand (a
//! static configuration, tests).

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{RouteTable, ShardId, ShardRoute};
use tokio::sync::watch;

/// Routes set by [`StaticRoutes::set`]; every change bumps the version and
/// wakes the requests waiting for one.
pub struct StaticRoutes {
    routes: Mutex<HashMap<ShardId, ShardRoute>>,
    version: watch::Sender<u64>,
}

impl Default for StaticRoutes {
    fn default() -> Self {
        Self::new()
    }
}

impl StaticRoutes {
    pub fn new() -> Self {
        Self {
            routes: Mutex::new(HashMap::new()),
            version: watch::Sender::new(0),
        }
    }

    /// Replaces the route of `shard`.
    pub fn set(&self, shard: ShardId, route: ShardRoute) {
        let mut routes = self.routes.lock();
        routes.insert(shard, route);
        // Bumped under the lock: a reader that saw the new route also sees
        // a version at least this high.
        self.version.send_modify(|v| *v += 1);
    }

    /// Forgets `shard` (its route becomes empty).
    pub fn remove(&self, shard: ShardId) {
        let mut routes = self.routes.lock();
        routes.remove(&shard);
        self.version.send_modify(|v| *v += 1);
    }
}

#[async_trait]
impl RouteTable for StaticRoutes {
    fn route(&self, shard: ShardId) -> ShardRoute {
        self.routes.lock().get(&shard).cloned().unwrap_or_default()
    }

    fn version(&self) -> u64 {
        *self.version.borrow()
    }

    async fn changed(&self, since: u64) -> u64 {
        let mut rx = self.version.subscribe();
        let seen = rx.wait_for(|v| *v > since).await.map(|v| *v);
        match seen {
            Ok(v) => v,
            // The sender lives as long as `self`, which we borrow.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use quiver_api::NodeAddr;

    use super::*;

    const SHARD: ShardId = ShardId {
        collection_id: 1,
        shard: 0,
    };

    #[tokio::test]
    async fn a_change_wakes_the_waiters_and_bumps_the_version() {
        let routes = Arc::new(StaticRoutes::new());
        assert_eq!(routes.route(SHARD), ShardRoute::default());
        let v0 = routes.version();
        let waiter = {
            let routes = routes.clone();
            tokio::spawn(async move { routes.changed(v0).await })
        };
        let route = ShardRoute {
            owner: Some(NodeAddr {
                id: 1,
                addr: "127.0.0.1:1".into(),
            }),
            replicas: vec![],
        };
        routes.set(SHARD, route.clone());
        let v1 = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .expect("task");
        assert!(v1 > v0);
        assert_eq!(routes.route(SHARD), route);
        // An old version resolves at once.
        assert_eq!(routes.changed(v0).await, v1);
        routes.remove(SHARD);
        assert!(routes.version() > v1);
        assert_eq!(routes.route(SHARD), ShardRoute::default());
    }
}
