//! Quiver's admin API (`quiver.admin.v1`): mirrored aliases, flips, pins and
//! compare-and-swap alters. Refusals are [`Error::Grpc`] with the server's
//! status (INVALID_ARGUMENT, NOT_FOUND, ...) and a message naming the field
//! and the rule.

use quiver_proto::admin as pb;

use crate::Client;
use crate::error::{Result, grpc};

pub use pb::{AliasEvent, AliasStatus, DivergentRow, NodeStatus, ShardStorage, VerifyReport};

/// Who makes a change and why (kept in the alias's history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub by: String,
    pub reason: String,
}

impl Actor {
    pub fn new(by: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            by: by.into(),
            reason: reason.into(),
        }
    }

    fn pb(&self) -> Option<pb::Actor> {
        Some(pb::Actor {
            by: self.by.clone(),
            reason: self.reason.clone(),
        })
    }
}

/// A mirrored alias: `alias` over `primary` and `standby`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    pub alias: String,
    pub primary: String,
    pub standby: String,
    pub auto_failover: bool,
    /// `None`: the server's default (1000 ms).
    pub max_lag_ms: Option<u64>,
}

impl Client {
    /// Pairs two collections of the same shape under an alias.
    pub async fn mirror_alias(&self, spec: &MirrorSpec, actor: &Actor) -> Result<AliasStatus> {
        let req = pb::MirrorAliasRequest {
            alias: spec.alias.clone(),
            primary: spec.primary.clone(),
            standby: spec.standby.clone(),
            auto_failover: spec.auto_failover,
            max_lag_ms: spec.max_lag_ms.unwrap_or(0),
            actor: actor.pb(),
        };
        grpc("MirrorAlias", self.admin_stub().mirror_alias(req).await)
    }

    /// Points `alias` at `collection`; with `expect`, only if it targets
    /// `expect` now.
    pub async fn alter_alias_checked(
        &self,
        alias: &str,
        collection: &str,
        expect: Option<&str>,
        actor: &Actor,
    ) -> Result<AliasStatus> {
        let req = pb::AlterAliasRequest {
            alias: alias.to_string(),
            collection: collection.to_string(),
            expect: expect.map(str::to_string),
            actor: actor.pb(),
        };
        grpc("AlterAlias", self.admin_stub().alter_alias(req).await)
    }

    /// Points a mirrored alias at the other collection of its pair.
    pub async fn flip_alias(
        &self,
        alias: &str,
        expect: Option<&str>,
        actor: &Actor,
    ) -> Result<AliasStatus> {
        let req = pb::FlipAliasRequest {
            alias: alias.to_string(),
            expect: expect.map(str::to_string),
            actor: actor.pb(),
        };
        grpc("FlipAlias", self.admin_stub().flip_alias(req).await)
    }

    /// Pins (no automatic flips) or unpins a mirrored alias.
    pub async fn pin_alias(&self, alias: &str, pinned: bool, actor: &Actor) -> Result<AliasStatus> {
        let req = pb::PinAliasRequest {
            alias: alias.to_string(),
            pinned,
            actor: actor.pb(),
        };
        grpc("PinAlias", self.admin_stub().pin_alias(req).await)
    }

    /// An alias with its target, mirror, lag, divergence and history.
    /// A collection's sealed storage per shard, as the shard owners last
    /// reported it (a shard whose owner has not reported yet is absent).
    pub async fn collection_storage(&self, collection: &str) -> Result<Vec<ShardStorage>> {
        let req = pb::CollectionStorageRequest {
            collection: collection.to_string(),
        };
        let reply = grpc(
            "CollectionStorage",
            self.admin_stub().collection_storage(req).await,
        )?;
        Ok(reply.shards)
    }

    pub async fn show_alias(&self, alias: &str) -> Result<AliasStatus> {
        let req = pb::ShowAliasRequest {
            alias: alias.to_string(),
        };
        grpc("ShowAlias", self.admin_stub().show_alias(req).await)
    }

    /// Compares the two collections of a mirrored alias now; with `repair`,
    /// copies the rows that differ from the alias's target to the other
    /// collection. `settle_ms`: time between the two looks (None: the
    /// server's choice, the mirror lag plus a second).
    pub async fn verify_alias(
        &self,
        alias: &str,
        repair: bool,
        settle_ms: Option<u64>,
    ) -> Result<VerifyReport> {
        let req = pb::VerifyAliasRequest {
            alias: alias.to_string(),
            repair,
            settle_ms: settle_ms.unwrap_or(0),
        };
        grpc("VerifyAlias", self.admin_stub().verify_alias(req).await)
    }

    /// Every alias, as [`Client::show_alias`] shows it.
    pub async fn alias_statuses(&self) -> Result<Vec<AliasStatus>> {
        let r = grpc(
            "ListAliases",
            self.admin_stub()
                .list_aliases(pb::ListAliasesRequest {})
                .await,
        )?;
        Ok(r.aliases)
    }

    /// Every datanode and querynode with its state and load (a cluster
    /// proxy; a standalone server answers UNAVAILABLE).
    pub async fn list_nodes(&self) -> Result<Vec<NodeStatus>> {
        let r = grpc(
            "ListNodes",
            self.admin_stub().list_nodes(pb::ListNodesRequest {}).await,
        )?;
        Ok(r.nodes)
    }

    /// Starts draining node `id` (`undo`: stops); returns the node.
    pub async fn drain_node(&self, id: u64, undo: bool) -> Result<NodeStatus> {
        let req = pb::DrainNodeRequest { id, undo };
        grpc("DrainNode", self.admin_stub().drain_node(req).await)
    }

    /// Forgets node `id` (gone, holding nothing).
    pub async fn remove_node(&self, id: u64) -> Result<()> {
        let req = pb::RemoveNodeRequest { id };
        grpc("RemoveNode", self.admin_stub().remove_node(req).await)?;
        Ok(())
    }
}
