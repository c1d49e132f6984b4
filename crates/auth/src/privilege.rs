//! Milvus's privilege catalogue: every privilege with the object type it is
//! granted on, and the built-in privilege groups (Milvus 2.5). Names are
//! Milvus's (`Insert`, `CollectionReadOnly`, …), as clients send them; the
//! `Privilege` prefix of the proto enum is accepted too.

use serde::{Deserialize, Serialize};

/// What a grant applies to (Milvus `common.ObjectType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectType {
    Collection,
    Global,
    User,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Collection => "Collection",
            ObjectType::Global => "Global",
            ObjectType::User => "User",
        }
    }

    /// `Collection`, `Global` or `User` (Milvus's spelling, any case).
    pub fn parse(s: &str) -> Option<Self> {
        [ObjectType::Collection, ObjectType::Global, ObjectType::User]
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
    }
}

/// Quiver's own privilege: the admin API's alias changes (mirror, flip,
/// pin, unpin, verify with repair, alter with expect) and the status page's
/// flip. Part of `ClusterAdmin`.
pub const MANAGE_ALIASES: &str = "ManageAliases";

/// Every privilege, with the object type it is granted on.
const CATALOGUE: &[(&str, ObjectType)] = &[
    ("All", ObjectType::Global),
    ("CreateCollection", ObjectType::Global),
    ("DropCollection", ObjectType::Global),
    ("DescribeCollection", ObjectType::Collection),
    ("ShowCollections", ObjectType::Global),
    ("RenameCollection", ObjectType::Global),
    ("FlushAll", ObjectType::Global),
    ("CreateOwnership", ObjectType::Global),
    ("DropOwnership", ObjectType::Global),
    ("SelectOwnership", ObjectType::Global),
    ("ManageOwnership", ObjectType::Global),
    ("CreateResourceGroup", ObjectType::Global),
    ("DropResourceGroup", ObjectType::Global),
    ("DescribeResourceGroup", ObjectType::Global),
    ("ListResourceGroups", ObjectType::Global),
    ("UpdateResourceGroups", ObjectType::Global),
    ("TransferNode", ObjectType::Global),
    ("TransferReplica", ObjectType::Global),
    ("CreateDatabase", ObjectType::Global),
    ("DropDatabase", ObjectType::Global),
    ("ListDatabases", ObjectType::Global),
    ("AlterDatabase", ObjectType::Global),
    ("DescribeDatabase", ObjectType::Global),
    ("BackupRBAC", ObjectType::Global),
    ("RestoreRBAC", ObjectType::Global),
    ("CreatePrivilegeGroup", ObjectType::Global),
    ("DropPrivilegeGroup", ObjectType::Global),
    ("ListPrivilegeGroups", ObjectType::Global),
    ("OperatePrivilegeGroup", ObjectType::Global),
    (MANAGE_ALIASES, ObjectType::Global),
    ("CreateAlias", ObjectType::Collection),
    ("DropAlias", ObjectType::Collection),
    ("DescribeAlias", ObjectType::Collection),
    ("ListAliases", ObjectType::Collection),
    ("CreateIndex", ObjectType::Collection),
    ("DropIndex", ObjectType::Collection),
    ("IndexDetail", ObjectType::Collection),
    ("Load", ObjectType::Collection),
    ("Release", ObjectType::Collection),
    ("GetLoadingProgress", ObjectType::Collection),
    ("GetLoadState", ObjectType::Collection),
    ("Insert", ObjectType::Collection),
    ("Delete", ObjectType::Collection),
    ("Upsert", ObjectType::Collection),
    ("Search", ObjectType::Collection),
    ("Query", ObjectType::Collection),
    ("Flush", ObjectType::Collection),
    ("GetFlushState", ObjectType::Collection),
    ("Compaction", ObjectType::Collection),
    ("GetStatistics", ObjectType::Collection),
    ("Import", ObjectType::Collection),
    ("LoadBalance", ObjectType::Collection),
    ("CreatePartition", ObjectType::Collection),
    ("DropPartition", ObjectType::Collection),
    ("ShowPartitions", ObjectType::Collection),
    ("HasPartition", ObjectType::Collection),
    ("UpdateUser", ObjectType::User),
    ("SelectUser", ObjectType::User),
];

