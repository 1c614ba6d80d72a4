//! `/audit [user] [command] [outcome] [limit]`: recent entries of the audit log.

use poise::serenity_prelude as serenity;

use crate::access::Permission;
use crate::audit::{AuditQuery, Outcome};
use crate::discord::commands::Gate;
use crate::discord::render::{self, Reply};
use crate::discord::{Context, invocation, respond_in_time};
use crate::service::CommandError;

/// An outcome, as a fixed choice in Discord.
#[derive(Debug, Clone, Copy, poise::ChoiceParameter)]
pub enum OutcomeChoice {
    #[name = "ok"]
    Ok,
    #[name = "denied"]
    Denied,
    #[name = "invalid"]
    Invalid,
    #[name = "failed"]
    Failed,
    #[name = "rate_limited"]
    RateLimited,
}

impl From<OutcomeChoice> for Outcome {
    fn from(choice: OutcomeChoice) -> Outcome {
        match choice {
            OutcomeChoice::Ok => Outcome::Ok,
            OutcomeChoice::Denied => Outcome::Denied,
            OutcomeChoice::Invalid => Outcome::Invalid,
            OutcomeChoice::Failed => Outcome::Failed,
            OutcomeChoice::RateLimited => Outcome::RateLimited,
        }
    }
}

/// Recent commands and their outcomes, newest first.
#[poise::command(
    slash_command,
    default_member_permissions = "MANAGE_GUILD",
    custom_data = Gate::needs(Permission::AuditView)
)]
pub async fn audit(
    ctx: Context<'_>,
    #[description = "Only this member"] user: Option<serenity::User>,
    #[description = "Only this command, e.g. status or perms grant"]
    #[max_length = 32]
    command: Option<String>,
    #[description = "Only this outcome"] outcome: Option<OutcomeChoice>,
    #[description = "How many per page (1 to 25, default 10)"]
    #[min = 1]
    #[max = 25]
    limit: Option<u32>,
) -> Result<(), CommandError> {
    let invocation = invocation(ctx);
    let plane = &ctx.data().plane;
    let query = AuditQuery {
        actor_id: user.as_ref().map(|u| u.id.get().to_string()),
        command: command.clone(),
        outcome: outcome.map(Outcome::from),
        limit: limit.unwrap_or(10).clamp(1, 25),
        before: None,
    };
    let answer = plane.invoke(&invocation, || async {
        let page = plane.audit_page(&query).await?;
        Ok(render::audit_page(&query, &page)
            .unwrap_or_else(|| Reply::text("No audit entries match."))
            .ephemeral(true))
    });
    respond_in_time(ctx, true, answer).await
}
