//! Quiver's security model, Milvus's: users with Argon2id password hashes,
//! roles, privileges granted per collection (or `*`), the built-in privilege
//! groups (`privilege.rs`), the pure rules that change them (`model.rs`,
//! applied by coord), the credential check with its cache (`guard.rs`) and
//! the front door's gate (`layer.rs`: gRPC and HTTP credentials, Host and
//! Origin checks).

mod guard;
pub mod layer;
mod model;
mod password;
pub mod privilege;

pub use guard::{AuthError, Caller, Denied, Guard, SecuritySource};
pub use model::{
    ADMIN_ROLE, DEFAULT_DB, Grant, Need, PUBLIC_ROLE, ROOT, SecurityError, SecurityOp,
    SecurityState, User, check_name, check_password,
};
pub use password::{hash_password, verify_password};
pub use privilege::{MANAGE_ALIASES, ObjectType};
