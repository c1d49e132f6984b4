//! Users, roles and grants over the Milvus RPCs (CreateCredential …
//! SelectGrant). Passwords arrive base64-encoded (as pymilvus sends them),
//! are checked against Milvus's rules, hashed here off the async workers
//! and stored hashed by coord; nothing here logs them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use quiver_auth::{
    Caller, DEFAULT_DB, Grant, ObjectType, ROOT, SecurityOp, check_name, check_password, privilege,
};
use quiver_common::{Error, Result};
use quiver_proto::common::{ErrorCode, Status};
use quiver_proto::milvus::*;

use super::MilvusFront;
use super::status::{failure, status_of, success};

/// merr `ErrPrivilegeNotAuthenticated` (a wrong old password).
const NOT_AUTHENTICATED: i32 = 1400;

fn decode_password(field: &str, b64: &str) -> Result<String> {
    let bytes = BASE64
        .decode(b64.trim())
        .map_err(|_| Error::invalid(field, "must be base64-encoded (as Milvus clients send it)"))?;
    String::from_utf8(bytes).map_err(|_| Error::invalid(field, "must be UTF-8 text"))
}

fn sec(e: quiver_auth::SecurityError) -> Error {
    match e {
        quiver_auth::SecurityError::Invalid { field, rule } => Error::invalid(field, rule),
        other => Error::invalid("name", other.to_string()),
    }
}

async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || quiver_auth::hash_password(&password))
        .await
        .map_err(|e| Error::Internal(format!("password hashing task: {e}")))?
        .map_err(Error::Internal)
}

/// A grant's object name as the checks see it: collections of a database
/// other than the default one by their qualified name (`db.name`). A grant
/// on every collection (`*`) is a grant in every database.
fn object_in(db: &str, object: ObjectType, object_name: String) -> Result<String> {
    if object != ObjectType::Collection
        || db.is_empty()
        || db == DEFAULT_DB
        || object_name.is_empty()
        || object_name == "*"
    {
        return Ok(object_name);
    }
    quiver_common::validate_name("db_name", db)?;
    Ok(quiver_common::qualify(db, &object_name))
}

impl MilvusFront {
    pub(crate) async fn create_credential(&self, r: CreateCredentialRequest) -> Status {
        status_of(self.create_user(r).await)
    }

    async fn create_user(&self, r: CreateCredentialRequest) -> Result<()> {
        check_name("username", &r.username).map_err(sec)?;
        let password = decode_password("password", &r.password)?;
        check_password("password", &password).map_err(sec)?;
        let password_hash = hash(password).await?;
        self.catalog
            .change_security(SecurityOp::CreateUser {
                name: r.username,
                password_hash,
                if_absent: false,
            })
            .await
    }

    /// Needs the old password, except from root (a reset).
    pub(crate) async fn update_credential(
        &self,
        caller: &Caller,
        r: UpdateCredentialRequest,
    ) -> Status {
        let run = async {
            let new = decode_password("newPassword", &r.new_password)?;
            check_password("newPassword", &new).map_err(sec)?;
            let stored = self
                .catalog
                .security()
                .users
                .get(&r.username)
                .map(|u| u.password_hash.clone())
                .ok_or_else(|| {
                    Error::invalid("username", format!("user {:?} does not exist", r.username))
                })?;
            if caller.user() != Some(ROOT) {
                let old = decode_password("oldPassword", &r.old_password)?;
                let phc = stored.clone();
                let ok =
                    tokio::task::spawn_blocking(move || quiver_auth::verify_password(&old, &phc))
                        .await
                        .unwrap_or(false);
                if !ok {
                    return Ok(Some(format!("old password not correct for {}", r.username)));
                }
            }
            let password_hash = hash(new).await?;
            self.catalog
                .change_security(SecurityOp::SetPassword {
                    name: r.username.clone(),
                    password_hash,
                    expect_hash: Some(stored),
                })
                .await?;
            Ok(None)
        };
        match run.await {
            Ok(None) => success(),
            Ok(Some(reason)) => Status {
                error_code: ErrorCode::IllegalArgument as i32,
                code: NOT_AUTHENTICATED,
                reason,
                ..Default::default()
            },
            Err(e) => failure(&e),
        }
    }

