//! Coord identities (`crate::identity`): the cluster id, and the
//! incarnation each coord's directory had when it registered. A coord whose
//! directory comes back with another incarnation (wiped, replaced) is not
//! admitted to vote until `AdmitCoord` forgets the old one.

use crate::command::MetaResponse;
use crate::error::RuleError;
use crate::state::MetaState;

pub(super) fn register(
    state: &mut MetaState,
    node_id: u64,
    incarnation: &str,
    cluster_id: &str,
) -> Result<MetaResponse, RuleError> {
    if incarnation.is_empty() {
        return Err(RuleError::invalid("incarnation", "must not be empty"));
    }
    match state.coords.get(&node_id) {
        Some(known) if known == incarnation => return Ok(MetaResponse::Done),
        Some(_) => {
            return Err(RuleError::invalid(
                "incarnation",
                format!(
                    "the cluster knows coord {node_id} by another incarnation (its directory was wiped or replaced); re-admit it with `quiver coord add {node_id}`"
                ),
            ));
        }
        None => {}
    }
    if state.cluster_id.is_none() {
        if cluster_id.is_empty() {
            return Err(RuleError::invalid("cluster_id", "must not be empty"));
        }
        state.cluster_id = Some(cluster_id.to_string());
    }
    state.coords.insert(node_id, incarnation.to_string());
    Ok(MetaResponse::Done)
}

pub(super) fn admit(state: &mut MetaState, node_id: u64) -> Result<MetaResponse, RuleError> {
    if state.coords.remove(&node_id).is_none() {
        return Err(RuleError::invalid(
            "node_id",
            format!("coord {node_id} has no recorded incarnation: there is nothing to re-admit"),
        ));
    }
    Ok(MetaResponse::Done)
}

#[cfg(test)]
mod tests {
    use quiver_common::compose_ts;

    use crate::command::MetaCommand;
    use crate::rules::apply;
    use crate::state::MetaState;

    fn run(state: &mut MetaState, cmd: MetaCommand) -> Result<(), String> {
        let before = state.clone();
        let out = apply(state, &cmd, compose_ts(1, 0)).map(|_| ());
        if out.is_err() {
            assert_eq!(*state, before, "a refused command changes nothing");
        }
        out.map_err(|e| e.to_string())
    }

    fn register(node_id: u64, incarnation: &str, cluster_id: &str) -> MetaCommand {
        MetaCommand::RegisterCoord {
            node_id,
            incarnation: incarnation.into(),
            cluster_id: cluster_id.into(),
        }
    }

    #[test]
    fn the_first_registration_names_the_cluster_and_later_ones_keep_it() -> Result<(), String> {
        let mut s = MetaState::default();
        run(&mut s, register(1, "a1", "c-one"))?;
        run(&mut s, register(2, "b1", "c-two"))?;
        run(&mut s, register(1, "a1", "c-three"))?; // a retry: the same answer
        assert_eq!(s.cluster_id(), Some("c-one"));
        assert_eq!(s.coord_incarnation(1), Some("a1"));
        assert_eq!(s.coord_incarnation(2), Some("b1"));
        Ok(())
    }

    #[test]
    fn a_wiped_coord_is_refused_until_re_admitted() -> Result<(), String> {
        let mut s = MetaState::default();
        run(&mut s, register(3, "old", "c"))?;
        let e = run(&mut s, register(3, "new", "c"))
            .err()
            .unwrap_or_default();
        assert!(e.contains("quiver coord add 3"), "{e}");
        run(&mut s, MetaCommand::AdmitCoord { node_id: 3 })?;
        run(&mut s, register(3, "new", "c"))?;
        assert_eq!(s.coord_incarnation(3), Some("new"));
        let e = run(&mut s, MetaCommand::AdmitCoord { node_id: 9 })
            .err()
            .unwrap_or_default();
        assert!(e.contains("nothing to re-admit"), "{e}");
        Ok(())
    }
}
