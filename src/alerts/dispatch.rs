//! The dispatcher: delivers outbox rows through a [`Courier`], oldest first, one notice's rows
//! in order, each marked done only once delivered.
//!
//! - A post records the message id, so later changes edit that message; an edit of a message
//!   deleted in Discord posts a fresh one and records it.
//! - A passing fault (429, 5xx, timeout) keeps the row and retries it later: after the
//!   receiver's `retry_after` when it gave one, else with full-jitter exponential backoff
//!   (500 ms doubling to 5 min). A global rate limit pauses every delivery. A fault that needs a
//!   human (unknown channel, missing access) is retried every 10 minutes and logged each time.
//! - A notice with no channel (no route and no default) is logged, not posted.
//! - Posts and replies carry the row id as an idempotency key, so a row retried after a crash
//!   between Discord's answer and our commit does not post twice (see [`Courier::post`]).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::notice::{Courier, DeliveryError, LogCourier, MessageRef};
use crate::store::alerts::{DeliveryKind, OutboxRow};
use crate::store::{Store, StoreError};

/// Rows fetched per round.
const ROUND: i64 = 100;
/// Longest wait between looks at the outbox when nothing wakes the dispatcher.
const IDLE: Duration = Duration::from_secs(30);
/// Retry delay for faults that need a human.
const PERMANENT_RETRY: Duration = Duration::from_secs(600);
/// Least time between two edits in one channel. Discord allows 5 message edits per 5 s per
/// channel; edits show a notice's current state, so spacing them loses nothing (the pending
/// ones coalesce) and a burst of 1,000 incidents costs a handful of edits, not a 429.
const EDIT_SPACING: Duration = Duration::from_millis(1200);

/// Delivers the outbox.
pub struct Dispatcher {
    store: Store,
    courier: Arc<dyn Courier>,
    /// Whether the courier can deliver notices that have no channel (a webhook can: it posts
    /// into its own channel).
    needs_channel: bool,
    wake: Arc<Notify>,
    delivered: tokio::sync::watch::Sender<u64>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// When each channel's last edit went out (see [`EDIT_SPACING`]).
    last_edit: std::sync::Mutex<std::collections::HashMap<u64, std::time::Instant>>,
}

