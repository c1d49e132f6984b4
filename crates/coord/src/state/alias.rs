//! Aliases as coord keeps them: every collection an alias or a mirror pair
//! names is held by id, so what an alias means never depends on which
//! collection carries a name at the moment. The world outside coord sees
//! [`AliasMeta`] (collections by name), built from the record on the way out.
//!
//! Data dirs written before aliases were kept by id hold the by-name form;
//! [`decode_state`] upgrades them as they are read (the names resolve through
//! the same snapshot's name table), so nothing has to be migrated by hand.

use std::collections::BTreeMap;

use quiver_api::{AliasEvent, AliasMeta, MirrorMeta};
use quiver_common::CollectionId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MetaState;

/// An alias: its target, and for a mirrored alias the pair, by collection id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub target: CollectionId,
    /// Grows on every change (coord's alias rules).
    pub epoch: u64,
    #[serde(default)]
    pub mirror: Option<MirrorRecord>,
    /// The most recent changes, oldest first; they name collections as they
    /// were named when the change was made.
    #[serde(default)]
    pub history: Vec<AliasEvent>,
}

/// A mirrored alias's pair, by collection id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRecord {
    pub primary: CollectionId,
    pub standby: CollectionId,
    pub auto_failover: bool,
    pub max_lag_ms: u64,
    pub pinned: bool,
}

impl MirrorRecord {
    /// The collection of the pair that is not `target`.
    pub fn other(&self, target: CollectionId) -> CollectionId {
        if target == self.primary {
            self.standby
        } else {
            self.primary
        }
    }

    /// Whether `id` is one of the pair.
    pub fn holds(&self, id: CollectionId) -> bool {
        id == self.primary || id == self.standby
    }
}

impl MetaState {
    /// The name of a collection an alias record holds. A collection with an
    /// alias cannot be dropped, so the id always resolves; `#id` is shown if
    /// it ever did not.
    pub(crate) fn collection_name(&self, id: CollectionId) -> String {
        self.collections
            .get(&id)
            .map_or_else(|| format!("#{id}"), |c| c.name.clone())
    }

    fn alias_meta(&self, record: &AliasRecord) -> AliasMeta {
        AliasMeta {
            collection: self.collection_name(record.target),
            epoch: record.epoch,
            mirror: record.mirror.map(|m| MirrorMeta {
                primary: self.collection_name(m.primary),
                standby: self.collection_name(m.standby),
                auto_failover: m.auto_failover,
                max_lag_ms: m.max_lag_ms,
                pinned: m.pinned,
            }),
            history: record.history.clone(),
        }
    }

    /// An alias, with its collections by name.
    pub fn alias(&self, alias: &str) -> Option<AliasMeta> {
        self.aliases.get(alias).map(|r| self.alias_meta(r))
    }

    /// All aliases, by alias name, with their collections by name.
    pub fn aliases(&self) -> BTreeMap<String, AliasMeta> {
        self.aliases
            .iter()
            .map(|(name, r)| (name.clone(), self.alias_meta(r)))
            .collect()
    }

    /// An alias as coord keeps it (collections by id).
    pub fn alias_record(&self, alias: &str) -> Option<&AliasRecord> {
        self.aliases.get(alias)
    }

    /// The other collection of the mirrored pair `collection_id` is in
    /// (the first mirrored alias naming it, by alias name).
    pub fn mirror_partner(&self, collection_id: CollectionId) -> Option<CollectionId> {
        self.aliases.values().find_map(|a| {
            let m = a.mirror.as_ref()?;
            m.holds(collection_id).then(|| m.other(collection_id))
        })
    }

    /// Whether a mirrored alias targets this collection now.
    pub fn is_mirror_target(&self, collection_id: CollectionId) -> bool {
        self.aliases
            .values()
            .any(|a| a.mirror.is_some() && a.target == collection_id)
    }
}

/// Decodes a stored or streamed metadata snapshot (`T` holds a [`MetaState`]
/// at the JSON pointer `state_at`: `""` for the state itself). The current
/// form decodes directly; a snapshot with by-name aliases (written by a
/// release before aliases were kept by id) is upgraded first.
pub(crate) fn decode_state<T: DeserializeOwned>(bytes: &[u8], state_at: &str) -> Result<T, String> {
    let first = match serde_json::from_slice(bytes) {
        Ok(v) => return Ok(v),
        Err(e) => e.to_string(),
    };
    let mut value: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let upgraded = value
        .pointer_mut(state_at)
        .is_some_and(upgrade_by_name_aliases);
    if !upgraded {
        return Err(first);
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Rewrites by-name aliases of a state in JSON form to the by-id form;
/// whether there was any to rewrite.
fn upgrade_by_name_aliases(state: &mut Value) -> bool {
    let names: BTreeMap<String, CollectionId> = state
        .get("names")
        .and_then(|n| serde_json::from_value(n.clone()).ok())
        .unwrap_or_default();
    let id = |v: &Value| -> Value {
        let name = v.as_str().unwrap_or_default();
        names.get(name).map_or(Value::Null, |id| Value::from(*id))
    };
    let Some(aliases) = state.get_mut("aliases").and_then(Value::as_object_mut) else {
        return false;
    };
    let mut any = false;
    for alias in aliases.values_mut() {
        let Some(a) = alias.as_object_mut() else {
            continue;
        };
        let Some(collection) = a.remove("collection") else {
            continue;
        };
        any = true;
        a.insert("target".into(), id(&collection));
        if let Some(m) = a.get_mut("mirror").and_then(Value::as_object_mut) {
            for side in ["primary", "standby"] {
                if let Some(name) = m.get(side).cloned() {
                    m.insert(side.into(), id(&name));
                }
            }
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An alias and a mirrored alias as a release before ids wrote them.
    const BY_NAME: &str = r#"{
        "version": 9, "next_id": 3,
        "collections": {}, "names": {"a": 1, "b": 2},
        "aliases": {
            "live": {"collection": "b", "epoch": 7,
                     "mirror": {"primary": "a", "standby": "b", "auto_failover": true,
                                "max_lag_ms": 500, "pinned": false},
                     "history": []},
            "plain": {"collection": "a", "epoch": 4}
        },
        "segments": {}, "owners": {}
    }"#;

    #[test]
    fn by_name_aliases_of_an_older_release_are_read_by_id() -> Result<(), String> {
        let state: MetaState = decode_state(BY_NAME.as_bytes(), "")?;
        let live = state.alias_record("live").ok_or("live missing")?;
        assert_eq!(live.target, 2);
        assert_eq!(live.epoch, 7);
        let m = live.mirror.ok_or("mirror missing")?;
        assert_eq!((m.primary, m.standby, m.max_lag_ms), (1, 2, 500));
        assert!(m.auto_failover && !m.pinned);
        assert_eq!(state.alias_record("plain").map(|r| r.target), Some(1));
        assert_eq!(state.mirror_partner(1), Some(2));
        assert!(state.is_mirror_target(2) && !state.is_mirror_target(1));
        // Written again, it is in the current form and reads back the same.
        let bytes = serde_json::to_vec(&state).map_err(|e| e.to_string())?;
        assert!(!String::from_utf8_lossy(&bytes).contains("\"collection\""));
        let again: MetaState = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        assert_eq!(again, state);
        Ok(())
    }

    #[test]
    fn a_snapshot_that_is_neither_form_keeps_its_error() {
        let bad = br#"{"version": "nine"}"#;
        let err = decode_state::<MetaState>(bad, "").err().unwrap_or_default();
        assert!(err.contains("invalid type"), "{err}");
    }
}
