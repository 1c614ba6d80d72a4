//! `/status [integration]`: the health of every integration, or of one.

use poise::serenity_prelude as serenity;

use crate::access::Permission;
use crate::discord::commands::Gate;
use crate::discord::render::{self, Reply};
use crate::discord::{Context, invocation, respond_in_time};
use crate::service::{self, CommandError};

/// Autocompletes integration names (fuzzy), for members who may see them.
async fn integration_names(
    ctx: Context<'_>,
    partial: &str,
) -> serenity::CreateAutocompleteResponse {
    let plane = &ctx.data().plane;
    let allowed = super::holds(ctx, Permission::StatusView);
    let choices = if allowed {
        service::suggest_integrations(&plane.config(), partial, 25)
    } else {
        Vec::new()
    };
    render::choices(choices)
}

/// Show the health of every integration, or of one in detail.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::StatusView))]
pub async fn status(
    ctx: Context<'_>,
    #[description = "An integration to show in detail"]
    #[autocomplete = "integration_names"]
    #[max_length = 64]
    integration: Option<String>,
) -> Result<(), CommandError> {
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let answer = plane.invoke(&invocation, || async {
        let now = crate::model::now();
        Ok(match &integration {
            None => render::overview(&plane.overview_page(0, render::ROWS_PER_PAGE, now).await?),
            Some(name) => Reply::embed(render::detail(&plane.detail(name, now).await?))
                .components(vec![render::recheck_button(name)]),
        })
    });
    respond_in_time(ctx, false, answer).await
}
