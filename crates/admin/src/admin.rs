//! `quiver.admin.v1`: the admin API next to the Milvus API (mirrored aliases,
//! flips, pins, compare-and-swap). Changes go to coord through the catalog;
//! reads come from the front door's cache of coord's metadata, so they show
//! what this front door routes by.

use std::sync::Arc;

use std::time::Duration;

use quiver_api::{Actor, AliasChange, AliasMeta, CatalogClient, DataClient, QueryClient};
use quiver_auth::{Caller, Guard, MANAGE_ALIASES, Need};
use quiver_common::Error;
use quiver_proto::admin as pb;
use quiver_proto::admin::admin_service_server::{AdminService, AdminServiceServer};
use quiver_rpc::to_status;

use crate::divergence::{CatalogPairs, verify};
use tonic::{Request, Response, Status};

/// What a change is recorded as when the caller gives no name.
const DEFAULT_ACTOR: &str = "admin-api";
/// Actor names only coord records (automatic failover).
const RESERVED_ACTOR_PREFIX: &str = "coord:";
/// `max_lag_ms` when a mirror request leaves it 0.
pub const DEFAULT_MAX_LAG_MS: u64 = 1000;

/// The admin service over a catalog.
pub struct AdminFront {
    catalog: Arc<dyn CatalogClient>,
    /// Reads and writes for `VerifyAlias` (None: not offered here).
    data_path: Option<(Arc<dyn QueryClient>, Arc<dyn DataClient>)>,
    /// Checks callers' privileges: alias changes need `ManageAliases`.
    guard: Arc<Guard>,
}

type Reply<T> = Result<Response<T>, Status>;

impl AdminFront {
    pub fn new(catalog: Arc<dyn CatalogClient>) -> Self {
        Self {
            catalog,
            data_path: None,
            guard: Arc::new(Guard::off()),
        }
    }

    /// Checks callers against `guard` (the one the front door's gate uses).
    pub fn with_guard(mut self, guard: Arc<Guard>) -> Self {
        self.guard = guard;
        self
    }

    /// The gate's caller, if allowed what `need` says, and the message.
    fn allow<T>(
        &self,
        req: Request<T>,
        need: impl FnOnce(&T) -> Need,
    ) -> Result<(Caller, T), Status> {
        let caller = req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            Status::permission_denied("the request carries no caller identity (not authenticated)")
        })?;
        let r = req.into_inner();
        self.guard
            .authorize(&caller, &need(&r))
            .map_err(|d| Status::permission_denied(d.to_string()))?;
        Ok((caller, r))
    }

    /// Offers `VerifyAlias`, reading and repairing through these clients.
    pub fn with_data_path(
        mut self,
        query: Arc<dyn QueryClient>,
        data: Arc<dyn DataClient>,
    ) -> Self {
        self.data_path = Some((query, data));
        self
    }

    /// The tonic service (add it to a `Server` next to the Milvus one).
    pub fn into_service(self) -> AdminServiceServer<AdminFront> {
        AdminServiceServer::new(self)
    }

    async fn change(
        &self,
        change: AliasChange,
        actor: Option<pb::Actor>,
        caller: &Caller,
    ) -> Reply<pb::AliasStatus> {
        let alias = match &change {
            AliasChange::Alter { alias, .. }
            | AliasChange::Mirror { alias, .. }
            | AliasChange::Flip { alias, .. }
            | AliasChange::Pin { alias, .. } => alias.clone(),
        };
        if alias.is_empty() {
            return Err(to_status(&Error::invalid("alias", "must not be empty")));
        }
        let actor = actor.unwrap_or_default();
        let by = recorded_actor(caller, &actor.by).map_err(|e| to_status(&e))?;
        let epoch = self
            .catalog
            .change_alias(change, Actor::new(by, actor.reason))
            .await
            .map_err(|e| to_status(&e))?;
        // The catalog returns once its cache holds the write (or a later one).
        let meta = self.catalog.alias(&alias).ok_or_else(|| {
            Status::unavailable(format!(
                "alias {alias:?} changed (epoch {epoch}) but is not in this front door's cache yet"
            ))
        })?;
        Ok(Response::new(self.status(&alias, &meta).await))
    }

    async fn status(&self, alias: &str, meta: &AliasMeta) -> pb::AliasStatus {
        alias_status_seen(self.catalog.as_ref(), alias, meta).await
    }
}

/// The admin view of an alias with the standby lag this front door can see.
pub async fn alias_status_seen(
    catalog: &dyn CatalogClient,
    alias: &str,
    meta: &AliasMeta,
) -> pb::AliasStatus {
    let mut s = alias_status(alias, meta);
    if s.mirrored {
        (s.standby_lag_ms, s.divergent_rows) = catalog.mirror_status(alias, &s.target).await;
    }
    s
}

