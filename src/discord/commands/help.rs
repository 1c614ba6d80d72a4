//! `/help`: the commands this member may run, from the commands themselves: poise's names and
//! `///` docs, and each command's [`Gate`].

use super::{Gate, all, leaves};
use crate::discord::render::Reply;
use crate::discord::{Context, invocation, respond};
use crate::service::CommandError;

/// The commands you may run here, one line each.
#[poise::command(slash_command, custom_data = Gate::OPEN)]
pub async fn help(ctx: Context<'_>) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane.invoke(&invocation, || async {
        let policy = plane.policy();
        let commands = all();
        let lines: Vec<String> = leaves(&commands)
            .into_iter()
            .filter(|(_, command)| {
                Gate::of(command)
                    .permission
                    .is_none_or(|permission| policy.admit(&invocation.caller, permission).is_ok())
            })
            .map(|(name, command)| {
                format!(
                    "`/{name}`: {}",
                    command.description.as_deref().unwrap_or_default()
                )
            })
            .collect();
        Ok(Reply::text(lines.join("\n")).ephemeral(true))
    });
    respond(ctx, answer.await).await
}
