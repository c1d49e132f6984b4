//! Users and roles (Milvus's RPCs; the server must run with auth on).
//! Passwords travel base64-encoded, as every Milvus client sends them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use quiver_proto::milvus::{
    CreateCredentialRequest, CreateRoleRequest, OperateUserRoleRequest, OperateUserRoleType,
    RoleEntity,
};

use crate::Client;
use crate::error::{Result, check, grpc};

impl Client {
    /// Creates a user with `password` (6 to 256 characters).
    pub async fn create_user(&self, user: &str, password: &str) -> Result<()> {
        let status = grpc(
            "CreateCredential",
            self.stub()
                .create_credential(CreateCredentialRequest {
                    username: user.to_string(),
                    password: BASE64.encode(password),
                    ..Default::default()
                })
                .await,
        )?;
        check("CreateCredential", Some(status))
    }

    /// Creates a role (no privileges yet).
    pub async fn create_role(&self, role: &str) -> Result<()> {
        let status = grpc(
            "CreateRole",
            self.stub()
                .create_role(CreateRoleRequest {
                    entity: Some(RoleEntity {
                        name: role.to_string(),
                    }),
                    ..Default::default()
                })
                .await,
        )?;
        check("CreateRole", Some(status))
    }

    /// Gives `user` the role `role`.
    pub async fn grant_role(&self, user: &str, role: &str) -> Result<()> {
        let status = grpc(
            "OperateUserRole",
            self.stub()
                .operate_user_role(OperateUserRoleRequest {
                    username: user.to_string(),
                    role_name: role.to_string(),
                    r#type: OperateUserRoleType::AddUserToRole as i32,
                    ..Default::default()
                })
                .await,
        )?;
        check("OperateUserRole", Some(status))
    }
}
