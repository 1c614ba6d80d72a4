//! Buttons: the overview's pages, "Re-check now" under a detail, and the audit log's older
//! pages. A button carries everything it needs in its `custom_id` (`pb:...`), so it keeps
//! working after a restart and no state is held per message. Every press goes through
//! [`ControlPlane::invoke`](crate::service::ControlPlane::invoke) like a command: rate limit,
//! permission, audit entry.

use std::time::Instant;

use poise::serenity_prelude as serenity;

use super::commands::Gate;
use super::commands::action;
use super::custom_id::Press;
use super::render::{self, Reply};
use super::{DEFER_AFTER, Data, member_of, snowflake};
use crate::access::{Caller, Permission};
use crate::audit::{InvocationOption, OptionValue};
use crate::model::{Actor, shorten};
use crate::service::{CommandError, Invalid, Invocation};

/// What a press runs as: the audit log's name, the permission, and the options.
struct Pressed {
    command: &'static str,
    permission: Option<Permission>,
    options: Vec<InvocationOption>,
}

impl Press {
    /// What this press runs as. A button that repeats a command (a page of `/status`,
    /// acknowledging, silencing, a page of `/audit`) asks for that command's permission, read
    /// from the command's own [`Gate`]; the re-check buttons have no command and ask for
    /// `status.recheck`.
    fn pressed(&self) -> Pressed {
        let text =
            |name: &str, value: String| InvocationOption::new(name, OptionValue::Text(value));
        let number =
            |name: &str, value: i64| InvocationOption::new(name, OptionValue::Integer(value));
        let gate = |command: &str| Gate::named(command).permission;
        let (command, permission, options) = match self {
            Press::StatusPage(page, _) => (
                "status page",
                gate("status"),
                vec![number("page", *page as i64 + 1)],
            ),
            Press::Recheck(name, _) => (
                "status recheck",
                Some(Permission::StatusRecheck),
                vec![text("integration", name.clone())],
            ),
            Press::AlertAck(notice) => (
                "alerts ack",
                gate("alerts ack"),
                vec![number("incident", *notice)],
            ),
            Press::AlertSilence(notice) => (
                "alerts silence",
                gate("alerts silence"),
                vec![number("incident", *notice), text("duration", "1h".into())],
            ),
            Press::AlertRecheck(notice) => (
                "alerts recheck",
                Some(Permission::StatusRecheck),
                vec![number("incident", *notice)],
            ),
            Press::ActionConfirm(request) => (
                "action confirm",
                gate("action run"),
                vec![text("request", request.clone())],
            ),
            Press::ActionCancel(request) => (
                "action cancel",
                gate("action run"),
                vec![text("request", request.clone())],
            ),
            Press::ActionApprove(request) => (
                "action approve",
                Some(Permission::ActionApprove),
                vec![text("request", request.clone())],
            ),
            Press::ActionReject(request) => (
                "action reject",
                Some(Permission::ActionApprove),
                vec![text("request", request.clone())],
            ),
            Press::ActionForm(action) => (
                "action run",
                gate("action run"),
                vec![text("name", action.clone())],
            ),
            Press::AuditPage(query) => (
                "audit page",
                gate("audit"),
                [
                    ("user", query.actor_id.clone()),
                    ("command", query.command.clone()),
                    ("outcome", query.outcome.map(|o| o.as_str().to_string())),
                ]
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| text(name, value)))
                .collect(),
            ),
        };
        Pressed {
            command,
            permission,
            options,
        }
    }
}

/// The poise event handler: routes button presses; every other event is serenity's business.
pub(super) async fn on_event(
    ctx: &serenity::Context,
    event: &serenity::FullEvent,
    data: &Data,
) -> Result<(), CommandError> {
    match event {
        serenity::FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Component(press),
        } => handle(ctx, press, data).await,
        serenity::FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Modal(form),
        } => {
            if let Some(Press::ActionForm(action)) = Press::parse(&form.data.custom_id) {
                let invocation = action::form_invocation(&ctx.cache, form, &action);
                action::on_form(&ctx.http, &data.plane, form, action, invocation).await;
            } else {
                tracing::warn!(custom_id = %form.data.custom_id, "a form patchbay does not know was submitted");
            }
        }
        _ => {}
    }
    Ok(())
}

