//! Resource groups. Quiver has one, Milvus's `__default_resource_group`,
//! holding every querynode; coord places replicas over them by itself
//! (ARCHITECTURE.md, placement). The RPCs answer truthfully about that one
//! group — List, Describe (its nodes and the replicas loaded on them) — and
//! refuse, changing nothing, what would need another: creating, configuring
//! or moving nodes and replicas between groups.

use std::collections::HashMap;

use quiver_common::Error;
use quiver_proto::common::{ErrorCode, NodeInfo, Status};
use quiver_proto::milvus::*;
use quiver_proto::rg::{ResourceGroupConfig, ResourceGroupLimit};

use super::MilvusFront;
use super::load::{DEFAULT_RESOURCE_GROUP, STANDALONE_NODE};
use super::status::{failure, success};

/// Milvus's ResourceGroupNotFound.
const RESOURCE_GROUP_NOT_FOUND: i32 = 300;

fn not_found(name: &str) -> Status {
    Status {
        error_code: ErrorCode::UnexpectedError as i32,
        code: RESOURCE_GROUP_NOT_FOUND,
        reason: format!(
            "resource group not found[rg={name}] (Quiver has the one resource group {DEFAULT_RESOURCE_GROUP:?})"
        ),
        ..Default::default()
    }
}

fn refused(field: &str, what: &str) -> Status {
    failure(&Error::invalid(
        field,
        format!(
            "{what}: Quiver has the one resource group {DEFAULT_RESOURCE_GROUP:?}, holding every querynode, and coord places replicas over them by itself; nothing was changed"
        ),
    ))
}

/// Checks that a request names the default group (empty means it too).
fn default_only(field: &str, name: &str) -> Result<(), Status> {
    if name.is_empty() || name == DEFAULT_RESOURCE_GROUP {
        Ok(())
    } else {
        let mut status = not_found(name);
        status.reason = format!("{field}: {}", status.reason);
        Err(status)
    }
}

impl MilvusFront {
    /// The querynodes of the one group (this process where the catalog
    /// places no replicas).
    fn group_nodes(&self) -> Vec<NodeInfo> {
        let nodes = self.catalog.query_nodes();
        if nodes.is_empty() {
            return vec![NodeInfo {
                node_id: STANDALONE_NODE as i64,
                address: String::new(),
                hostname: "quiver-standalone".into(),
            }];
        }
        nodes
            .into_iter()
            .map(|(id, addr)| NodeInfo {
                node_id: id as i64,
                hostname: addr.split(':').next().unwrap_or_default().to_string(),
                address: addr,
            })
            .collect()
    }

    pub(crate) fn list_resource_groups(&self) -> ListResourceGroupsResponse {
        ListResourceGroupsResponse {
            status: Some(success()),
            resource_groups: vec![DEFAULT_RESOURCE_GROUP.to_string()],
        }
    }

    pub(crate) fn describe_resource_group(
        &self,
        r: DescribeResourceGroupRequest,
    ) -> DescribeResourceGroupResponse {
        if r.resource_group != DEFAULT_RESOURCE_GROUP {
            return DescribeResourceGroupResponse {
                status: Some(not_found(&r.resource_group)),
                resource_group: None,
            };
        }
        let nodes = self.group_nodes();
        let n = nodes.len() as i32;
        // Loaded collections and how many copies of each are loaded.
        let loaded: HashMap<String, i32> = (self.proxy.list().into_iter())
            .filter(|c| self.catalog.is_loaded(&c.schema.name))
            .map(|c| {
                let copies = (self.catalog.replicas(&c.schema.name).iter())
                    .map(Vec::len)
                    .max()
                    .unwrap_or(1);
                (c.schema.name, copies as i32)
            })
            .collect();
        let limit = Some(ResourceGroupLimit { node_num: n });
        DescribeResourceGroupResponse {
            status: Some(success()),
            resource_group: Some(ResourceGroup {
                name: DEFAULT_RESOURCE_GROUP.to_string(),
                capacity: n,
                num_available_node: n,
                num_loaded_replica: loaded,
                num_outgoing_node: HashMap::new(),
                num_incoming_node: HashMap::new(),
                config: Some(ResourceGroupConfig {
                    requests: limit,
                    limits: limit,
                    ..Default::default()
                }),
                nodes,
            }),
        }
    }

    pub(crate) fn create_resource_group(&self, r: CreateResourceGroupRequest) -> Status {
        if r.resource_group == DEFAULT_RESOURCE_GROUP {
            // Milvus accepts creating an existing group with its own config.
            return success();
        }
        refused(
            "resource_group",
            &format!("cannot create {:?}", r.resource_group),
        )
    }

    pub(crate) fn drop_resource_group(&self, r: DropResourceGroupRequest) -> Status {
        if r.resource_group == DEFAULT_RESOURCE_GROUP {
            return failure(&Error::invalid(
                "resource_group",
                "delete default rg is not permitted",
            ));
        }
        // Milvus answers success for a group that does not exist.
        success()
    }

    pub(crate) fn update_resource_groups(&self, r: UpdateResourceGroupsRequest) -> Status {
        for name in r.resource_groups.keys() {
            if let Err(s) = default_only("resource_groups", name) {
                return s;
            }
        }
        if r.resource_groups.is_empty() {
            return success();
        }
        refused(
            "resource_groups",
            "the default group's requests and limits are its querynodes",
        )
    }

    pub(crate) fn transfer_node(&self, r: TransferNodeRequest) -> Status {
        self.transfer(
            &r.source_resource_group,
            &r.target_resource_group,
            "num_node",
        )
    }

    pub(crate) fn transfer_replica(&self, r: TransferReplicaRequest) -> Status {
        if let Err(e) = self.proxy.describe(&r.collection_name) {
            return failure(&e);
        }
        self.transfer(
            &r.source_resource_group,
            &r.target_resource_group,
            "num_replica",
        )
    }

    fn transfer(&self, source: &str, target: &str, field: &str) -> Status {
        if let Err(s) = default_only("source_resource_group", source)
            .and_then(|()| default_only("target_resource_group", target))
        {
            return s;
        }
        refused(
            field,
            "source and target are the same resource group (the only one)",
        )
    }
}