    /// Deletes a user; one that does not exist is already gone (success, as
    /// Milvus: scripts drop their users before creating them).
    pub(crate) async fn delete_credential(&self, r: DeleteCredentialRequest) -> Status {
        if r.username != quiver_auth::ROOT
            && !self.catalog.security().users.contains_key(&r.username)
        {
            return success();
        }
        status_of(
            self.catalog
                .change_security(SecurityOp::DeleteUser { name: r.username })
                .await,
        )
    }

    pub(crate) fn list_cred_users(&self) -> ListCredUsersResponse {
        ListCredUsersResponse {
            status: Some(success()),
            usernames: self.catalog.security().users.keys().cloned().collect(),
        }
    }

    pub(crate) async fn create_role(&self, r: CreateRoleRequest) -> Status {
        let name = r.entity.map(|e| e.name).unwrap_or_default();
        status_of(
            self.catalog
                .change_security(SecurityOp::CreateRole { name })
                .await,
        )
    }

    pub(crate) async fn drop_role(&self, r: DropRoleRequest) -> Status {
        status_of(
            self.catalog
                .change_security(SecurityOp::DropRole {
                    name: r.role_name,
                    force: r.force_drop,
                })
                .await,
        )
    }

    pub(crate) async fn operate_user_role(&self, r: OperateUserRoleRequest) -> Status {
        let op = match OperateUserRoleType::try_from(r.r#type) {
            Ok(OperateUserRoleType::AddUserToRole) => SecurityOp::AddUserToRole {
                user: r.username,
                role: r.role_name,
            },
            Ok(OperateUserRoleType::RemoveUserFromRole) => SecurityOp::RemoveUserFromRole {
                user: r.username,
                role: r.role_name,
            },
            Err(_) => {
                return failure(&Error::invalid(
                    "type",
                    format!(
                        "must be AddUserToRole or RemoveUserFromRole (got {})",
                        r.r#type
                    ),
                ));
            }
        };
        status_of(self.catalog.change_security(op).await)
    }

