//! `/status [integration] [period]`: the health of every integration, or of one with its chart.

use poise::serenity_prelude as serenity;

use crate::access::Permission;
use crate::chart::ChartPeriod;
use crate::discord::commands::Gate;
use crate::discord::render;
use crate::discord::{Context, invocation, respond_in_time};
use crate::service::{self, CommandError};

/// A chart's period, as a fixed choice in Discord.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum PeriodChoice {
    #[name = "24h"]
    Day,
    #[name = "7d"]
    Week,
}

impl From<PeriodChoice> for ChartPeriod {
    fn from(choice: PeriodChoice) -> ChartPeriod {
        match choice {
            PeriodChoice::Day => ChartPeriod::Day,
            PeriodChoice::Week => ChartPeriod::Week,
        }
    }
}

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

/// Show the health of every integration, or of one in detail with its chart.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::StatusView))]
pub async fn status(
    ctx: Context<'_>,
    #[description = "An integration to show in detail"]
    #[autocomplete = "integration_names"]
    #[max_length = 64]
    integration: Option<String>,
    #[description = "The chart's span, with an integration (24h unless given)"] period: Option<
        PeriodChoice,
    >,
) -> Result<(), CommandError> {
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let answer = plane.invoke(&invocation, || async {
        let now = crate::model::now();
        Ok(match &integration {
            None => render::overview(&plane.overview_page(0, render::ROWS_PER_PAGE, now).await?),
            Some(name) => {
                let period = period.map_or(ChartPeriod::Day, ChartPeriod::from);
                // The chart is drawn on the blocking pool while the detail is read.
                let (detail, chart) = tokio::join!(
                    plane.detail(name, now),
                    plane.status_chart_at(name, period, now)
                );
                render::detail_with_chart(&detail?, period, chart)
            }
        })
    });
    respond_in_time(ctx, false, answer).await
}