const COLLECTION_READ_ONLY: &[&str] = &[
    "Query",
    "Search",
    "IndexDetail",
    "GetFlushState",
    "GetLoadState",
    "GetLoadingProgress",
    "HasPartition",
    "ShowPartitions",
    "DescribeCollection",
    "DescribeAlias",
    "GetStatistics",
    "ListAliases",
];

const COLLECTION_READ_WRITE: &[&str] = &[
    "Load",
    "Release",
    "Insert",
    "Delete",
    "Upsert",
    "Import",
    "Flush",
    "Compaction",
    "LoadBalance",
    "CreateIndex",
    "DropIndex",
    "CreatePartition",
    "DropPartition",
];

const COLLECTION_ADMIN: &[&str] = &["CreateAlias", "DropAlias"];

const DATABASE_READ_ONLY: &[&str] = &["ShowCollections", "DescribeDatabase"];
const DATABASE_READ_WRITE: &[&str] = &["AlterDatabase"];
const DATABASE_ADMIN: &[&str] = &["CreateCollection", "DropCollection"];

const CLUSTER_READ_ONLY: &[&str] = &[
    "ListDatabases",
    "SelectOwnership",
    "SelectUser",
    "DescribeResourceGroup",
    "ListResourceGroups",
    "ListPrivilegeGroups",
];
const CLUSTER_READ_WRITE: &[&str] = &[
    "FlushAll",
    "TransferNode",
    "TransferReplica",
    "UpdateResourceGroups",
];
const CLUSTER_ADMIN: &[&str] = &[
    "BackupRBAC",
    "RestoreRBAC",
    "CreateDatabase",
    "DropDatabase",
    "CreateOwnership",
    "DropOwnership",
    "ManageOwnership",
    "CreateResourceGroup",
    "DropResourceGroup",
    "UpdateUser",
    "RenameCollection",
    "CreatePrivilegeGroup",
    "DropPrivilegeGroup",
    "OperatePrivilegeGroup",
    MANAGE_ALIASES,
];

/// A built-in group: its name, the object type it is granted on, and the
/// tiers it is made of (each tier includes the ones before it).
struct Group {
    name: &'static str,
    object: ObjectType,
    tiers: &'static [&'static [&'static str]],
}

const GROUPS: &[Group] = &[
    Group {
        name: "CollectionReadOnly",
        object: ObjectType::Collection,
        tiers: &[COLLECTION_READ_ONLY],
    },
    Group {
        name: "CollectionReadWrite",
        object: ObjectType::Collection,
        tiers: &[COLLECTION_READ_ONLY, COLLECTION_READ_WRITE],
    },
    Group {
        name: "CollectionAdmin",
        object: ObjectType::Collection,
        tiers: &[
            COLLECTION_READ_ONLY,
            COLLECTION_READ_WRITE,
            COLLECTION_ADMIN,
        ],
    },
    Group {
        name: "DatabaseReadOnly",
        object: ObjectType::Global,
        tiers: &[DATABASE_READ_ONLY],
    },
    Group {
        name: "DatabaseReadWrite",
        object: ObjectType::Global,
        tiers: &[DATABASE_READ_ONLY, DATABASE_READ_WRITE],
    },
    Group {
        name: "DatabaseAdmin",
        object: ObjectType::Global,
        tiers: &[DATABASE_READ_ONLY, DATABASE_READ_WRITE, DATABASE_ADMIN],
    },
    Group {
        name: "ClusterReadOnly",
        object: ObjectType::Global,
        tiers: &[CLUSTER_READ_ONLY],
    },
    Group {
        name: "ClusterReadWrite",
        object: ObjectType::Global,
        tiers: &[CLUSTER_READ_ONLY, CLUSTER_READ_WRITE],
    },
    Group {
        name: "ClusterAdmin",
        object: ObjectType::Global,
        tiers: &[CLUSTER_READ_ONLY, CLUSTER_READ_WRITE, CLUSTER_ADMIN],
    },
];

/// `name` without Milvus's proto prefix (`PrivilegeInsert` → `Insert`,
/// `PrivilegeGroupCollectionReadOnly` → `CollectionReadOnly`).
fn strip(name: &str) -> &str {
    let n = name.trim();
    n.strip_prefix("PrivilegeGroup")
        .or_else(|| n.strip_prefix("Privilege"))
        .unwrap_or(n)
}

/// A privilege or group name as stored: Milvus's canonical spelling.
/// `*` is `All`.
pub fn canonical(name: &str) -> Option<&'static str> {
    let n = strip(name);
    if n == "*" {
        return Some("All");
    }
    CATALOGUE
        .iter()
        .map(|(p, _)| *p)
        .chain(GROUPS.iter().map(|g| g.name))
        .find(|p| p.eq_ignore_ascii_case(n))
}

