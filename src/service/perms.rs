//! `/perms grant|revoke` and their REST twins: handing a permission to a role in one guild, and
//! taking it back. Grants from the config file cannot be changed here. Answers are values
//! ([`GrantChanged`]); the fronts draw them.

use serde::Serialize;

use super::{CommandError, ControlPlane, Invalid};
use crate::access::Permission;
use crate::model::Snowflake;

/// What a grant or a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantChange {
    /// The role holds the permission now.
    Added,
    /// The role held it already; nothing changed.
    AlreadyHeld,
    /// The role no longer holds it.
    Removed,
}

/// A role's permission after `/perms grant` or `/perms revoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GrantChanged {
    /// The role.
    pub role: Snowflake,
    /// The permission.
    pub permission: Permission,
    /// What changed.
    pub change: GrantChange,
}

impl ControlPlane {
    /// `/perms grant`: gives `role` the `permission` in `guild`, recorded as granted `by` (a
    /// Discord user id).
    pub async fn grant(
        &self,
        guild: Snowflake,
        role: Snowflake,
        permission: Permission,
        by: Snowflake,
    ) -> Result<GrantChanged, CommandError> {
        let added = self
            .store
            .add_grant(guild, role, permission, by, crate::model::now())
            .await?;
        *self.command_grants.write().expect("grants lock") = self.store.command_grants().await?;
        Ok(GrantChanged {
            role,
            permission,
            change: if added {
                GrantChange::Added
            } else {
                GrantChange::AlreadyHeld
            },
        })
    }

    /// `/perms revoke`: takes a command grant back; config grants cannot be revoked here.
    pub async fn revoke(
        &self,
        guild: Snowflake,
        role: Snowflake,
        permission: Permission,
    ) -> Result<GrantChanged, CommandError> {
        let from_config = self
            .config()
            .grants
            .iter()
            .any(|g| g.role == role && g.permission == permission);
        let removed = self.store.remove_grant(guild, role, permission).await?;
        *self.command_grants.write().expect("grants lock") = self.store.command_grants().await?;
        match (removed, from_config) {
            (_, true) => Err(Invalid::ConfigGrant {
                role,
                permission,
                removed_command_grant: removed,
            }
            .into()),
            (true, false) => Ok(GrantChanged {
                role,
                permission,
                change: GrantChange::Removed,
            }),
            (false, false) => Err(Invalid::NotGranted { role, permission }.into()),
        }
    }
}
