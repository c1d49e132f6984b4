//! Coord identity: which cluster a coord's directory belongs to, and whether
//! this coord may vote.
//!
//! Raft's safety rests on a voter never forgetting its log and its vote. A
//! coord whose directory was wiped (or replaced) comes back empty; if it
//! voted, two leaders could be elected in one term, or a leader without
//! entries the cluster had committed. So every coord directory carries
//! `identity.json` (`node_id`, a random `incarnation` made whenever the
//! directory starts without a log and vote, and the `cluster_id` once known),
//! and the replicated metadata records each coord's incarnation
//! (`rules/coords.rs`). A coord votes only when:
//! - it is a [`Standing::Voter`]: it started with its own log and vote, and
//!   the cluster either records its incarnation or does not know it yet (a
//!   directory of a release before identities);
//! - or it is [`Standing::Joining`] (started empty) while the cluster is
//!   still forming: neither its applied metadata nor the candidate names a
//!   cluster id (nothing was committed that it could have forgotten).
//!
//! A coord the cluster knows by another incarnation is
//! [`Standing::NotAdmitted`]: it refuses votes, does not campaign, catches up
//! from the leader like any follower, and says why (log, `ClusterStatus`)
//! until `quiver coord add ID` makes the cluster forget the old incarnation;
//! then it registers its new one, and votes once it has applied that — by
//! then it holds every entry committed before it was re-admitted.

use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{CoordError, Result};
use crate::raft::durable::write_atomic;
use crate::state::MetaState;

pub(crate) const IDENTITY_FILE: &str = "identity.json";
/// The gRPC metadata key a voter's Raft RPCs carry its cluster id in.
pub(crate) const CLUSTER_HEADER: &str = "x-quiver-cluster-id";

/// `identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdentityFile {
    pub node_id: u64,
    pub incarnation: String,
    #[serde(default)]
    pub cluster_id: Option<String>,
}

/// Whether this coord may vote, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Holds its own log and vote: votes like any Raft member.
    Voter,
    /// Started without a log and vote: votes only while the cluster forms.
    Joining { reason: String },
    /// The cluster knows this coord by another incarnation: never votes
    /// until re-admitted (`quiver coord add`).
    NotAdmitted { reason: String },
}

impl Standing {
    /// `voter`, `joining: …` or `not admitted: …`, as status shows it.
    pub fn describe(&self) -> String {
        match self {
            Standing::Voter => "voter".into(),
            Standing::Joining { reason } => format!("joining: {reason}"),
            Standing::NotAdmitted { reason } => format!("not admitted: {reason}"),
        }
    }
}

/// What this coord must do after applying new metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    Nothing,
    /// Ask the leader to record this incarnation (and the cluster id, if the
    /// cluster has none yet).
    Register {
        incarnation: String,
        cluster_id: String,
    },
}

/// This coord's identity, shared by the Raft server (the vote gate), the
/// peer transport (the cluster id header) and the identity task.
pub struct Identity {
    node_id: u64,
    incarnation: String,
    path: PathBuf,
    inner: RwLock<Inner>,
}

struct Inner {
    standing: Standing,
    cluster_id: Option<String>,
}

/// Whether `dir` holds a Raft log, vote or snapshot.
pub(crate) fn has_raft_state(dir: &Path) -> bool {
    let nonempty = |name: &str| std::fs::metadata(dir.join(name)).is_ok_and(|m| m.len() > 0);
    nonempty("raft-state.json") || nonempty("snapshot.json")
}

