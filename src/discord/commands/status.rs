//! `/status [integration]`: the health of every integration, or of one.

use poise::serenity_prelude as serenity;

use crate::access::Permission;
use crate::discord::{Context, invocation, render, respond_in_time};
use crate::service::{self, CommandError};

/// Autocompletes integration names (fuzzy), for members who may see them.
async fn integration_names(
    ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
    let invocation = invocation(ctx, "status");
    let plane = &ctx.data().plane;
    let allowed = plane
        .policy()
        .decide(&invocation.member, Permission::StatusView)
        .is_ok();
    let choices = if allowed {
        service::suggest_integrations(&plane.config(), partial, 25)
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
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx, "status");
    let answer = plane.invoke(&invocation, Permission::StatusView, || async {
        let now = crate::model::now();
        let (embed, components) = match &integration {
            None => render::overview(&plane.overview_page(0, render::ROWS_PER_PAGE, now).await?),
            Some(name) => (
                render::detail(&plane.detail(name, now).await?),
                vec![render::recheck_button(name)],
            ),
        };
        Ok(poise::CreateReply::default()
            .embed(embed)
            .components(components))
    });
    respond_in_time(ctx, false, answer).await
}
