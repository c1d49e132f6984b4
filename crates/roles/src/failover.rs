//! Automatic failover of mirrored aliases, run next to every coord and
//! active on the leader only.
//!
//! Every `probe_every` the leader probes both collections of each mirrored
//! alias with `--auto-failover`: a collection is *available* when it is
//! loaded and every shard has a querynode replica that answers a count
//! within `probe_timeout` (a canary read, not just a lease: a replica that
//! is placed but not loaded, or hangs, fails it). When the alias's target
//! has been unavailable for `after`, the other collection is available, the
//! other side is within the alias's `max_lag_ms` (as the target's datanodes
//! last reported it) and the alias was not flipped or altered within
//! `hold_down` (so it never flaps), the
//! leader flips the alias — a compare-and-swap on the target it probed —
//! recorded as `coord:auto-failover` with the reason. A pinned alias is
//! never flipped. Standalone runs the same loop with a [`Canary`] that
//! reads its own querynode.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use quiver_api::{QueryClient, ShardId};
use quiver_common::{CollectionId, wall_ts};
use quiver_coord::{Actor, AliasChange, AliasMeta, Coord, MetaOps, MetaState};
use quiver_rpc::{ClientConfig, RemoteQuery};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Who automatic flips are recorded as.
pub const AUTO_FAILOVER: &str = "coord:auto-failover";

/// When coord flips a mirrored alias by itself (`[failover]` in a coord's
/// config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FailoverOptions {
    /// How long the target must be unavailable.
    pub after_ms: u64,
    /// No automatic flip within this long of the alias's last change.
    pub hold_down_ms: u64,
    pub probe_every_ms: u64,
    pub probe_timeout_ms: u64,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        Self {
            after_ms: 1000,
            hold_down_ms: 30_000,
            probe_every_ms: 200,
            probe_timeout_ms: 500,
        }
    }
}

impl FailoverOptions {
    fn after(&self) -> Duration {
        Duration::from_millis(self.after_ms)
    }

    fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms.max(1))
    }
}

/// The pure decision: the reason to flip `alias` now, or None.
/// `unavailable_for`: how long the target has been unavailable (None: it is
/// available); `other_available`: whether the other collection answered;
/// `lag_ms`: how far the other side is behind (None: unknown); `now_ms`:
/// wall clock.
pub fn decide(
    meta: &AliasMeta,
    unavailable_for: Option<Duration>,
    other_available: bool,
    lag_ms: Option<u64>,
    now_ms: u64,
    opts: &FailoverOptions,
) -> Option<String> {
    let mirror = meta.mirror.as_ref()?;
    if !mirror.auto_failover || mirror.pinned {
        return None;
    }
    let down_for = unavailable_for?;
    if down_for < opts.after() || !other_available {
        return None;
    }
    let lag = lag_ms?;
    if lag > mirror.max_lag_ms {
        return None;
    }
    let last_move = meta
        .history
        .iter()
        .rev()
        .find(|e| e.action.moves_target())
        .map_or(0, |e| e.at_ms);
    if now_ms.saturating_sub(last_move) < opts.hold_down_ms {
        return None;
    }
    Some(format!(
        "{} unavailable for {} ms (no querynode answered for a shard); {} available, {lag} ms behind (max {} ms)",
        meta.collection,
        down_for.as_millis(),
        mirror.other(&meta.collection),
        mirror.max_lag_ms
    ))
}

/// Whether a collection can serve reads now: a canary read per shard.
#[async_trait]
pub trait Canary: Send + Sync + 'static {
    async fn available(&self, state: &MetaState, collection: &str, opts: &FailoverOptions) -> bool;
    /// How far the mirror partner of a collection is behind it (ms; None:
    /// unknown).
    fn mirror_lag_ms(&self, coord: &Coord, collection: CollectionId) -> Option<u64>;
}

/// Probes and flips (see the module docs) in a cluster: canary reads go to
/// each shard's querynode replicas, lags come from datanodes' heartbeats.
/// `tls`: the cluster identity the probes present to querynodes.
pub fn spawn(
    coord: Coord,
    opts: FailoverOptions,
    tls: Option<quiver_rpc::ClusterTls>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let prober = Prober {
        tls,
        ..Prober::default()
    };
    spawn_with(coord, opts, Arc::new(prober), shutdown)
}

/// [`spawn`] with another canary (standalone probes its own querynode).
pub fn spawn_with(
    coord: Coord,
    opts: FailoverOptions,
    prober: Arc<dyn Canary>,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Alias -> (target probed, unavailable since).
        let mut down: HashMap<String, (String, Instant)> = HashMap::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(opts.probe_every_ms.max(10))) => {}
            }
            if !coord.is_leader() {
                down.clear();
                continue;
            }
            let state = coord.state();
            let mirrored: Vec<(String, AliasMeta)> = state
                .aliases()
                .iter()
                .filter(|(_, a)| {
                    a.mirror
                        .as_ref()
                        .is_some_and(|m| m.auto_failover && !m.pinned)
                })
                .map(|(n, a)| (n.clone(), a.clone()))
                .collect();
            down.retain(|alias, _| mirrored.iter().any(|(n, _)| n == alias));
            for (alias, meta) in mirrored {
                let Some(mirror) = &meta.mirror else { continue };
                let target = meta.collection.clone();
                let available = prober.available(&state, &target, &opts).await;
                let since = match down.get(&alias) {
                    _ if available => None,
                    Some((t, since)) if *t == target => Some(*since),
                    _ => Some(Instant::now()),
                };
                match since {
                    None => {
                        down.remove(&alias);
                        continue;
                    }
                    Some(since) => {
                        down.insert(alias.clone(), (target.clone(), since));
                    }
                }
                let other = prober.available(&state, mirror.other(&target), &opts).await;
                let lag = state
                    .collection(&target)
                    .and_then(|c| prober.mirror_lag_ms(&coord, c.id));
                let now_ms = quiver_common::ts_physical_ms(wall_ts());
                let Some(reason) =
                    decide(&meta, since.map(|s| s.elapsed()), other, lag, now_ms, &opts)
                else {
                    continue;
                };
                let change = AliasChange::Flip {
                    alias: alias.clone(),
                    expect: Some(target.clone()),
                };
                match coord
                    .alias_admin(change, Actor::new(AUTO_FAILOVER, reason.clone()))
                    .await
                {
                    Ok(epoch) => {
                        tracing::warn!(
                            alias,
                            from = target,
                            epoch,
                            reason,
                            "alias flipped automatically"
                        );
                        down.remove(&alias);
                    }
                    Err(e) => tracing::warn!(alias, error = %e, "automatic flip refused"),
                }
            }
        }
    })
}

