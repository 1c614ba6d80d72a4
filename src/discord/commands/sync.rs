//! `/sync run|list|history`: Notion sync jobs. `run` defers, edits its reply with the run's
//! progress at most once a second, and ends with the summary (or the error and what to do).

use std::sync::Arc;
use std::time::Duration;

use poise::serenity_prelude as serenity;
use tokio::sync::watch;

use crate::access::Permission;
use crate::discord::commands::Gate;
use crate::discord::render::{self, Reply};
use crate::discord::{Context, invocation, respond, respond_in_time};
use crate::service::CommandError;
use crate::sync::Progress;

/// The least time between two progress edits of one reply.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Autocompletes sync job names, for members who may see them (`status.view`).
async fn job_names(ctx: Context<'_>, partial: &str) -> serenity::CreateAutocompleteResponse {
    let plane = &ctx.data().plane;
    let allowed = super::holds(ctx, Permission::StatusView);
    let choices = if allowed {
        plane.suggest_jobs(partial, 25)
    } else {
        Vec::new()
    };
    render::choices(choices)
}

/// Notion syncs: run a job, list them, see a job's runs.
#[poise::command(
    slash_command,
    subcommands("run", "list", "history"),
    subcommand_required
)]
pub async fn sync(_ctx: Context<'_>) -> Result<(), CommandError> {
    Ok(())
}

/// Run a sync job now and watch its progress.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::SyncRun))]
pub async fn run(
    ctx: Context<'_>,
    #[description = "The job"]
    #[autocomplete = "job_names"]
    #[max_length = 64]
    job: String,
    #[description = "Show what would change without writing anything"] dry_run: Option<bool>,
) -> Result<(), CommandError> {
    let poise::Context::Application(app) = ctx else {
        return Ok(());
    };
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let dry_run = dry_run.unwrap_or(false);
    ctx.defer().await?;
    // The deferred reply's link, told to anyone who triggers the job while it runs.
    let link = match app.interaction.get_response(ctx.http()).await {
        Ok(message) => Some(message.link()),
        Err(err) => {
            tracing::warn!(error = %err, "could not read the deferred /sync reply");
            None
        }
    };
    let (sender, receiver) = watch::channel(None::<Progress>);
    let editor = tokio::spawn(edit_progress(
        ctx.serenity_context().http.clone(),
        app.interaction.token.clone(),
        job.clone(),
        dry_run,
        receiver,
    ));
    let report = |progress: &Progress| {
        sender.send_replace(Some(progress.clone()));
    };
    let answer = plane
        .invoke(&invocation, || {
            plane.sync_run(&job, invocation.actor.clone(), dry_run, link, &report)
        })
        .await;
    drop(sender);
    // The last progress edit lands before the summary replaces it.
    let _ = editor.await;
    match answer {
        Ok(report) => {
            app.interaction
                .edit_response(ctx.http(), render::sync_report(&report).into_edit())
                .await?;
        }
        Err(CommandError::SyncFailed(report)) => {
            app.interaction
                .edit_response(ctx.http(), render::sync_report(&report).into_edit())
                .await?;
        }
        Err(err) => {
            // Refusals (no permission, unknown job, already running) are the member's alone.
            app.interaction.delete_response(ctx.http()).await?;
            app.interaction
                .create_followup(ctx.http(), Reply::error(&err).into_followup())
                .await?;
        }
    }
    Ok(())
}

/// Edits the deferred reply with the latest progress, at most once per [`PROGRESS_EVERY`],
/// until the run ends (the sender is dropped).
async fn edit_progress(
    http: Arc<serenity::Http>,
    token: String,
    job: String,
    dry_run: bool,
    mut receiver: watch::Receiver<Option<Progress>>,
) {
    let mut shown: Option<String> = None;
    while receiver.changed().await.is_ok() {
        let Some(progress) = receiver.borrow_and_update().clone() else {
            continue;
        };
        let text = render::sync_progress(&job, dry_run, &progress);
        if shown.as_deref() == Some(text.as_str()) {
            continue;
        }
        let edit = Reply::text(text.clone()).into_edit();
        if let Err(err) = http
            .edit_original_interaction_response(&token, &edit, Vec::new())
            .await
        {
            tracing::warn!(error = %err, "could not show a sync's progress");
        }
        shown = Some(text);
        // Discord allows about five edits per five seconds per message; one a second leaves
        // room for the summary. Later progress waits in the channel meanwhile.
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}

/// List the sync jobs with their schedule and last run.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::StatusView))]
pub async fn list(ctx: Context<'_>) -> Result<(), CommandError> {
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let answer = plane.invoke(&invocation, || async {
        Ok(render::sync_list(
            &plane.sync_list().await?,
            crate::model::now(),
        ))
    });
    respond_in_time(ctx, false, answer).await
}

/// Show a sync job's recent runs, newest first.
#[poise::command(slash_command, custom_data = Gate::needs(Permission::StatusView))]
pub async fn history(
    ctx: Context<'_>,
    #[description = "The job"]
    #[autocomplete = "job_names"]
    #[max_length = 64]
    job: String,
    #[description = "Which page (1 is the newest runs)"]
    #[min = 1]
    #[max = 1000]
    page: Option<u32>,
) -> Result<(), CommandError> {
    let plane = &ctx.data().plane;
    let invocation = invocation(ctx);
    let page = page.unwrap_or(1).max(1) as usize - 1;
    let answer = plane
        .invoke(&invocation, || async {
            Ok(render::sync_history(&plane.sync_history(&job, page).await?))
        })
        .await;
    respond(ctx, answer).await
}
