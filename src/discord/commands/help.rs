//! `/help`: the commands this member may run.

use crate::access::Permission;
use crate::discord::render::Reply;
use crate::discord::{Context, invocation, respond};
use crate::service::CommandError;

/// The commands you may run here, one line each.
#[poise::command(slash_command)]
pub async fn help(ctx: Context<'_>) -> Result<(), CommandError> {
    let invocation = invocation(ctx, "help");
    let plane = &ctx.data().plane;
    let answer = plane.invoke_open(&invocation, || async {
        let policy = plane.policy();
        let may = |permission| policy.decide(&invocation.member, permission).is_ok();
        let mut lines = Vec::new();
        for (command, permission, what) in COMMANDS {
            if may(*permission) {
                lines.push(format!("`{command}`: {what}"));
            }
        }
        lines.push("`/help`: this list".into());
        Ok(Reply::text(lines.join("\n")).ephemeral(true))
    });
    respond(ctx, answer.await).await
}

/// Each command with the permission it needs and one line on what it does.
const COMMANDS: &[(&str, Permission, &str)] = &[
    (
        "/status [integration]",
        Permission::StatusView,
        "health of every integration, or one in detail",
    ),
    (
        "/alerts list",
        Permission::StatusView,
        "open incidents and silences",
    ),
    (
        "/alerts ack|silence|unsilence",
        Permission::AlertsManage,
        "acknowledge incidents, silence integrations or tags",
    ),
    (
        "/perms grant|revoke|list|check",
        Permission::PermsManage,
        "who may run what",
    ),
    (
        "/audit",
        Permission::AuditView,
        "recent commands and their outcomes",
    ),
];
