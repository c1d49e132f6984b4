//! Users, roles and grants as coord replicates them, the pure rules that
//! change them ([`SecurityState::apply`]) and the one authorization decision
//! ([`SecurityState::allows`]). No I/O and no hashing here: a password
//! arrives already hashed (the front door hashes, coord stores).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::privilege::{self, ObjectType};

/// The superuser: exists from the first start with auth on, cannot be
/// deleted, passes every check.
pub const ROOT: &str = "root";
/// Built-in role: every privilege.
pub const ADMIN_ROLE: &str = "admin";
/// Built-in role every user holds implicitly.
pub const PUBLIC_ROLE: &str = "public";
/// The one database (grants carry Milvus's `db_name`).
pub const DEFAULT_DB: &str = "default";

/// A user: the Argon2id PHC string of its password, and its roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub password_hash: String,
    pub roles: BTreeSet<String>,
}

/// One privilege (or group) granted to a role on an object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub object: ObjectType,
    /// A collection name, a user name, or `*`.
    pub object_name: String,
    /// Canonical privilege or group name.
    pub privilege: String,
    /// Who granted it.
    pub grantor: String,
}

/// Users, roles and grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityState {
    pub users: BTreeMap<String, User>,
    /// Role name -> its grants (built-in roles included).
    pub roles: BTreeMap<String, BTreeSet<Grant>>,
}

impl Default for SecurityState {
    /// The built-in roles: `admin` (everything) and `public` (what Milvus
    /// gives every user: list and describe collections, see indexes).
    fn default() -> Self {
        let public = [
            (ObjectType::Global, "ShowCollections"),
            (ObjectType::Collection, "DescribeCollection"),
            (ObjectType::Collection, "IndexDetail"),
        ]
        .into_iter()
        .map(|(object, p)| Grant {
            object,
            object_name: "*".into(),
            privilege: p.into(),
            grantor: ROOT.into(),
        })
        .collect();
        Self {
            users: BTreeMap::new(),
            roles: BTreeMap::from([
                (ADMIN_ROLE.to_string(), BTreeSet::new()),
                (PUBLIC_ROLE.to_string(), public),
            ]),
        }
    }
}

/// A change to users, roles or grants (one coord command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecurityOp {
    /// `if_absent`: an existing user is left as it is (the root bootstrap).
    CreateUser {
        name: String,
        password_hash: String,
        if_absent: bool,
    },
    /// `expect_hash`: refused unless the stored hash is still the one the
    /// caller verified the old password against (compare-and-swap).
    SetPassword {
        name: String,
        password_hash: String,
        expect_hash: Option<String>,
    },
    DeleteUser {
        name: String,
    },
    CreateRole {
        name: String,
    },
    /// `force`: drop it even if it holds grants.
    DropRole {
        name: String,
        force: bool,
    },
    AddUserToRole {
        user: String,
        role: String,
    },
    RemoveUserFromRole {
        user: String,
        role: String,
    },
    Grant {
        role: String,
        grant: Grant,
    },
    Revoke {
        role: String,
        grant: Grant,
    },
}

/// Why a security change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SecurityError {
    /// `field` names the request field, `rule` what was expected.
    #[error("invalid {field}: {rule}")]
    Invalid { field: String, rule: String },
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
}

fn invalid(field: &str, rule: impl Into<String>) -> SecurityError {
    SecurityError::Invalid {
        field: field.into(),
        rule: rule.into(),
    }
}

/// Milvus's rule for user and role names: a letter first, then letters,
/// digits and underscores, at most 32 characters.
pub fn check_name(field: &str, name: &str) -> Result<(), SecurityError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || name.len() > 32 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(
            field,
            format!(
                "must start with a letter and hold only letters, digits and underscores, \
                 at most 32 characters (got {name:?})"
            ),
        ));
    }
    Ok(())
}