async fn handle(ctx: &serenity::Context, press: &serenity::ComponentInteraction, data: &Data) {
    let received = Instant::now();
    let Some(what) = Press::parse(&press.data.custom_id) else {
        // Not ours, or from an older release: say so rather than leave the click spinning.
        let reply = serenity::CreateInteractionResponse::Message(
            Reply::text("⚠️ This button is no longer supported: run the command again.")
                .ephemeral(true)
                .into_response(),
        );
        if let Err(err) = press.create_response(&ctx.http, reply).await {
            tracing::warn!(error = %err, "could not answer an unknown button");
        }
        return;
    };
    let pressed = what.pressed();
    let invocation = Invocation {
        actor: Actor::Discord {
            user: snowflake(press.user.id),
            name: press.user.name.clone(),
        },
        caller: Caller::Member(member_of(
            &ctx.cache,
            press.guild_id,
            &press.user,
            press.member.as_ref(),
        )),
        channel: Some(snowflake(press.channel_id)),
        command: pressed.command.to_string(),
        permission: pressed.permission,
        options: pressed.options,
        received,
    };
    let plane = &data.plane;
    match what {
        Press::StatusPage(page, _) => {
            let answer = plane.invoke(&invocation, || async {
                Ok(render::overview(
                    &plane
                        .overview_page(page, render::ROWS_PER_PAGE, crate::model::now())
                        .await?,
                ))
            });
            update_in_time(ctx, press, answer).await;
        }
        Press::Recheck(name, period) => {
            let answer = plane.invoke(&invocation, || async {
                let detail = plane.recheck(&name).await?;
                // The chart is drawn again, with the fresh check in it, over the period the
                // message showed.
                let chart = plane.status_chart(&name, period).await;
                Ok(render::detail_with_chart(&detail, period, chart))
            });
            update_in_time(ctx, press, answer).await;
        }
        Press::AlertAck(notice) => {
            let answer = plane.invoke(&invocation, || async {
                Ok(render::acked(
                    plane.acknowledge(notice, &invocation.actor).await?,
                ))
            });
            reply_in_time(ctx, press, answer).await;
        }
        Press::AlertSilence(notice) => {
            let answer = plane.invoke(&invocation, || async {
                Ok(render::notice_silenced(
                    &plane.silence_notice(notice, &invocation.actor).await?,
                ))
            });
            reply_in_time(ctx, press, answer).await;
        }
        Press::AlertRecheck(notice) => {
            let answer = plane.invoke(&invocation, || async {
                let mut lines = Vec::new();
                for name in plane.notice_integrations(notice).await? {
                    let detail = plane.recheck(&name).await?;
                    let row = &detail.row;
                    lines.push(match &row.last_error {
                        Some(error) => {
                            format!("{name}: {} ({})", row.state, shorten(error, 200))
                        }
                        None => format!("{name}: {}", row.state),
                    });
                }
                Ok(Reply::text(format!(
                    "🔄 Checked now: {}. The alert updates itself if the state changed.",
                    lines.join("; ")
                )))
            });
            reply_in_time(ctx, press, answer).await;
        }
        Press::ActionConfirm(_)
        | Press::ActionCancel(_)
        | Press::ActionApprove(_)
        | Press::ActionReject(_)
        | Press::ActionForm(_) => {
            action::on_press(&ctx.http, plane, press, what, &invocation).await;
        }
        Press::AuditPage(query) => {
            let answer = plane.invoke(&invocation, || async {
                let page = plane.audit_page(&query).await?;
                render::audit_page(&query, &page).ok_or_else(|| Invalid::NoOlderEntries.into())
            });
            update_in_time(ctx, press, answer).await;
        }
    }
}

/// Updates the pressed message with `answer` (its new look: embed and buttons), or answers an
/// error ephemerally. As with commands, an answer slower than [`DEFER_AFTER`] is deferred first
/// (the message shows a loading state) and then edited in place.
async fn update_in_time(
    ctx: &serenity::Context,
    press: &serenity::ComponentInteraction,
    answer: impl std::future::Future<Output = Result<Reply, CommandError>>,
) {
    let mut answer = std::pin::pin!(answer);
    let sent = tokio::select! {
        result = &mut answer => match result {
            Ok(view) => {
                let update =
                    serenity::CreateInteractionResponse::UpdateMessage(view.into_response());
                press.create_response(&ctx.http, update).await
            }
            Err(err) => {
                let reply =
                    serenity::CreateInteractionResponse::Message(Reply::error(&err).into_response());
                press.create_response(&ctx.http, reply).await
            }
        },
        () = tokio::time::sleep(DEFER_AFTER) => {
            if let Err(err) = press.defer(&ctx.http).await {
                tracing::warn!(error = %err, "could not defer a button press");
                return;
            }
            match answer.await {
                Ok(view) => press.edit_response(&ctx.http, view.into_edit()).await.map(|_| ()),
                Err(err) => {
                    let message = Reply::error(&err).into_followup();
                    press.create_followup(&ctx.http, message).await.map(|_| ())
                }
            }
        }
    };
    if let Err(err) = sent {
        tracing::warn!(error = %err, custom_id = %press.data.custom_id, "could not answer a button press");
    }
}

/// Answers a press with an ephemeral message (the pressed message is left to the outbox, which
/// edits it), deferring first when the answer is slow.
async fn reply_in_time(
    ctx: &serenity::Context,
    press: &serenity::ComponentInteraction,
    answer: impl std::future::Future<Output = Result<Reply, CommandError>>,
) {
    let reply = |result: Result<Reply, CommandError>| match result {
        Ok(reply) => reply.ephemeral(true),
        Err(err) => Reply::error(&err),
    };
    let mut answer = std::pin::pin!(answer);
    let sent = tokio::select! {
        result = &mut answer => {
            let reply = serenity::CreateInteractionResponse::Message(reply(result).into_response());
            press.create_response(&ctx.http, reply).await
        }
        () = tokio::time::sleep(DEFER_AFTER) => {
            let defer = serenity::CreateInteractionResponse::Defer(
                serenity::CreateInteractionResponseMessage::new().ephemeral(true),
            );
            if let Err(err) = press.create_response(&ctx.http, defer).await {
                tracing::warn!(error = %err, "could not defer a button press");
                return;
            }
            let edit = reply(answer.await).into_edit();
            press.edit_response(&ctx.http, edit).await.map(|_| ())
        }
    };
    if let Err(err) = sent {
        tracing::warn!(error = %err, custom_id = %press.data.custom_id, "could not answer a button press");
    }
}
