//! `/alerts list|ack|silence|unsilence`: open incidents and silences, and what people do about
//! them. Changing anything needs `alerts.manage`; the list needs `status.view`.

use poise::serenity_prelude as serenity;

use crate::access::Permission;
use crate::discord::commands::Gate;
use crate::discord::render::{self, Reply};
use crate::discord::{Context, invocation, respond_in_time};
use crate::service::CommandError;

/// Open incidents and silences, and acknowledging or silencing them.
#[poise::command(
    slash_command,
    subcommands("list", "ack", "silence", "unsilence"),
    subcommand_required
)]
pub async fn alerts(_ctx: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Open incidents (notified and recorded) and active silences.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::StatusView))]
pub async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane.invoke(&invocation, || async {
        let overview = plane.alerts_overview().await?;
        Ok(Reply::embed(render::alerts_overview(&overview)).ephemeral(true))
    });
    respond_in_time(ctx, true, answer).await
}

/// Acknowledge an incident: reminders stop, and its message says who has it.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::AlertsManage))]
pub async fn ack(
    ctx: Context<'_>,
    #[description = "The incident number (its message's footer, or /alerts list)"]
    #[min = 1]
    incident: i64,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane.invoke(&invocation, || async {
        let acked = plane.acknowledge(incident, &invocation.actor).await?;
        Ok(render::acked(acked).ephemeral(true))
    });
    respond_in_time(ctx, true, answer).await
}

/// Silence an integration (or every integration with a tag) for a while.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::AlertsManage))]
pub async fn silence(
    ctx: Context<'_>,
    #[description = "An integration, or tag:NAME for every integration with that tag"]
    #[autocomplete = "targets"]
    #[max_length = 70]
    target: String,
    #[description = "How long, like 30m, 1h or 2d (at most 30d)"]
    #[max_length = 16]
    duration: String,
    #[description = "Why (shown on the alert and in /alerts list)"]
    #[max_length = 200]
    reason: String,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane.invoke(&invocation, || async {
        let silenced = plane
            .silence(&target, &duration, &reason, &invocation.actor)
            .await?;
        Ok(render::silenced(&silenced))
    });
    respond_in_time(ctx, false, answer).await
}

/// End a silence early.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::AlertsManage))]
pub async fn unsilence(
    ctx: Context<'_>,
    #[description = "The silence number (from /alerts list)"]
    #[min = 1]
    silence: i64,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let answer = plane.invoke(&invocation, || async {
        Ok(render::unsilenced(plane.unsilence(silence).await?))
    });
    respond_in_time(ctx, false, answer).await
}

/// Autocompletes silence targets: integration names, then `tag:` names.
async fn targets(ctx: Context<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let plane = &ctx.data().plane;
    let allowed = super::holds(ctx, Permission::AlertsManage);
    let mut choices: Vec<String> = Vec::new();
    if allowed {
        let config = plane.config();
        choices = crate::service::suggest_integrations(&config, partial, 20);
        let mut tags: Vec<String> = config
            .integrations
            .iter()
            .flat_map(|i| i.tags.iter().map(|t| format!("tag:{t}")))
            .filter(|t| t.contains(partial.trim()))
            .collect();
        tags.sort();
        tags.dedup();
        choices.extend(tags.into_iter().take(25 - choices.len()));
    }
    render::choices(choices)
}