/// Milvus's password length rule: 6 to 256 characters.
pub fn check_password(field: &str, password: &str) -> Result<(), SecurityError> {
    let n = password.chars().count();
    if !(6..=256).contains(&n) {
        return Err(invalid(
            field,
            format!("must be 6 to 256 characters long (got {n})"),
        ));
    }
    Ok(())
}

/// What a request needs: a privilege on some objects (collection names,
/// a user name, or `*` for global privileges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub privilege: &'static str,
    pub objects: Vec<String>,
}

impl Need {
    /// A global privilege (its object is `*`).
    pub fn global(privilege: &'static str) -> Self {
        Self {
            privilege,
            objects: vec!["*".into()],
        }
    }

    /// A privilege on named objects (a collection and its alias, a user);
    /// none named means `*`.
    pub fn on<S: Into<String>>(
        privilege: &'static str,
        objects: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut objects: Vec<String> = objects
            .into_iter()
            .map(Into::into)
            .filter(|o| !o.is_empty())
            .collect();
        if objects.is_empty() {
            objects.push("*".into());
        }
        Self { privilege, objects }
    }
}

impl SecurityState {
    /// The roles `user` holds, the implicit `public` included.
    pub fn roles_of<'s>(&'s self, user: &str) -> impl Iterator<Item = &'s str> + 's {
        let own = self
            .users
            .get(user)
            .into_iter()
            .flat_map(|u| u.roles.iter());
        own.map(String::as_str).chain(std::iter::once(PUBLIC_ROLE))
    }

    /// Whether `user` may do what `need` says: root and holders of `admin`
    /// may do anything; anyone else needs a grant (on one of its roles,
    /// `public` included) that covers the privilege on `*` or on one of the
    /// named objects (a collection's name or the alias the client used).
    pub fn allows(&self, user: &str, need: &Need) -> bool {
        if user == ROOT {
            return true;
        }
        let mut roles = self.roles_of(user);
        roles.any(|role| {
            role == ADMIN_ROLE
                || self.roles.get(role).is_some_and(|grants| {
                    grants.iter().any(|g| {
                        privilege::covers(&g.privilege, need.privilege)
                            && (g.object_name == "*" || need.objects.contains(&g.object_name))
                    })
                })
        })
    }

    /// Applies one change; a refused change leaves the state as it was.
    pub fn apply(&mut self, op: &SecurityOp) -> Result<(), SecurityError> {
        match op {
            SecurityOp::CreateUser {
                name,
                password_hash,
                if_absent,
            } => {
                check_name("username", name)?;
                if self.users.contains_key(name) {
                    if *if_absent {
                        return Ok(());
                    }
                    return Err(SecurityError::AlreadyExists(format!("user {name:?}")));
                }
                let roles = if name == ROOT {
                    BTreeSet::from([ADMIN_ROLE.to_string()])
                } else {
                    BTreeSet::new()
                };
                self.users.insert(
                    name.clone(),
                    User {
                        password_hash: password_hash.clone(),
                        roles,
                    },
                );
            }
            SecurityOp::SetPassword {
                name,
                password_hash,
                expect_hash,
            } => {
                let user = self
                    .users
                    .get_mut(name)
                    .ok_or_else(|| SecurityError::NotFound(format!("user {name:?}")))?;
                if expect_hash
                    .as_ref()
                    .is_some_and(|h| *h != user.password_hash)
                {
                    return Err(invalid(
                        "oldPassword",
                        "the password changed while this update was checked; try again",
                    ));
                }
                user.password_hash = password_hash.clone();
            }
            SecurityOp::DeleteUser { name } => {
                if name == ROOT {
                    return Err(invalid("username", "the root user cannot be deleted"));
                }
                self.users
                    .remove(name)
                    .ok_or_else(|| SecurityError::NotFound(format!("user {name:?}")))?;
            }
            SecurityOp::CreateRole { name } => {
                check_name("role name", name)?;
                if self.roles.contains_key(name) {
                    return Err(SecurityError::AlreadyExists(format!("role {name:?}")));
                }
                self.roles.insert(name.clone(), BTreeSet::new());
            }
            SecurityOp::DropRole { name, force } => {
                if name == ADMIN_ROLE || name == PUBLIC_ROLE {
                    return Err(invalid(
                        "role_name",
                        format!("the built-in role {name:?} cannot be dropped"),
                    ));
                }
                let grants = self
                    .roles
                    .get(name)
                    .ok_or_else(|| SecurityError::NotFound(format!("role {name:?}")))?;
                if !grants.is_empty() && !force {
                    return Err(invalid(
                        "role_name",
                        format!(
                            "role {name:?} still holds {} grant(s); revoke them or drop with force_drop",
                            grants.len()
                        ),
                    ));
                }
                self.roles.remove(name);
                for user in self.users.values_mut() {
                    user.roles.remove(name);
                }
            }
            SecurityOp::AddUserToRole { user, role } => {
                self.role_exists(role)?;
                if role == PUBLIC_ROLE {
                    return Ok(());
                }
                self.users
                    .get_mut(user)
                    .ok_or_else(|| SecurityError::NotFound(format!("user {user:?}")))?
                    .roles
                    .insert(role.clone());
            }
            SecurityOp::RemoveUserFromRole { user, role } => {
                self.role_exists(role)?;
                if user == ROOT && role == ADMIN_ROLE {
                    return Err(invalid("role_name", "the root user keeps the admin role"));
                }
                self.users
                    .get_mut(user)
                    .ok_or_else(|| SecurityError::NotFound(format!("user {user:?}")))?
                    .roles
                    .remove(role);
            }
            SecurityOp::Grant { role, grant } => {
                check_grant(grant)?;
                if role == ADMIN_ROLE {
                    return Err(invalid(
                        "role",
                        "the admin role holds every privilege already",
                    ));
                }
                self.roles
                    .get_mut(role)
                    .ok_or_else(|| SecurityError::NotFound(format!("role {role:?}")))?
                    .insert(grant.clone());
            }
            SecurityOp::Revoke { role, grant } => {
                let grants = self
                    .roles
                    .get_mut(role)
                    .ok_or_else(|| SecurityError::NotFound(format!("role {role:?}")))?;
                // The grantor does not identify a grant.
                grants.retain(|g| {
                    !(g.object == grant.object
                        && g.object_name == grant.object_name
                        && g.privilege == grant.privilege)
                });
            }
        }
        Ok(())
    }

    fn role_exists(&self, role: &str) -> Result<(), SecurityError> {
        if self.roles.contains_key(role) {
            Ok(())
        } else {
            Err(SecurityError::NotFound(format!("role {role:?}")))
        }
    }
}

