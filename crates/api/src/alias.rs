//! Aliases as coord keeps them, and the admin API's changes to them. Coord
//! applies these (`quiver_coord::rules::alias`); the front door shows them.

use serde::{Deserialize, Serialize};

/// Where an alias points; `epoch` grows on every change (coord's alias rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasMeta {
    /// The target: the collection every request through the alias goes to.
    pub collection: String,
    pub epoch: u64,
    /// Set when the alias pairs a primary and a standby collection.
    #[serde(default)]
    pub mirror: Option<MirrorMeta>,
    /// The most recent changes, oldest first (at most `ALIAS_HISTORY`).
    #[serde(default)]
    pub history: Vec<AliasEvent>,
}

/// How many changes an alias's history keeps.
pub const ALIAS_HISTORY: usize = 64;

/// A mirrored alias: two collections of the same shape, one the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorMeta {
    pub primary: String,
    pub standby: String,
    /// Coord flips the alias by itself when its target is unhealthy.
    pub auto_failover: bool,
    /// An automatic flip needs the other side within this lag.
    pub max_lag_ms: u64,
    /// No automatic flips while pinned.
    pub pinned: bool,
}

impl MirrorMeta {
    /// The collection of the pair that is not `target`.
    pub fn other(&self, target: &str) -> &str {
        if target == self.primary {
            &self.standby
        } else {
            &self.primary
        }
    }
}

/// One change of an alias, as recorded in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasEvent {
    /// The alias's epoch after the change.
    pub epoch: u64,
    /// When coord accepted it (wall clock, ms since the Unix epoch).
    pub at_ms: u64,
    pub action: AliasAction,
    /// The target before the change (`None` for a new alias).
    pub from: Option<String>,
    /// The target after the change.
    pub to: String,
    /// Who or what made it: a user, `milvus-api`, `coord:auto-failover`.
    pub by: String,
    pub reason: String,
}

/// What an alias change did; stored and shown as its lowercase name
/// (`create`, `alter`, `mirror`, `flip`, `pin`, `unpin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AliasAction {
    Create,
    Alter,
    Mirror,
    Flip,
    Pin,
    Unpin,
}

impl AliasAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AliasAction::Create => "create",
            AliasAction::Alter => "alter",
            AliasAction::Mirror => "mirror",
            AliasAction::Flip => "flip",
            AliasAction::Pin => "pin",
            AliasAction::Unpin => "unpin",
        }
    }

    /// Whether the change moved (or may have moved) the alias to another
    /// collection by hand or by failover: the hold-down of automatic
    /// failover and the status page's recent flips count these.
    pub fn moves_target(self) -> bool {
        matches!(self, AliasAction::Flip | AliasAction::Alter)
    }
}

impl std::fmt::Display for AliasAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for AliasAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_keep_their_stored_names() -> Result<(), serde_json::Error> {
        for a in [
            AliasAction::Create,
            AliasAction::Alter,
            AliasAction::Mirror,
            AliasAction::Flip,
            AliasAction::Pin,
            AliasAction::Unpin,
        ] {
            let json = serde_json::to_string(&a)?;
            assert_eq!(json, format!("\"{}\"", a.as_str()));
            assert_eq!(serde_json::from_str::<AliasAction>(&json)?, a);
        }
        Ok(())
    }
}

/// Who changes an alias and why (kept in the alias's history).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// An alias change of the admin API. `expect` is a compare-and-swap guard:
/// the change is refused unless the alias targets that collection now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AliasChange {
    /// Points the alias at `collection` (creating the alias if needed).
    Alter {
        alias: String,
        collection: String,
        expect: Option<String>,
    },
    /// Makes the alias a mirrored pair (created if needed); its target
    /// becomes `primary` unless it already is one of the two.
    Mirror {
        alias: String,
        primary: String,
        standby: String,
        auto_failover: bool,
        max_lag_ms: u64,
    },
    /// Points a mirrored alias at the other collection of its pair.
    Flip {
        alias: String,
        expect: Option<String>,
    },
    /// Pins (no automatic flips) or unpins a mirrored alias.
    Pin { alias: String, pinned: bool },
}
