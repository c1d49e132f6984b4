use super::*;

fn grant(object: ObjectType, name: &str, privilege: &str) -> Grant {
    Grant {
        object,
        object_name: name.into(),
        privilege: privilege.into(),
        grantor: ROOT.into(),
    }
}

fn state_with(user: &str, role: &str, grants: &[Grant]) -> SecurityState {
    let mut s = SecurityState::default();
    for op in [
        SecurityOp::CreateUser {
            name: user.into(),
            password_hash: "h".into(),
            if_absent: false,
        },
        SecurityOp::CreateRole { name: role.into() },
        SecurityOp::AddUserToRole {
            user: user.into(),
            role: role.into(),
        },
    ] {
        s.apply(&op).expect("apply");
    }
    for g in grants {
        s.apply(&SecurityOp::Grant {
            role: role.into(),
            grant: g.clone(),
        })
        .expect("grant");
    }
    s
}

#[test]
fn grants_decide_per_privilege_and_object() {
    let s = state_with(
        "alice",
        "reader",
        &[grant(ObjectType::Collection, "books", "CollectionReadOnly")],
    );
    assert!(s.allows("alice", &Need::on("Search", ["books"])));
    assert!(s.allows("alice", &Need::on("Search", ["books_v2", "books"])));
    assert!(!s.allows("alice", &Need::on("Search", ["films"])));
    assert!(!s.allows("alice", &Need::on("Insert", ["books"])));
    assert!(!s.allows("alice", &Need::global("CreateCollection")));
    // public: everyone may list and describe.
    assert!(s.allows("alice", &Need::global("ShowCollections")));
    assert!(s.allows("nobody", &Need::on("DescribeCollection", ["films"])));
    assert!(!s.allows("nobody", &Need::on("Search", ["films"])));
    // root and admin holders pass everything.
    assert!(s.allows(ROOT, &Need::global("DropCollection")));
    let mut s = s;
    s.apply(&SecurityOp::AddUserToRole {
        user: "alice".into(),
        role: ADMIN_ROLE.into(),
    })
    .expect("add admin");
    assert!(s.allows("alice", &Need::global(crate::privilege::MANAGE_ALIASES)));
}

#[test]
fn star_grants_cover_every_collection() {
    let s = state_with(
        "bob",
        "writer",
        &[grant(ObjectType::Collection, "*", "CollectionReadWrite")],
    );
    assert!(s.allows("bob", &Need::on("Insert", ["anything"])));
    assert!(!s.allows("bob", &Need::on("CreateAlias", ["anything"])));
    assert!(!s.allows("bob", &Need::global("DropCollection")));
}

#[test]
fn refused_changes_leave_the_state_alone() {
    let mut s = state_with("carol", "r", &[]);
    let before = s.clone();
    for op in [
        SecurityOp::DeleteUser { name: ROOT.into() },
        SecurityOp::DeleteUser {
            name: "ghost".into(),
        },
        SecurityOp::CreateRole { name: "r".into() },
        SecurityOp::CreateRole {
            name: "1bad".into(),
        },
        SecurityOp::DropRole {
            name: PUBLIC_ROLE.into(),
            force: true,
        },
        SecurityOp::AddUserToRole {
            user: "carol".into(),
            role: "missing".into(),
        },
        SecurityOp::Grant {
            role: "r".into(),
            grant: grant(ObjectType::Collection, "c", "Fly"),
        },
        SecurityOp::Grant {
            role: "r".into(),
            grant: grant(ObjectType::Collection, "c", "CreateCollection"),
        },
        SecurityOp::Grant {
            role: "r".into(),
            grant: grant(ObjectType::Global, "c", "CreateCollection"),
        },
        SecurityOp::SetPassword {
            name: "carol".into(),
            password_hash: "new".into(),
            expect_hash: Some("stale".into()),
        },
    ] {
        assert!(s.apply(&op).is_err(), "{op:?} was accepted");
        assert_eq!(s, before, "{op:?} changed the state");
    }
}

#[test]
fn dropping_a_role_with_grants_needs_force_and_unassigns_it() {
    let mut s = state_with(
        "dave",
        "r",
        &[grant(ObjectType::Global, "*", "ShowCollections")],
    );
    let drop = |force| SecurityOp::DropRole {
        name: "r".into(),
        force,
    };
    assert!(s.apply(&drop(false)).is_err());
    s.apply(&drop(true)).expect("force drop");
    assert!(!s.roles.contains_key("r"));
    assert!(s.users["dave"].roles.is_empty());
}

#[test]
fn root_is_created_once_with_admin() {
    let mut s = SecurityState::default();
    let create = |h: &str| SecurityOp::CreateUser {
        name: ROOT.into(),
        password_hash: h.into(),
        if_absent: true,
    };
    s.apply(&create("first")).expect("create");
    s.apply(&create("second")).expect("if absent");
    assert_eq!(s.users[ROOT].password_hash, "first");
    assert!(s.users[ROOT].roles.contains(ADMIN_ROLE));
    assert!(
        s.apply(&SecurityOp::RemoveUserFromRole {
            user: ROOT.into(),
            role: ADMIN_ROLE.into()
        })
        .is_err()
    );
}

#[test]
fn names_and_passwords_follow_milvus_rules() {
    assert!(check_name("username", "alice_2").is_ok());
    for bad in ["", "2a", "a-b", "a b", &"x".repeat(33)] {
        assert!(check_name("username", bad).is_err(), "{bad:?}");
    }
    assert!(check_password("password", "12345").is_err());
    assert!(check_password("password", "123456").is_ok());
    assert!(check_password("password", &"p".repeat(257)).is_err());
}