/// A grant names a known privilege (or group) on the object type it
/// belongs to, and an object (`*` for global privileges).
fn check_grant(g: &Grant) -> Result<(), SecurityError> {
    let Some(canonical) = privilege::canonical(&g.privilege) else {
        return Err(invalid(
            "privilege",
            format!(
                "{:?} is not a Milvus privilege or built-in privilege group",
                g.privilege
            ),
        ));
    };
    if canonical != g.privilege {
        return Err(invalid("privilege", "must be stored in canonical spelling"));
    }
    let object = privilege::object_of(canonical).unwrap_or(ObjectType::Global);
    // `All` is granted on any object type, as Milvus allows; a collection
    // privilege granted globally (Milvus 2.3's `Global` `DescribeCollection`)
    // covers every collection.
    let fits = canonical == "All"
        || object == g.object
        || (g.object == ObjectType::Global && object == ObjectType::Collection);
    if !fits {
        return Err(invalid(
            "object",
            format!(
                "privilege {canonical} is granted on {} objects, not {}",
                object.name(),
                g.object.name()
            ),
        ));
    }
    if g.object_name.is_empty() {
        return Err(invalid("object_name", "must not be empty (use * for all)"));
    }
    if g.object == ObjectType::Global && g.object_name != "*" {
        return Err(invalid("object_name", "global privileges are granted on *"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