/// Canary reads against querynodes, one client per address.
#[derive(Default)]
struct Prober {
    clients: Mutex<HashMap<String, RemoteQuery>>,
    tls: Option<quiver_rpc::ClusterTls>,
}

#[async_trait]
impl Canary for Prober {
    async fn available(&self, state: &MetaState, collection: &str, opts: &FailoverOptions) -> bool {
        self.probe(state, collection, opts).await
    }

    fn mirror_lag_ms(&self, coord: &Coord, collection: CollectionId) -> Option<u64> {
        coord.mirror_lag_ms(collection)
    }
}

impl Prober {
    fn client(&self, addr: &str, timeout: Duration) -> Option<RemoteQuery> {
        let mut clients = self.clients.lock();
        if let Some(c) = clients.get(addr) {
            return Some(c.clone());
        }
        let config = ClientConfig {
            call_timeout_ms: timeout.as_millis() as u64,
            connect_timeout_ms: timeout.as_millis() as u64,
            tls: self.tls.clone(),
            ..ClientConfig::default()
        };
        let c = RemoteQuery::new(addr, config).ok()?;
        clients.insert(addr.to_string(), c.clone());
        Some(c)
    }

    /// Whether `collection` is loaded and every shard has a replica that
    /// answers a count in time.
    async fn probe(&self, state: &MetaState, collection: &str, opts: &FailoverOptions) -> bool {
        let Some(meta) = state.collection(collection) else {
            return false;
        };
        if !meta.loaded {
            return false;
        }
        for shard in 0..meta.shards {
            let id = ShardId {
                collection_id: meta.id,
                shard,
            };
            let mut answered = false;
            for node in state.shard_replicas(meta.id, shard) {
                let Some(addr) = state.node(node).map(|n| n.addr.clone()) else {
                    continue;
                };
                let Some(client) = self.client(&addr, opts.probe_timeout()) else {
                    continue;
                };
                let probe =
                    tokio::time::timeout(opts.probe_timeout(), client.count(id, 0, None)).await;
                if matches!(probe, Ok(Ok(_))) {
                    answered = true;
                    break;
                }
            }
            if !answered {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_api::{AliasAction, AliasEvent, MirrorMeta};

    fn alias(auto: bool, pinned: bool, last_flip_ms: u64) -> AliasMeta {
        AliasMeta {
            collection: "a".into(),
            epoch: 3,
            mirror: Some(MirrorMeta {
                primary: "a".into(),
                standby: "b".into(),
                auto_failover: auto,
                max_lag_ms: 500,
                pinned,
            }),
            history: vec![
                AliasEvent {
                    epoch: 2,
                    at_ms: last_flip_ms,
                    action: AliasAction::Flip,
                    from: Some("b".into()),
                    to: "a".into(),
                    by: "t".into(),
                    reason: String::new(),
                },
                AliasEvent {
                    epoch: 3,
                    at_ms: last_flip_ms + 10_000,
                    action: AliasAction::Pin,
                    from: Some("a".into()),
                    to: "a".into(),
                    by: "t".into(),
                    reason: String::new(),
                },
            ],
        }
    }

    #[test]
    fn flips_only_when_every_condition_holds() {
        let opts = FailoverOptions::default();
        let (up, down) = (true, false);
        let now = 1_000_000;
        let old = now - 60_000; // a pin 50 s ago does not hold a flip down
        let long = Some(Duration::from_secs(2));
        let flip = decide(&alias(true, false, old), long, up, Some(10), now, &opts);
        assert!(
            flip.as_deref()
                .is_some_and(|r| r.contains("a unavailable") && r.contains("b available")),
            "{flip:?}"
        );
        let no = |m: &AliasMeta, d: Option<Duration>, o: bool, lag: Option<u64>| {
            decide(m, d, o, lag, now, &opts).is_none()
        };
        assert!(
            no(&alias(true, false, old), None, up, Some(10)),
            "target available"
        );
        assert!(
            no(
                &alias(true, false, old),
                Some(Duration::from_millis(300)),
                up,
                Some(10)
            ),
            "not long enough"
        );
        assert!(
            no(&alias(true, false, old), long, down, Some(10)),
            "other side down too"
        );
        assert!(
            no(&alias(true, false, old), long, up, Some(900)),
            "other side too far behind"
        );
        assert!(no(&alias(true, false, old), long, up, None), "lag unknown");
        assert!(
            no(&alias(false, false, old), long, up, Some(10)),
            "auto failover off"
        );
        assert!(no(&alias(true, true, old), long, up, Some(10)), "pinned");
        assert!(
            no(&alias(true, false, now - 20_000), long, up, Some(10)),
            "hold-down"
        );
    }
}
