//! What an alert message shows, and the one interface that delivers it.
//!
//! A *notice* is one message in a channel. It covers one incident, or several that opened
//! together on the same route (a burst). The dispatcher renders a notice's current
//! [`NoticeView`] at delivery time, so an edit always shows the latest state and delivering
//! the same edit twice is harmless.
//!
//! [`Courier`] is implemented by the Discord front (`src/discord/courier.rs`: the bot's REST
//! API, or a webhook) and by [`LogCourier`] when there is neither a token nor a webhook. The
//! domain never sees Discord types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::model::notice::{MessageRef, NoticeView, ReplyKind};
use crate::model::{Severity, Snowflake};

/// A message a post created, and whether it shows what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posted {
    /// Where the message is.
    pub message: MessageRef,
    /// False when the receiver answered with a message an earlier attempt created (a post
    /// retried with the same key after its answer was lost) that shows something other than the
    /// view just sent: an older rendering. The message then needs an edit to show the notice as
    /// it is, and the pending edits must not be taken as delivered with the post.
    pub shows_view: bool,
}

/// Why a delivery did not happen. The dispatcher keeps the row and tries again; nothing is
/// dropped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeliveryError {
    /// The message to edit or reply to no longer exists (deleted in Discord): post a fresh one
    /// and record its id.
    #[error("the message no longer exists")]
    MessageGone,
    /// Not sent: the receiver said to keep out of this route for a while (a 429 on it, or a
    /// global one), or its circuit breaker is open. Not an attempt; try again after `after`.
    #[error("held back for {after:?} ({kind})")]
    Held {
        /// How long until the route may be used again.
        after: Duration,
        /// Why (`rate_limited`, `circuit_open`).
        kind: &'static str,
    },
    /// A passing fault (rate limit, timeout, 5xx, a dropped connection, an answer cut short or
    /// garbled): try again, after `after` when the receiver said how long.
    #[error("{kind}: {message}")]
    Retry {
        /// How long the receiver asked us to wait (a 429's `retry_after`).
        after: Option<Duration>,
        /// The error class (`rate_limited`, `timeout`, `server`, `connect`, `bad_response`).
        kind: &'static str,
        /// What happened, without secrets.
        message: String,
        /// Whether the request may have taken effect although no answer said so, with nothing
        /// to make a retry harmless (a webhook post: webhooks take no idempotency key). A retry
        /// may then say the same thing twice; the dispatcher counts and logs it as ambiguous.
        ambiguous: bool,
    },
    /// An explicit refusal that needs a human (unknown channel, missing access, a body the
    /// receiver rejected with its reason): the row is kept and retried slowly, and every
    /// attempt logs an error.
    #[error("{kind}: {message}")]
    Permanent {
        /// The error class (`auth`, `client`).
        kind: &'static str,
        /// What happened, without secrets.
        message: String,
    },
}

/// Delivers notices. Every method is one attempt; the dispatcher owns retries, order and
/// durability.
pub trait Courier: Send + Sync + 'static {
    /// Posts a new message showing `view` in `channel`, mentioning `mention` (role ids). `key`
    /// is unique per outbox row and installation (at most 25 characters): where the transport
    /// supports it, a post retried with the same key after a lost answer or a crash returns the
    /// first message instead of posting twice, and [`Posted::shows_view`] says whether that
    /// message shows `view`.
    fn post<'a>(
        &'a self,
        channel: Snowflake,
        view: &'a NoticeView,
        mention: &'a [Snowflake],
        key: &'a str,
    ) -> BoxFuture<'a, Result<Posted, DeliveryError>>;

    /// Edits `message` to show `view`. [`DeliveryError::MessageGone`] when it was deleted.
    fn edit<'a>(
        &'a self,
        message: MessageRef,
        view: &'a NoticeView,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// Posts `note` as a reply to `to` (a reminder, "resolved after 12m"), rendered the
    /// courier's own way, mentioning `mention`. `key` as for [`Courier::post`]. Replying to a
    /// deleted message posts without the reference rather than failing.
    fn reply<'a>(
        &'a self,
        to: MessageRef,
        note: ReplyNote<'a>,
        mention: &'a [Snowflake],
        key: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, DeliveryError>>;
}

