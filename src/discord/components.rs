//! Buttons: the overview's pages, "Re-check now" under a detail, and the audit log's older
//! pages. A button carries everything it needs in its `custom_id` (`pb:...`), so it keeps
//! working after a restart and no state is held per message. Every press goes through
//! [`ControlPlane::invoke`](crate::service::ControlPlane::invoke) like a command: rate limit,
//! permission, audit entry.

use std::time::Instant;

use poise::serenity_prelude as serenity;

use super::render::{self, Reply};
use super::{DEFER_AFTER, Data, member_of, snowflake};
use crate::access::Permission;
use crate::audit::{Actor, AuditQuery, InvocationOption, Outcome};
use crate::model::shorten;
use crate::service::{CommandError, Invocation};

/// What a button asks for, decoded from its `custom_id`.
#[derive(Debug, Clone, PartialEq)]
enum Press {
    /// A page of the `/status` overview.
    StatusPage(usize),
    /// A check of this integration now.
    Recheck(String),
    /// An older page of `/audit`.
    AuditPage(AuditQuery),
    /// Acknowledge an alert (its notice id).
    AlertAck(i64),
    /// Silence an alert's integrations for an hour.
    AlertSilence(i64),
    /// Check an alert's integrations now.
    AlertRecheck(i64),
}

/// The `custom_id` of an audit page button: the query's filters and cursor. Discord allows
/// 100 characters; the command filter is at most 32 (the option's `max_length`), which keeps
/// the worst case at 98.
pub(super) fn audit_page_id(query: &AuditQuery) -> String {
    format!(
        "pb:audit:{}:{}:{}:{}:{}",
        query.before.unwrap_or(0),
        query.limit,
        query.outcome.map_or("-", Outcome::as_str),
        query.actor_id.as_deref().unwrap_or("-"),
        query.command.as_deref().unwrap_or_default(),
    )
}

impl Press {
    fn parse(custom_id: &str) -> Option<Press> {
        let rest = custom_id.strip_prefix("pb:")?;
        if let Some(page) = rest.strip_prefix("status:page:") {
            let page = page.split(':').next()?.parse().ok()?;
            return Some(Press::StatusPage(page));
        }
        if let Some(name) = rest.strip_prefix("status:recheck:") {
            return Some(Press::Recheck(name.to_string()));
        }
        if let Some(alert) = rest.strip_prefix("alert:") {
            let (action, notice) = alert.split_once(':')?;
            let notice: i64 = notice.parse().ok()?;
            return match action {
                "ack" => Some(Press::AlertAck(notice)),
                "silence" => Some(Press::AlertSilence(notice)),
                "recheck" => Some(Press::AlertRecheck(notice)),
                _ => None,
            };
        }
        if let Some(query) = rest.strip_prefix("audit:") {
            let mut parts = query.splitn(5, ':');
            let before: i64 = parts.next()?.parse().ok()?;
            let limit: u32 = parts.next()?.parse().ok()?;
            let outcome = match parts.next()? {
                "-" => None,
                outcome => Some(outcome.parse().ok()?),
            };
            let actor_id = match parts.next()? {
                "-" => None,
                actor => Some(actor.to_string()),
            };
            let command = Some(parts.next()?.to_string()).filter(|c| !c.is_empty());
            return Some(Press::AuditPage(AuditQuery {
                actor_id,
                command,
                outcome,
                limit: limit.clamp(1, 25),
                before: Some(before),
            }));
        }
        None
    }

    /// The audit log's name for this press, and its options.
    fn command(&self) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            Press::StatusPage(page) => ("status page", vec![("page", (page + 1).to_string())]),
            Press::Recheck(name) => ("status recheck", vec![("integration", name.clone())]),
            Press::AlertAck(notice) => ("alerts ack", vec![("incident", notice.to_string())]),
            Press::AlertSilence(notice) => (
                "alerts silence",
                vec![("incident", notice.to_string()), ("duration", "1h".into())],
            ),
            Press::AlertRecheck(notice) => {
                ("alerts recheck", vec![("incident", notice.to_string())])
            }
            Press::AuditPage(query) => (
                "audit page",
                [
                    ("user", query.actor_id.clone()),
                    ("command", query.command.clone()),
                    ("outcome", query.outcome.map(|o| o.as_str().to_string())),
                ]
                .into_iter()
                .filter_map(|(name, value)| value.map(|value| (name, value)))
                .collect(),
            ),
        }
    }
}

