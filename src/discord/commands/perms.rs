//! `/perms grant|revoke|list|check`: who may run what. Registered for members with Manage
//! Server only, and checked on our side anyway (`perms.manage`), because guild admins can
//! loosen Discord's defaults.

use poise::serenity_prelude as serenity;

use crate::access::{GrantSource, Member, Permission};
use crate::discord::commands::Gate;
use crate::discord::render::{self, Reply};
use crate::discord::{Context, invocation, respond, snowflake};
use crate::service::CommandError;

/// A permission, as a fixed choice in Discord.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum PermissionChoice {
    #[name = "status.view"]
    StatusView,
    #[name = "status.recheck"]
    StatusRecheck,
    #[name = "sync.run"]
    SyncRun,
    #[name = "action.run"]
    ActionRun,
    #[name = "action.approve"]
    ActionApprove,
    #[name = "alerts.manage"]
    AlertsManage,
    #[name = "audit.view"]
    AuditView,
    #[name = "perms.manage"]
    PermsManage,
}

impl From<PermissionChoice> for Permission {
    fn from(choice: PermissionChoice) -> Permission {
        match choice {
            PermissionChoice::StatusView => Permission::StatusView,
            PermissionChoice::StatusRecheck => Permission::StatusRecheck,
            PermissionChoice::SyncRun => Permission::SyncRun,
            PermissionChoice::ActionRun => Permission::ActionRun,
            PermissionChoice::ActionApprove => Permission::ActionApprove,
            PermissionChoice::AlertsManage => Permission::AlertsManage,
            PermissionChoice::AuditView => Permission::AuditView,
            PermissionChoice::PermsManage => Permission::PermsManage,
        }
    }
}

/// Who may run what: grant, revoke, list and check permissions.
#[poise::command(
    slash_command,
    subcommands("grant", "revoke", "list", "check"),
    subcommand_required,
    default_member_permissions = "MANAGE_GUILD"
)]
pub async fn perms(_ctx: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

fn guild_of(ctx: Context<'_>) -> Result<crate::model::Snowflake, CommandError> {
    ctx.guild_id()
        .map(snowflake)
        .ok_or(CommandError::Denied(crate::access::Denied::DirectMessage))
}

/// Give a role a permission in this server.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::PermsManage))]
pub async fn grant(
    ctx: Context<'_>,
    #[description = "The role"] role: serenity::Role,
    #[description = "The permission"] permission: PermissionChoice,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane
        .invoke(&invocation, || async {
            let changed = plane
                .grant(
                    guild_of(ctx)?,
                    snowflake(role.id),
                    permission.into(),
                    snowflake(ctx.author().id),
                )
                .await?;
            Ok(render::grant_changed(&changed))
        })
        .await;
    respond(ctx, answer).await
}

/// Take a permission back from a role in this server.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::PermsManage))]
pub async fn revoke(
    ctx: Context<'_>,
    #[description = "The role"] role: serenity::Role,
    #[description = "The permission"] permission: PermissionChoice,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane
        .invoke(&invocation, || async {
            let changed = plane
                .revoke(guild_of(ctx)?, snowflake(role.id), permission.into())
                .await?;
            Ok(render::grant_changed(&changed))
        })
        .await;
    respond(ctx, answer).await
}

/// List every grant that applies in this server, and where it comes from.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::PermsManage))]
pub async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane
        .invoke(&invocation, || async {
            let guild = guild_of(ctx)?;
            let policy = plane.policy();
            let mut lines: Vec<String> = policy
                .grants
                .iter()
                .filter(|g| g.applies_in(guild))
                .map(|g| {
                    let source = match g.source {
                        GrantSource::Config => {
                            "config (cannot be revoked from Discord)".to_string()
                        }
                        GrantSource::Command { by, .. } => format!("/perms grant by <@{}>", by.0),
                    };
                    format!("<@&{}> `{}`: {source}", g.role.0, g.permission)
                })
                .collect();
            if policy.public_status {
                lines.insert(
                    0,
                    "everyone `status.view`: public_status in the config".into(),
                );
            }
            lines.push("The server owner and Administrators hold every permission.".into());
            Ok(Reply::text(lines.join("\n")).ephemeral(true))
        })
        .await;
    respond(ctx, answer).await
}

/// What a member may do here, and which role grants it.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::PermsManage))]
pub async fn check(
    ctx: Context<'_>,
    #[description = "The member"] user: serenity::Member,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane
        .invoke(&invocation, || async {
            let guild = guild_of(ctx)?;
            let is_owner = ctx.guild().is_some_and(|g| g.owner_id == user.user.id);
            let member = Member {
                user: snowflake(user.user.id),
                guild: Some(guild),
                roles: user.roles.iter().map(|r| snowflake(*r)).collect(),
                is_owner,
                is_administrator: user
                    .permissions
                    .is_some_and(serenity::Permissions::administrator),
            };
            let lines: Vec<String> = plane
                .policy()
                .explain(&member)
                .into_iter()
                .map(|(permission, verdict)| match verdict {
                    Ok(by) => format!("✅ `{permission}`: {}", render::allowed(&by)),
                    Err(_) => format!("❌ `{permission}`"),
                })
                .collect();
            Ok(Reply::text(format!("<@{}>:\n{}", user.user.id, lines.join("\n"))).ephemeral(true))
        })
        .await;
    respond(ctx, answer).await
}