/// A new incarnation: random, never reused.
fn new_incarnation() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Identity {
    /// Loads (or creates) the identity of the coord `node_id` in `dir`.
    /// `has_state`: the directory holds a Raft log and vote.
    pub(crate) fn load(dir: &Path, node_id: u64, has_state: bool) -> Result<Identity> {
        let path = dir.join(IDENTITY_FILE);
        let stored: Option<IdentityFile> = match std::fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| CoordError::corrupt(&path, e.to_string()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CoordError::io(&path, e)),
        };
        if let Some(s) = &stored
            && s.node_id != node_id
        {
            return Err(CoordError::Config {
                field: "node_id".into(),
                rule: format!(
                    "{} belongs to coord {}, not {node_id}; give each coord its own directory",
                    dir.display(),
                    s.node_id
                ),
            });
        }
        let (file, standing) = match stored {
            Some(s) if has_state => (s, Standing::Voter),
            // A directory of a release before identities: its state is its own.
            None if has_state => (fresh(node_id), Standing::Voter),
            Some(s) => {
                let reason = format!(
                    "its log and vote are missing (the directory was of cluster {}); it votes again once the cluster re-admits it (quiver coord add {node_id})",
                    s.cluster_id.as_deref().unwrap_or("not yet named")
                );
                (fresh(node_id), Standing::Joining { reason })
            }
            None => {
                let reason = "a new directory: it votes while the cluster forms, or once a cluster that knew this coord re-admits it".to_string();
                (fresh(node_id), Standing::Joining { reason })
            }
        };
        save(&path, &file)?;
        Ok(Identity {
            node_id,
            incarnation: file.incarnation,
            path,
            inner: RwLock::new(Inner {
                standing,
                cluster_id: file.cluster_id,
            }),
        })
    }

    pub fn standing(&self) -> Standing {
        self.inner.read().standing.clone()
    }

    /// The cluster id this coord sends with its Raft RPCs: only a voter's.
    pub(crate) fn voter_cluster_id(&self) -> Option<String> {
        let inner = self.inner.read();
        match inner.standing {
            Standing::Voter => inner.cluster_id.clone(),
            _ => None,
        }
    }

    /// Whether to grant a vote to a candidate that sent `candidate_cluster`,
    /// given the cluster id of this coord's applied metadata.
    pub(crate) fn may_vote(
        &self,
        candidate_cluster: Option<&str>,
        applied_cluster: Option<&str>,
    ) -> std::result::Result<(), String> {
        let inner = self.inner.read();
        let id = self.node_id;
        match &inner.standing {
            Standing::Voter => match (candidate_cluster, inner.cluster_id.as_deref()) {
                (Some(c), Some(mine)) if c != mine => Err(format!(
                    "coord {id} is of cluster {mine}; the candidate is of cluster {c}"
                )),
                _ => Ok(()),
            },
            Standing::Joining { reason } => match candidate_cluster.or(applied_cluster) {
                None => Ok(()),
                Some(_) => Err(format!("coord {id} does not vote yet: {reason}")),
            },
            Standing::NotAdmitted { reason } => Err(format!("coord {id} does not vote: {reason}")),
        }
    }

    /// Updates the standing from newly applied metadata; what to do next.
    pub(crate) fn observe(&self, state: &MetaState) -> Result<Next> {
        let id = self.node_id;
        let recorded = state.coord_incarnation(id);
        let mut inner = self.inner.write();
        match recorded {
            Some(inc) if inc == self.incarnation => {
                let cluster = state.cluster_id().map(str::to_string);
                if inner.standing != Standing::Voter || inner.cluster_id != cluster {
                    if inner.standing != Standing::Voter {
                        tracing::info!(
                            coord = id,
                            "this coord votes again: the cluster recorded its incarnation"
                        );
                    }
                    save(
                        &self.path,
                        &IdentityFile {
                            node_id: id,
                            incarnation: self.incarnation.clone(),
                            cluster_id: cluster.clone(),
                        },
                    )?;
                    inner.standing = Standing::Voter;
                    inner.cluster_id = cluster;
                }
                Ok(Next::Nothing)
            }
            Some(_) => {
                let reason = format!(
                    "the cluster knows coord {id} by another incarnation: its log and vote were lost or replaced; re-admit it with `quiver coord add {id}` (it catches up meanwhile)"
                );
                if !matches!(inner.standing, Standing::NotAdmitted { .. }) {
                    tracing::warn!(coord = id, "{reason}");
                }
                inner.standing = Standing::NotAdmitted { reason };
                Ok(Next::Nothing)
            }
            None => {
                if let Standing::NotAdmitted { .. } = inner.standing {
                    // Re-admitted: register the new incarnation, vote once applied.
                    inner.standing = Standing::Joining {
                        reason: "re-admitted; registering its new incarnation".into(),
                    };
                }
                let cluster_id = state
                    .cluster_id()
                    .map(str::to_string)
                    .or_else(|| inner.cluster_id.clone())
                    .unwrap_or_else(new_incarnation);
                Ok(Next::Register {
                    incarnation: self.incarnation.clone(),
                    cluster_id,
                })
            }
        }
    }
}

fn fresh(node_id: u64) -> IdentityFile {
    IdentityFile {
        node_id,
        incarnation: new_incarnation(),
        cluster_id: None,
    }
}

/// Writes the identity of a coord directory rebuilt from a metadata backup
/// (`crate::backup::restore`): the incarnation the cluster records for it
/// (a new one if none), so it starts as a voter of that cluster.
pub(crate) fn write_restored(dir: &Path, node_id: u64, state: &MetaState) -> Result<()> {
    let file = IdentityFile {
        node_id,
        incarnation: state
            .coord_incarnation(node_id)
            .map_or_else(new_incarnation, str::to_string),
        cluster_id: state.cluster_id().map(str::to_string),
    };
    save(&dir.join(IDENTITY_FILE), &file)
}

fn save(path: &Path, file: &IdentityFile) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(file)
        .map_err(|e| CoordError::corrupt(path, format!("cannot encode: {e}")))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(dir: &Path, id: u64, has_state: bool) -> Result<Standing> {
        Ok(Identity::load(dir, id, has_state)?.standing())
    }

    #[test]
    fn a_directory_with_its_own_log_votes_and_an_empty_one_joins() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| CoordError::io(Path::new("tmp"), e))?;
        let dir = tmp.path();
        // A release before identities: state but no identity.json.
        assert_eq!(standing(dir, 2, true)?, Standing::Voter);
        assert!(dir.join(IDENTITY_FILE).exists());
        // The same directory after its log and vote were lost.
        let Standing::Joining { reason } = standing(dir, 2, false)? else {
            panic!("a coord without its log must not vote as a member");
        };
        assert!(reason.contains("missing"), "{reason}");
        // Another coord's directory is refused.
        let e = Identity::load(dir, 3, true).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("belongs to coord 2")));
        Ok(())
    }

    #[test]
    fn a_joining_coord_votes_only_while_the_cluster_forms() -> Result<()> {
        let tmp = tempfile::tempdir().map_err(|e| CoordError::io(Path::new("tmp"), e))?;
        let id = Identity::load(tmp.path(), 1, false)?;
        assert!(id.may_vote(None, None).is_ok());
        assert!(id.may_vote(Some("c"), None).is_err());
        assert!(id.may_vote(None, Some("c")).is_err());
        assert_eq!(
            id.voter_cluster_id(),
            None,
            "a joining coord names no cluster"
        );
        Ok(())
    }
}