/// The poise event handler: routes button presses; every other event is serenity's business.
pub(super) async fn on_event(
    ctx: &serenity::Context,
    event: &serenity::FullEvent,
    data: &Data,
) -> Result<(), CommandError> {
    if let serenity::FullEvent::InteractionCreate {
        interaction: serenity::Interaction::Component(press),
    } = event
    {
        handle(ctx, press, data).await;
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
    let (command, options) = what.command();
    let invocation = Invocation {
        member: member_of(
            &ctx.cache,
            press.guild_id,
            &press.user,
            press.member.as_ref(),
        ),
        actor: Actor::Discord {
            user: snowflake(press.user.id),
            name: press.user.name.clone(),
        },
        channel: Some(snowflake(press.channel_id)),
        command: command.to_string(),
        options: options
            .into_iter()
            .map(|(name, value)| InvocationOption {
                name: name.to_string(),
                value,
                secret: false,
            })
            .collect(),
        received,
    };
    let plane = &data.plane;
    match what {
        Press::StatusPage(page) => {
            let answer = plane.invoke(&invocation, Permission::StatusView, || async {
                Ok(render::overview(
                    &plane
                        .overview_page(page, render::ROWS_PER_PAGE, crate::model::now())
                        .await?,
                ))
            });
            update_in_time(ctx, press, answer).await;
        }
        Press::Recheck(name) => {
            let answer = plane.invoke(&invocation, Permission::StatusRecheck, || async {
                let detail = plane.recheck(&name).await?;
                Ok(Reply::embed(render::detail(&detail))
                    .components(vec![render::recheck_button(&name)]))
            });
            update_in_time(ctx, press, answer).await;
        }
        Press::AlertAck(notice) => {
            let answer = plane.invoke(&invocation, Permission::AlertsManage, || async {
                plane.acknowledge(notice, &invocation.actor).await
            });
            reply_in_time(ctx, press, answer).await;
        }
        Press::AlertSilence(notice) => {
            let answer = plane.invoke(&invocation, Permission::AlertsManage, || async {
                plane.silence_notice(notice, &invocation.actor).await
            });
            reply_in_time(ctx, press, answer).await;
        }
        Press::AlertRecheck(notice) => {
            let answer = plane.invoke(&invocation, Permission::StatusRecheck, || async {
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
                Ok(format!(
                    "🔄 Checked now: {}. The alert updates itself if the state changed.",
                    lines.join("; ")
                ))
            });
            reply_in_time(ctx, press, answer).await;
        }
        Press::AuditPage(query) => {
            let answer = plane.invoke(&invocation, Permission::AuditView, || async {
                let page = plane.audit_page(&query).await?;
                render::audit_page(&query, &page).ok_or_else(|| {
                    CommandError::Invalid(
                        "there are no older entries any more: run /audit again".into(),
                    )
                })
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
    answer: impl std::future::Future<Output = Result<String, CommandError>>,
) {
    let reply = |result: Result<String, CommandError>| match result {
        Ok(text) => Reply::text(text).ephemeral(true),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip_within_discords_limit() {
        assert_eq!(
            Press::parse("pb:status:page:3:next"),
            Some(Press::StatusPage(3))
        );
        assert_eq!(
            Press::parse("pb:status:recheck:payments-api"),
            Some(Press::Recheck("payments-api".into()))
        );
        let widest = AuditQuery {
            actor_id: Some(u64::MAX.to_string()),
            command: Some("c".repeat(32)),
            outcome: Some(Outcome::RateLimited),
            limit: 25,
            before: Some(i64::MAX),
        };
        let id = audit_page_id(&widest);
        assert!(id.len() <= 100, "{} characters: {id}", id.len());
        assert_eq!(Press::parse(&id), Some(Press::AuditPage(widest)));
        let plain = AuditQuery {
            limit: 10,
            before: Some(42),
            ..AuditQuery::default()
        };
        assert_eq!(
            Press::parse(&audit_page_id(&plain)),
            Some(Press::AuditPage(plain))
        );
        assert_eq!(Press::parse("pb:alert:ack:12"), Some(Press::AlertAck(12)));
        assert_eq!(
            Press::parse("pb:alert:silence:3"),
            Some(Press::AlertSilence(3))
        );
        assert_eq!(
            Press::parse("pb:alert:recheck:4"),
            Some(Press::AlertRecheck(4))
        );
        assert_eq!(Press::parse("pb:alert:nuke:4"), None);
        assert_eq!(Press::parse("pb:status:page:x"), None);
        assert_eq!(Press::parse("other:thing"), None);
    }
}