    pub(crate) fn select_role(&self, r: SelectRoleRequest) -> SelectRoleResponse {
        let s = self.catalog.security();
        let wanted = r.role.map(|e| e.name).filter(|n| !n.is_empty());
        let results = s
            .roles
            .keys()
            .filter(|name| wanted.as_ref().is_none_or(|w| w == *name))
            .map(|name| RoleResult {
                role: Some(RoleEntity { name: name.clone() }),
                users: if r.include_user_info {
                    s.users
                        .iter()
                        .filter(|(_, u)| u.roles.contains(name))
                        .map(|(n, _)| UserEntity { name: n.clone() })
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        SelectRoleResponse {
            status: Some(success()),
            results,
        }
    }

    pub(crate) fn select_user(&self, r: SelectUserRequest) -> SelectUserResponse {
        let s = self.catalog.security();
        let wanted = r.user.map(|e| e.name).filter(|n| !n.is_empty());
        if let Some(w) = &wanted
            && !s.users.contains_key(w)
        {
            return SelectUserResponse {
                status: Some(failure(&Error::invalid(
                    "user",
                    format!("user {w:?} does not exist"),
                ))),
                results: Vec::new(),
            };
        }
        let results = s
            .users
            .iter()
            .filter(|(name, _)| wanted.as_ref().is_none_or(|w| w == *name))
            .map(|(name, u)| UserResult {
                user: Some(UserEntity { name: name.clone() }),
                roles: if r.include_role_info {
                    u.roles
                        .iter()
                        .map(|n| RoleEntity { name: n.clone() })
                        .collect()
                } else {
                    Vec::new()
                },
            })
            .collect();
        SelectUserResponse {
            status: Some(success()),
            results,
        }
    }

    pub(crate) async fn operate_privilege(
        &self,
        caller: &Caller,
        r: OperatePrivilegeRequest,
    ) -> Status {
        let run = || -> Result<(String, Grant)> {
            let e = r
                .entity
                .clone()
                .ok_or_else(|| Error::invalid("entity", "must be set"))?;
            let role = e.role.map(|r| r.name).unwrap_or_default();
            let object_name = e.object.map(|o| o.name).unwrap_or_default();
            let object = ObjectType::parse(&object_name).ok_or_else(|| {
                Error::invalid(
                    "object",
                    format!("must be Collection, Global or User (got {object_name:?})"),
                )
            })?;
            let name = e
                .grantor
                .and_then(|g| g.privilege)
                .map(|p| p.name)
                .unwrap_or_default();
            let object_name = object_in(&e.db_name, object, e.object_name)?;
            Ok((role, self.grant(caller, object, object_name, &name)?))
        };
        self.apply_grant(run(), r.r#type).await
    }

    pub(crate) async fn operate_privilege_v2(
        &self,
        caller: &Caller,
        r: OperatePrivilegeV2Request,
    ) -> Status {
        let run = || -> Result<(String, Grant)> {
            let role = r.role.clone().map(|r| r.name).unwrap_or_default();
            let name = r
                .grantor
                .clone()
                .and_then(|g| g.privilege)
                .map(|p| p.name)
                .unwrap_or_default();
            let object = privilege::object_of(&name).ok_or_else(|| unknown_privilege(&name))?;
            let object_name = match object {
                ObjectType::Collection if !r.collection_name.is_empty() => {
                    r.collection_name.clone()
                }
                _ => "*".to_string(),
            };
            let object_name = object_in(&r.db_name, object, object_name)?;
            Ok((role, self.grant(caller, object, object_name, &name)?))
        };
        self.apply_grant(run(), r.r#type).await
    }

    fn grant(
        &self,
        caller: &Caller,
        object: ObjectType,
        object_name: String,
        privilege_name: &str,
    ) -> Result<Grant> {
        let canonical = privilege::canonical(privilege_name)
            .ok_or_else(|| unknown_privilege(privilege_name))?;
        Ok(Grant {
            object,
            object_name: if object_name.is_empty() {
                "*".into()
            } else {
                object_name
            },
            privilege: canonical.to_string(),
            grantor: caller.user().unwrap_or(ROOT).to_string(),
        })
    }

    async fn apply_grant(&self, parsed: Result<(String, Grant)>, kind: i32) -> Status {
        let (role, grant) = match parsed {
            Ok(p) => p,
            Err(e) => return failure(&e),
        };
        let op = match OperatePrivilegeType::try_from(kind) {
            Ok(OperatePrivilegeType::Grant) => SecurityOp::Grant { role, grant },
            Ok(OperatePrivilegeType::Revoke) => SecurityOp::Revoke { role, grant },
            Err(_) => {
                return failure(&Error::invalid(
                    "type",
                    format!("must be Grant or Revoke (got {kind})"),
                ));
            }
        };
        status_of(self.catalog.change_security(op).await)
    }

    pub(crate) fn select_grant(&self, r: SelectGrantRequest) -> SelectGrantResponse {
        let s = self.catalog.security();
        let e = r.entity.unwrap_or_default();
        let role = e.role.map(|r| r.name).unwrap_or_default();
        let Some(grants) = s.roles.get(&role) else {
            return SelectGrantResponse {
                status: Some(failure(&Error::invalid(
                    "role",
                    format!("role {role:?} does not exist"),
                ))),
                entities: Vec::new(),
            };
        };
        let object = e.object.map(|o| o.name).filter(|o| !o.is_empty());
        let entities = grants
            .iter()
            .filter(|g| {
                object
                    .as_ref()
                    .is_none_or(|o| g.object.name().eq_ignore_ascii_case(o))
            })
            .filter(|g| {
                e.object_name.is_empty()
                    || g.object_name == quiver_common::qualify(&e.db_name, &e.object_name)
            })
            .map(|g| (g, quiver_common::split_qualified(&g.object_name)))
            .map(|(g, (db, object_name))| GrantEntity {
                role: Some(RoleEntity { name: role.clone() }),
                object: Some(ObjectEntity {
                    name: g.object.name().to_string(),
                }),
                object_name: object_name.to_string(),
                grantor: Some(GrantorEntity {
                    user: Some(UserEntity {
                        name: g.grantor.clone(),
                    }),
                    privilege: Some(PrivilegeEntity {
                        name: g.privilege.clone(),
                    }),
                }),
                db_name: db.to_string(),
            })
            .collect();
        SelectGrantResponse {
            status: Some(success()),
            entities,
        }
    }

    pub(crate) fn list_privilege_groups(&self) -> ListPrivilegeGroupsResponse {
        ListPrivilegeGroupsResponse {
            status: Some(success()),
            privilege_groups: privilege::groups()
                .into_iter()
                .map(|(name, members)| PrivilegeGroupInfo {
                    group_name: name.to_string(),
                    privileges: members
                        .into_iter()
                        .map(|m| PrivilegeEntity {
                            name: m.to_string(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn unknown_privilege(name: &str) -> Error {
    Error::invalid(
        "privilege",
        format!("{name:?} is not a Milvus privilege or built-in privilege group"),
    )
}
