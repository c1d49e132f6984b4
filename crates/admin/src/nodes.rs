//! The admin API's node operations (`quiver node list | drain | remove`):
//! the wire shape of a node, and the checks before coord is asked.

use quiver_api::NodeInfo;
use quiver_proto::admin as pb;

/// A node as the admin API sends it.
pub fn to_pb(n: &NodeInfo) -> pb::NodeStatus {
    pb::NodeStatus {
        id: n.id,
        role: n.role.clone(),
        addr: n.addr.clone(),
        state: n.state.as_str().to_string(),
        last_seen_ms: n.last_seen_ms,
        shards_owned: n.shards_owned,
        replicas: n.replicas,
        rows: n.rows,
        memory_bytes: n.memory_bytes,
    }
}

/// `id` must name a node: 0 never does.
pub fn check_id(id: u64) -> Result<(), tonic::Status> {
    if id == 0 {
        return Err(tonic::Status::invalid_argument(
            "id: must be a node id (> 0; `quiver node list` shows them)",
        ));
    }
    Ok(())
}
