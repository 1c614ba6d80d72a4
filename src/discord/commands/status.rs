//! `/status [integration]`: the health of every integration, or of one.

use poise::serenity_prelude as serenity;

use crate::access::Permission;
use crate::discord::{Context, invocation, render, respond};
use crate::service::{self, CommandError};

/// Autocompletes integration names (fuzzy), for members who may see them.
async fn integration_names(
    ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
    let invocation = invocation(ctx, "status");
    let allowed = ctx
        .data()
        .plane
        .policy()
        .decide(&invocation.member, Permission::StatusView)
        .is_ok();
    let choices = if allowed {
        service::suggest_integrations(&ctx.data().config, partial, 25)
            .into_iter()
            .map(serenity::AutocompleteChoice::from)
            .collect()
    } else {
        Vec::new()
    };
    serenity::CreateAutocompleteResponse::new().set_choices(choices)
}

/// Show the health of every integration, or of one in detail.
#[poise::command(slash_command)]
pub async fn status(
    ctx: Context<'_>,
    #[description = "An integration to show in detail"]
    #[autocomplete = "integration_names"]
    integration: Option<String>,
) -> Result<(), CommandError> {
    let data = ctx.data();
    let invocation = invocation(ctx, "status");
    let answer = data
        .plane
        .invoke(&invocation, Permission::StatusView, || async {
            let now = crate::model::now();
            let embed = match &integration {
                None => {
                    let day = data.day.get(&data.store).await?;
                    let states = data
                        .engine
                        .snapshot()
                        .into_iter()
                        .map(|state| (state.integration.clone(), state))
                        .collect();
                    render::overview(&service::overview_rows(&data.config, states, &day, now))
                }
                Some(name) => {
                    let live = Some(data.engine.state(name).into_iter().collect());
                    render::detail(
                        &service::status_detail(&data.config, &data.store, live, name, now).await?,
                    )
                }
            };
            Ok(poise::CreateReply::default().embed(embed))
        })
        .await;
    respond(ctx, answer).await
}