impl Dispatcher {
    /// A dispatcher over `store` delivering through `courier`; `wake` is notified whenever rows
    /// are written (see [`super::Alerts::delivery_signal`]).
    pub fn new(
        store: Store,
        courier: Arc<dyn Courier>,
        needs_channel: bool,
        wake: Arc<Notify>,
        delivered: tokio::sync::watch::Sender<u64>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            courier,
            needs_channel,
            wake,
            delivered,
            metrics: None,
            last_edit: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Counts deliveries and the outbox's length in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Dispatcher {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, outcome: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.alert_deliveries.with_label_values(&[outcome]).inc();
        }
    }

    /// Delivers until `stop`.
    pub async fn run(&self, stop: CancellationToken) {
        loop {
            let wait = match self.deliver_due().await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::error!(error = %err, "alert dispatcher: storage failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Delivers every row due now; returns how long to wait before the next look.
    pub async fn deliver_due(&self) -> Result<Duration, StoreError> {
        loop {
            let rows = self.store.due_deliveries(Utc::now(), ROUND).await?;
            if rows.is_empty() {
                break;
            }
            let mut progressed = false;
            for row in rows {
                match self.deliver(&row).await? {
                    Outcome::Done => progressed = true,
                    Outcome::Later => {}
                    Outcome::PauseAll(wait) => return Ok(wait),
                }
            }
            if !progressed {
                break;
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics
                .alert_outbox_pending
                .set(self.store.pending_deliveries().await?);
        }
        Ok(match self.store.next_delivery_at().await? {
            Some(at) => (at - Utc::now()).to_std().unwrap_or_default().min(IDLE),
            None => IDLE,
        })
    }

    async fn deliver(&self, row: &OutboxRow) -> Result<Outcome, StoreError> {
        let (target, snapshot) = match (
            self.store.notice_target(row.notice).await?,
            self.store.delivery_snapshot(row.notice).await?,
        ) {
            (Some(target), Some(snapshot)) => (target, snapshot),
            _ => {
                tracing::error!(
                    notice = row.notice,
                    "alert outbox row for a missing notice; dropped"
                );
                self.store
                    .delivery_done(row, None, Utc::now(), row.id)
                    .await?;
                return Ok(Outcome::Done);
            }
        };
        // `shown`: the newest outbox row this view includes; edits up to it are delivered with it.
        let (view, shown) = snapshot;
        if let (DeliveryKind::Edit, Some(message)) = (row.kind, target.message) {
            let since = self
                .last_edit
                .lock()
                .expect("edit clock")
                .get(&message.channel.0)
                .map(std::time::Instant::elapsed);
            if let Some(since) = since.filter(|since| *since < EDIT_SPACING) {
                let wait = chrono::Duration::from_std(EDIT_SPACING - since).unwrap_or_default();
                self.store.postpone(row, Utc::now() + wait).await?;
                return Ok(Outcome::Later);
            }
        }
        let log = LogCourier;
        let courier: &dyn Courier = if self.needs_channel && target.channel.is_none() {
            &log
        } else {
            self.courier.as_ref()
        };
        let channel = target.channel.unwrap_or(crate::config::Snowflake(0));
        let key = format!("pb-{}", row.id);
        let result: Result<Option<MessageRef>, DeliveryError> = match (row.kind, target.message) {
            // Posted already (a retried post, or an edit after the post): show the current state.
            (DeliveryKind::Post | DeliveryKind::Edit, Some(message)) => {
                match courier.edit(message, &view).await {
                    Err(DeliveryError::MessageGone) => {
                        tracing::warn!(
                            notice = row.notice,
                            "alert message was deleted in Discord; posting it again"
                        );
                        self.store.forget_message(row.notice).await?;
                        courier
                            .post(channel, &view, &target.mention, &key)
                            .await
                            .map(Some)
                    }
                    other => {
                        self.last_edit
                            .lock()
                            .expect("edit clock")
                            .insert(message.channel.0, std::time::Instant::now());
                        other.map(|()| None)
                    }
                }
            }
            (DeliveryKind::Post | DeliveryKind::Edit, None) => courier
                .post(channel, &view, &row.mention, &key)
                .await
                .map(Some),
            (DeliveryKind::Reply, Some(message)) => courier
                .reply(
                    message,
                    row.text.as_deref().unwrap_or_default(),
                    &row.mention,
                    &key,
                )
                .await
                .map(|_| None),
            // A reply whose message was never posted: post the notice first (it shows the
            // current state), the reply follows on the next round.
            (DeliveryKind::Reply, None) => {
                match courier
                    .post(channel, &view, &target.mention, &format!("pb-{}-n", row.id))
                    .await
                {
                    Ok(message) => {
                        self.store.set_message(row.notice, message).await?;
                        return Ok(Outcome::Done);
                    }
                    Err(err) => Err(err),
                }
            }
        };
        match result {
            Ok(message) => {
                self.store
                    .delivery_done(row, message, Utc::now(), shown)
                    .await?;
                // Counted before waiters wake, so what they read is current.
                self.count("delivered");
                self.delivered.send_modify(|count| *count += 1);
                Ok(Outcome::Done)
            }
            Err(DeliveryError::Retry {
                after,
                global,
                kind,
                message,
            }) => {
                self.count("retry");
                let wait = after.unwrap_or_else(|| backoff(row.attempts));
                tracing::warn!(notice = row.notice, outbox = row.id, kind, error = %message, retry_in_ms = wait.as_millis() as u64, "alert delivery failed; will retry");
                self.store
                    .delivery_failed(
                        row,
                        Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                        &format!("{kind}: {message}"),
                    )
                    .await?;
                Ok(if global || kind == "rate_limited" {
                    // Honour the wait everywhere: the next request on any route would only
                    // meet the same limit (and a 429 storm gets the bot banned).
                    Outcome::PauseAll(wait)
                } else {
                    Outcome::Later
                })
            }
            Err(DeliveryError::Permanent { kind, message }) => {
                self.count("refused");
                tracing::error!(notice = row.notice, outbox = row.id, kind, error = %message, "alert delivery refused; fix the channel or the bot's permissions (retrying every 10 minutes)");
                self.store
                    .delivery_failed(
                        row,
                        Utc::now()
                            + chrono::Duration::from_std(PERMANENT_RETRY).unwrap_or_default(),
                        &format!("{kind}: {message}"),
                    )
                    .await?;
                Ok(Outcome::Later)
            }
            Err(DeliveryError::MessageGone) => {
                // A reply to a deleted message: forget it, so the next round posts the notice.
                self.store.forget_message(row.notice).await?;
                self.store
                    .delivery_failed(row, Utc::now(), "message gone")
                    .await?;
                Ok(Outcome::Later)
            }
        }
    }
}

enum Outcome {
    Done,
    Later,
    PauseAll(Duration),
}

/// Full-jitter exponential backoff: uniform in [0, min(5 min, 500 ms × 2^attempts)], at least
/// 100 ms.
fn backoff(attempts: i64) -> Duration {
    let cap = Duration::from_millis(500)
        .saturating_mul(1u32 << attempts.clamp(0, 20) as u32)
        .min(Duration::from_secs(300));
    cap.mul_f64(rand::random::<f64>())
        .max(Duration::from_millis(100))
}