/// The admin view of an alias (lag and divergence unknown).
pub fn alias_status(alias: &str, meta: &AliasMeta) -> pb::AliasStatus {
    let mirror = meta.mirror.as_ref();
    pb::AliasStatus {
        alias: alias.to_string(),
        target: meta.collection.clone(),
        epoch: meta.epoch,
        mirrored: mirror.is_some(),
        primary: mirror.map(|m| m.primary.clone()).unwrap_or_default(),
        standby: mirror.map(|m| m.standby.clone()).unwrap_or_default(),
        auto_failover: mirror.is_some_and(|m| m.auto_failover),
        max_lag_ms: mirror.map_or(0, |m| m.max_lag_ms),
        pinned: mirror.is_some_and(|m| m.pinned),
        standby_lag_ms: None,
        divergent_rows: None,
        history: meta
            .history
            .iter()
            .map(|e| pb::AliasEvent {
                epoch: e.epoch,
                at_ms: e.at_ms,
                action: e.action.to_string(),
                from: e.from.clone().unwrap_or_default(),
                to: e.to.clone(),
                by: e.by.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
    }
}

/// Who an alias change is recorded as: the authenticated user (whatever
/// the client wrote), or with auth off the client's name — never one of
/// coord's own (`coord:…`).
fn recorded_actor(caller: &Caller, claimed: &str) -> Result<String, Error> {
    if let Some(user) = caller.user() {
        return Ok(user.to_string());
    }
    let claimed = claimed.trim();
    if claimed.starts_with(RESERVED_ACTOR_PREFIX) {
        return Err(Error::invalid(
            "actor.by",
            format!("names starting with {RESERVED_ACTOR_PREFIX:?} are coord's own"),
        ));
    }
    Ok(if claimed.is_empty() {
        DEFAULT_ACTOR.to_string()
    } else {
        claimed.to_string()
    })
}

impl AdminFront {
    /// A privilege on an alias or the collection it targets.
    fn on_alias(&self, privilege: &'static str, alias: &str) -> Need {
        let target = self.catalog.alias(alias).map(|m| m.collection);
        Need::on(privilege, std::iter::once(alias.to_string()).chain(target))
    }
}

fn not_found(alias: &str) -> Status {
    Status::not_found(format!("alias {alias:?} does not exist"))
}

#[tonic::async_trait]
impl AdminService for AdminFront {
    async fn mirror_alias(
        &self,
        request: Request<pb::MirrorAliasRequest>,
    ) -> Reply<pb::AliasStatus> {
        let (caller, r) = self.allow(request, |_| Need::global(MANAGE_ALIASES))?;
        for (field, value) in [("primary", &r.primary), ("standby", &r.standby)] {
            if value.is_empty() {
                return Err(to_status(&Error::invalid(field, "must name a collection")));
            }
        }
        let change = AliasChange::Mirror {
            alias: r.alias,
            primary: r.primary,
            standby: r.standby,
            auto_failover: r.auto_failover,
            max_lag_ms: if r.max_lag_ms == 0 {
                DEFAULT_MAX_LAG_MS
            } else {
                r.max_lag_ms
            },
        };
        self.change(change, r.actor, &caller).await
    }

    async fn alter_alias(&self, request: Request<pb::AlterAliasRequest>) -> Reply<pb::AliasStatus> {
        let (caller, r) = self.allow(request, |_| Need::global(MANAGE_ALIASES))?;
        if r.collection.is_empty() {
            return Err(to_status(&Error::invalid(
                "collection",
                "must name a collection",
            )));
        }
        let change = AliasChange::Alter {
            alias: r.alias,
            collection: r.collection,
            expect: r.expect,
        };
        self.change(change, r.actor, &caller).await
    }

    async fn flip_alias(&self, request: Request<pb::FlipAliasRequest>) -> Reply<pb::AliasStatus> {
        let (caller, r) = self.allow(request, |_| Need::global(MANAGE_ALIASES))?;
        let change = AliasChange::Flip {
            alias: r.alias,
            expect: r.expect,
        };
        self.change(change, r.actor, &caller).await
    }

    async fn pin_alias(&self, request: Request<pb::PinAliasRequest>) -> Reply<pb::AliasStatus> {
        let (caller, r) = self.allow(request, |_| Need::global(MANAGE_ALIASES))?;
        let change = AliasChange::Pin {
            alias: r.alias,
            pinned: r.pinned,
        };
        self.change(change, r.actor, &caller).await
    }

    async fn show_alias(&self, request: Request<pb::ShowAliasRequest>) -> Reply<pb::AliasStatus> {
        let (_, r) = self.allow(request, |r| self.on_alias("DescribeAlias", &r.alias))?;
        let alias = r.alias;
        let meta = self
            .catalog
            .alias(&alias)
            .ok_or_else(|| not_found(&alias))?;
        Ok(Response::new(self.status(&alias, &meta).await))
    }

    async fn verify_alias(
        &self,
        request: Request<pb::VerifyAliasRequest>,
    ) -> Reply<pb::VerifyReport> {
        let (_, r) = self.allow(request, |r| {
            if r.repair {
                Need::global(MANAGE_ALIASES)
            } else {
                self.on_alias("DescribeAlias", &r.alias)
            }
        })?;
        let Some((query, data)) = &self.data_path else {
            return Err(Status::unimplemented(
                "this server does not verify aliases (no data path)",
            ));
        };
        let meta = self
            .catalog
            .alias(&r.alias)
            .ok_or_else(|| not_found(&r.alias))?;
        let settle = if r.settle_ms > 0 {
            Duration::from_millis(r.settle_ms)
        } else {
            let lag = self.catalog.mirror_lag_ms(&meta.collection).await;
            Duration::from_millis(lag.unwrap_or(0) + 1_000)
        };
        let pairs = CatalogPairs(self.catalog.clone());
        let report = verify(
            query.as_ref(),
            data.as_ref(),
            &pairs,
            &r.alias,
            settle,
            r.repair,
        )
        .await
        .map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::VerifyReport {
            alias: r.alias,
            target: report.target,
            other: report.other,
            target_rows: report.target_rows,
            other_rows: report.other_rows,
            divergent_rows: report.divergent_rows,
            repaired_rows: report.repaired_rows,
            remaining_rows: report.remaining_rows,
            samples: report
                .samples
                .iter()
                .map(|d| pb::DivergentRow {
                    shard: d.shard,
                    pk: d.pk.to_string(),
                    kind: d.kind().to_string(),
                })
                .collect(),
            settle_ms: report.settle.as_millis() as u64,
        }))
    }

    async fn collection_storage(
        &self,
        request: Request<pb::CollectionStorageRequest>,
    ) -> Reply<pb::CollectionStorageReply> {
        let (_, r) = self.allow(request, |r| {
            let resolved = self
                .catalog
                .collection(&r.collection)
                .map(|c| c.schema.name);
            Need::on(
                "GetStatistics",
                std::iter::once(r.collection.clone()).chain(resolved),
            )
        })?;
        let name = r.collection;
        let Some(info) = self.catalog.collection(&name) else {
            return Err(Status::not_found(format!("collection not found: {name:?}")));
        };
        let all = self.catalog.storage().await;
        let shards = crate::storage::of(&all, &info)
            .into_iter()
            .map(crate::storage::to_pb)
            .collect();
        Ok(Response::new(pb::CollectionStorageReply {
            collection: info.schema.name,
            shards,
        }))
    }

    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> Reply<pb::ListNodesReply> {
        self.allow(request, |_| Need::global("DescribeResourceGroup"))?;
        let nodes = self.catalog.nodes().await.map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::ListNodesReply {
            nodes: nodes.iter().map(crate::nodes::to_pb).collect(),
        }))
    }

    async fn drain_node(&self, request: Request<pb::DrainNodeRequest>) -> Reply<pb::NodeStatus> {
        let (_, r) = self.allow(request, |_| Need::global("UpdateResourceGroups"))?;
        crate::nodes::check_id(r.id)?;
        (self.catalog.drain_node(r.id, !r.undo).await).map_err(|e| to_status(&e))?;
        let nodes = self.catalog.nodes().await.map_err(|e| to_status(&e))?;
        match nodes.iter().find(|n| n.id == r.id) {
            Some(n) => Ok(Response::new(crate::nodes::to_pb(n))),
            None => Err(Status::not_found(format!(
                "node {} is not registered",
                r.id
            ))),
        }
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Reply<pb::RemoveNodeReply> {
        let (_, r) = self.allow(request, |_| Need::global("UpdateResourceGroups"))?;
        crate::nodes::check_id(r.id)?;
        (self.catalog.forget_node(r.id).await).map_err(|e| to_status(&e))?;
        Ok(Response::new(pb::RemoveNodeReply {}))
    }

    async fn list_aliases(
        &self,
        request: Request<pb::ListAliasesRequest>,
    ) -> Reply<pb::ListAliasesReply> {
        self.allow(request, |_| Need::global("ListAliases"))?;
        let mut aliases = Vec::new();
        for (alias, _) in self.catalog.aliases() {
            if let Some(meta) = self.catalog.alias(&alias) {
                aliases.push(self.status(&alias, &meta).await);
            }
        }
        Ok(Response::new(pb::ListAliasesReply { aliases }))
    }
}