/// A reply to deliver: what it says, about the notice as it is now, and when it was queued
/// (a reminder says how long the notice had been open then).
#[derive(Debug, Clone, Copy)]
pub struct ReplyNote<'a> {
    /// What it says.
    pub kind: ReplyKind,
    /// The notice as it is now.
    pub view: &'a NoticeView,
    /// When the reply was queued.
    pub queued_at: DateTime<Utc>,
}

impl ReplyNote<'_> {
    /// How long the notice lasted: until it resolved, or until the reply was queued.
    pub fn lasted(&self) -> Duration {
        self.view.resolved_after.unwrap_or_else(|| {
            (self.queued_at - self.view.opened_at)
                .to_std()
                .unwrap_or_default()
        })
    }

    /// The integrations still open in the notice.
    pub fn open(&self) -> Vec<&str> {
        self.view
            .incidents
            .iter()
            .filter(|i| i.resolved_at.is_none())
            .map(|i| i.integration.as_str())
            .collect()
    }

    /// The reply in plain words, for the log: `Resolved after 12m`, `Still down after 1h:
    /// payments-api`, `Stable again`.
    pub fn describe(&self) -> String {
        match self.kind {
            ReplyKind::Resolved => {
                format!("Resolved after {}", crate::duration::human(self.lasted()))
            }
            ReplyKind::Reminder => format!(
                "Still {} after {}: {}",
                if self.view.severity == Severity::Critical {
                    "down"
                } else {
                    "degraded"
                },
                crate::duration::human(self.lasted()),
                self.open().join(", ")
            ),
            ReplyKind::StableAgain => "Stable again".into(),
        }
    }
}

/// The courier of a headless bot (no token, no webhook): every notification is one structured
/// log line on the `patchbay::alert` target, and counts as delivered.
#[derive(Debug, Default)]
pub struct LogCourier;

impl LogCourier {
    fn log(what: &str, view: Option<&NoticeView>, text: Option<&str>, message: Snowflake) {
        let integrations = view
            .map(|v| {
                v.incidents
                    .iter()
                    .map(|i| format!("{}={}", i.integration, i.state))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        tracing::info!(
            target: "patchbay::alert",
            notification = what,
            notice = message.0,
            severity = view.map(|v| v.severity.as_str()).unwrap_or_default(),
            status = view.map(|v| v.status.as_str()).unwrap_or_default(),
            integrations,
            text = text.unwrap_or_default(),
            "alert notification"
        );
    }
}

impl Courier for LogCourier {
    fn post<'a>(
        &'a self,
        channel: Snowflake,
        view: &'a NoticeView,
        _mention: &'a [Snowflake],
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Posted, DeliveryError>> {
        // The notice id stands in for a message id, so edits and replies log against it.
        let message = Snowflake(view.notice as u64);
        Self::log("post", Some(view), None, message);
        Box::pin(async move {
            Ok(Posted {
                message: MessageRef { channel, message },
                shows_view: true,
            })
        })
    }

    fn edit<'a>(
        &'a self,
        message: MessageRef,
        view: &'a NoticeView,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Self::log("edit", Some(view), None, message.message);
        Box::pin(async { Ok(()) })
    }

    fn reply<'a>(
        &'a self,
        to: MessageRef,
        note: ReplyNote<'a>,
        _mention: &'a [Snowflake],
        _key: &'a str,
    ) -> BoxFuture<'a, Result<MessageRef, DeliveryError>> {
        Self::log("reply", Some(note.view), Some(&note.describe()), to.message);
        Box::pin(async move { Ok(to) })
    }
}