/// The object type a privilege or group is granted on (`None`: unknown).
pub fn object_of(name: &str) -> Option<ObjectType> {
    let n = canonical(name)?;
    CATALOGUE
        .iter()
        .find(|(p, _)| *p == n)
        .map(|(_, o)| *o)
        .or_else(|| GROUPS.iter().find(|g| g.name == n).map(|g| g.object))
}

/// Whether `name` is a built-in privilege group.
pub fn is_group(name: &str) -> bool {
    canonical(name).is_some_and(|n| GROUPS.iter().any(|g| g.name == n))
}

/// The privileges a granted name stands for: a group's members, `All`
/// for everything, a privilege for itself.
pub fn covers(granted: &str, privilege: &str) -> bool {
    if granted == "All" || granted == privilege {
        return true;
    }
    GROUPS
        .iter()
        .find(|g| g.name == granted)
        .is_some_and(|g| g.tiers.iter().any(|t| t.contains(&privilege)))
}

/// The built-in groups with their privileges (ListPrivilegeGroups).
pub fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    GROUPS
        .iter()
        .map(|g| {
            (
                g.name,
                g.tiers.iter().flat_map(|t| t.iter().copied()).collect(),
            )
        })
        .collect()
}

/// Whether `privilege` is in the catalogue (a single privilege, not a group).
pub fn is_privilege(name: &str) -> bool {
    CATALOGUE.iter().any(|(p, _)| *p == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_canonical_in_any_spelling() {
        assert_eq!(canonical("insert"), Some("Insert"));
        assert_eq!(canonical("PrivilegeInsert"), Some("Insert"));
        assert_eq!(
            canonical("PrivilegeGroupCollectionReadOnly"),
            Some("CollectionReadOnly")
        );
        assert_eq!(canonical("*"), Some("All"));
        assert_eq!(canonical("Fly"), None);
        assert_eq!(object_of("Search"), Some(ObjectType::Collection));
        assert_eq!(object_of("CreateCollection"), Some(ObjectType::Global));
        assert_eq!(object_of("ClusterAdmin"), Some(ObjectType::Global));
    }

    #[test]
    fn groups_nest_and_all_covers_everything() {
        assert!(covers("CollectionReadOnly", "Search"));
        assert!(!covers("CollectionReadOnly", "Insert"));
        assert!(covers("CollectionReadWrite", "Search"));
        assert!(covers("CollectionReadWrite", "Insert"));
        assert!(!covers("CollectionReadWrite", "CreateAlias"));
        assert!(covers("CollectionAdmin", "CreateAlias"));
        assert!(covers("ClusterAdmin", MANAGE_ALIASES));
        assert!(!covers("ClusterReadWrite", MANAGE_ALIASES));
        assert!(covers("All", "DropCollection"));
        assert!(covers("Insert", "Insert"));
        assert!(!covers("Insert", "Delete"));
        // Every group member is a catalogued privilege.
        for (_, members) in groups() {
            for m in members {
                assert!(is_privilege(m), "{m}");
            }
        }
    }
}
