//! The dispatcher: delivers outbox rows through a [`Courier`], oldest first, one notice's rows
//! in order, each marked done only once delivered.
//!
//! - **Concurrently, in order per notice.** Up to [`IN_FLIGHT`] notices are delivered at once,
//!   at most [`IN_FLIGHT_PER_CHANNEL`] per channel, one row of a notice at a time. A request
//!   that hangs until the courier's timeout holds back its own notice only: other notices, and
//!   other channels, go on.
//! - A post records the message id, so later changes edit that message; an edit of a message
//!   deleted in Discord posts a fresh one and records it. A post answered with a message an
//!   earlier attempt created, showing an older state ([`Posted::shows_view`]), completes no
//!   pending edit and queues one, so the message always ends up showing the notice as it is.
//! - A passing fault (429, 5xx, timeout, a dropped or cut answer) keeps the row and retries it
//!   later: after the receiver's `retry_after` when it gave one, else with full-jitter
//!   exponential backoff (500 ms doubling to 5 min). A rate limit holds back only the route it
//!   was met on (the courier keeps the holds; a held row waits without counting an attempt),
//!   everything when it is global. An explicit refusal that needs a human (unknown channel,
//!   missing access) is retried every 10 minutes and logged each time.
//! - Edits in one channel are spaced [`EDIT_SPACING`] apart; pending edits coalesce meanwhile.
//! - A notice with no channel (no route and no default) is logged, not posted.
//! - Posts and replies carry an idempotency key unique to the row and the installation, so a
//!   row retried after a lost answer or a crash does not post twice (see [`Courier::post`]);
//!   a transport without keys (a webhook) reports such a retry as ambiguous, and it is counted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::notice::{Courier, DeliveryError, LogCourier, Posted, ReplyNote};
use crate::model::Snowflake;
use crate::model::notice::{MessageRef, ReplyKind};
use crate::resilience::RetryPolicy;
use crate::store::alerts::{DeliveryKind, DueFilter, OutboxRow};
use crate::store::{Store, StoreError};

/// Rows fetched per look at the outbox.
const ROUND: i64 = 100;
/// Notices delivered at once. Discord answers in tens of milliseconds; this many in flight keep
/// a burst moving while one request hangs.
pub const IN_FLIGHT: usize = 8;
/// Notices delivered at once in one channel, so that a channel whose requests hang takes at
/// most half of [`IN_FLIGHT`]. Discord allows 5 posts per 5 s per channel anyway.
pub const IN_FLIGHT_PER_CHANNEL: usize = 4;
/// How long deliveries in flight may take to finish at shutdown. Less than the 10 s the process
/// gives each part to stop, so a hanging request never holds the shutdown up.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Longest wait between looks at the outbox when nothing wakes the dispatcher.
const IDLE: Duration = Duration::from_secs(30);
/// Retry delay for refusals that need a human.
const PERMANENT_RETRY: Duration = Duration::from_secs(600);
/// Least time between two edits in one channel. Discord allows 5 message edits per 5 s per
/// channel; edits show a notice's current state, so spacing them loses nothing (the pending
/// ones coalesce) and a burst of 1,000 incidents costs a handful of edits, not a 429.
pub const EDIT_SPACING: Duration = Duration::from_millis(1200);
/// Backoff between attempts of a row after a passing fault: full jitter, 500 ms doubling to
/// 5 minutes, never giving up (the outbox keeps the row).
const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: u32::MAX,
    base_delay: Duration::from_millis(500),
    max_delay: Duration::from_secs(300),
};
/// The least wait before retrying a row, so that a zero draw of the jitter is no busy loop.
const MIN_RETRY: Duration = Duration::from_millis(100);

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
    /// When each channel's last edit started (see [`EDIT_SPACING`]).
    last_edit: Mutex<HashMap<i64, Instant>>,
    /// This installation's token, read from the store when the dispatcher starts; part of
    /// every delivery key.
    installation: OnceLock<String>,
}

/// What a delivery that went through did to the message.
struct Sent {
    /// The message a post created (or met), to record.
    message: Option<MessageRef>,
    /// Whether the message now shows the view that was sent (false: a post met an older
    /// rendering).
    shows_view: bool,
}

impl Sent {
    fn posted(posted: Posted) -> Sent {
        Sent {
            message: Some(posted.message),
            shows_view: posted.shows_view,
        }
    }

    fn shown() -> Sent {
        Sent {
            message: None,
            shows_view: true,
        }
    }
}

/// The deliveries in flight: which notices, and how many per channel.
#[derive(Default)]
struct Flights {
    tasks: JoinSet<(i64, i64, Result<(), StoreError>)>,
    notices: HashSet<i64>,
    per_channel: HashMap<i64, usize>,
}

impl Flights {
    fn finished(&mut self, notice: i64, channel: i64) {
        self.notices.remove(&notice);
        if let Some(count) = self.per_channel.get_mut(&channel) {
            *count -= 1;
            if *count == 0 {
                self.per_channel.remove(&channel);
            }
        }
    }
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
            last_edit: Mutex::new(HashMap::new()),
            installation: OnceLock::new(),
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

    /// Delivers until `stop`. Deliveries in flight when it comes may finish, so that what
    /// Discord confirmed is recorded, for up to [`STOP_GRACE`]; then they are dropped where
    /// they are: their rows stay pending, and their keys make the next attempt harmless.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.store.installation_token().await {
                Ok(token) => {
                    let _ = self.installation.set(token);
                    break;
                }
                Err(err) => {
                    tracing::error!(error = %err, "alert dispatcher: cannot read the installation token; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
        let mut flights = Flights::default();
        loop {
            let wait = match self.launch(&mut flights).await {
                Ok(wait) => wait,
                Err(err) => {
                    tracing::error!(error = %err, "alert dispatcher: storage failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = stop.cancelled() => {
                    let finish = async { while flights.tasks.join_next().await.is_some() {} };
                    if tokio::time::timeout(STOP_GRACE, finish).await.is_err() {
                        tracing::warn!("alert dispatcher: deliveries still in flight at shutdown are left to the next start");
                        flights.tasks.shutdown().await;
                    }
                    return;
                }
                Some(done) = flights.tasks.join_next(), if !flights.tasks.is_empty() => {
                    match done {
                        Ok((notice, channel, result)) => {
                            flights.finished(notice, channel);
                            if let Err(err) = result {
                                tracing::error!(error = %err, notice, "alert dispatcher: storage failed during a delivery; retrying");
                            }
                        }
                        Err(err) => {
                            // A delivery task cannot panic by design; if one did, its notice
                            // stays marked busy until restart rather than being sent twice.
                            tracing::error!(error = %err, "alert dispatcher: a delivery task failed");
                        }
                    }
                }
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts every delivery due now that may start; returns how long to wait before the next
    /// look when nothing else wakes the dispatcher.
    async fn launch(self: &Arc<Self>, flights: &mut Flights) -> Result<Duration, StoreError> {
        let now = Utc::now();
        let mut wait = IDLE;
        while flights.tasks.len() < IN_FLIGHT {
            let (edits_in, spaced) = self.spaced_channels();
            if let Some(spaced) = spaced {
                wait = wait.min(spaced);
            }
            let skip = DueFilter {
                notices: flights.notices.iter().copied().collect(),
                channels: flights
                    .per_channel
                    .iter()
                    .filter(|(_, n)| **n >= IN_FLIGHT_PER_CHANNEL)
                    .map(|(channel, _)| *channel)
                    .collect(),
                edits_in,
            };
            let rows = self.store.due_deliveries(now, ROUND, &skip).await?;
            if rows.is_empty() {
                break;
            }
            let mut started = false;
            for row in rows {
                let channel = row.channel.map_or(0, |c| c.0 as i64);
                let in_channel = flights.per_channel.get(&channel).copied().unwrap_or(0);
                if flights.tasks.len() >= IN_FLIGHT
                    || flights.notices.contains(&row.notice)
                    || in_channel >= IN_FLIGHT_PER_CHANNEL
                {
                    continue;
                }
                if row.kind == DeliveryKind::Edit {
                    let mut last = self.last_edit.lock().expect("edit clock");
                    if last
                        .get(&channel)
                        .is_some_and(|at| at.elapsed() < EDIT_SPACING)
                    {
                        continue;
                    }
                    last.insert(channel, Instant::now());
                }
                flights.notices.insert(row.notice);
                *flights.per_channel.entry(channel).or_default() += 1;
                let this = self.clone();
                flights.tasks.spawn(async move {
                    let result = this.deliver(&row).await;
                    (row.notice, channel, result)
                });
                started = true;
            }
            if !started {
                break;
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics
                .alert_outbox_pending
                .set(self.store.pending_deliveries().await?);
        }
        if let Some(at) = self.store.next_delivery_after(now).await? {
            wait = wait.min(until(at));
        }
        Ok(wait)
    }

    /// The channels whose edits must still wait (see [`EDIT_SPACING`]), and the shortest of
    /// their waits.
    fn spaced_channels(&self) -> (Vec<i64>, Option<Duration>) {
        let mut last = self.last_edit.lock().expect("edit clock");
        last.retain(|_, at| at.elapsed() < EDIT_SPACING);
        let shortest = last
            .values()
            .map(|at| EDIT_SPACING.saturating_sub(at.elapsed()))
            .min();
        (last.keys().copied().collect(), shortest)
    }

    /// The idempotency key of a delivery of `row`: the installation's token, the row's id and
    /// its creation second (base 36), and `suffix`; at most 25 characters, as Discord's `nonce`
    /// allows. Unique across databases (the token) and across restored backups, whose row ids
    /// start again (the time); the same for every attempt of the row.
    fn key(&self, row: &OutboxRow, suffix: &str) -> String {
        let token = self.installation.get().map_or("pb", String::as_str);
        format!(
            "{token}-{}-{}{suffix}",
            base36(row.id.unsigned_abs()),
            base36(row.created_at.timestamp().unsigned_abs())
        )
    }

    /// One attempt at `row`, and its outcome recorded.
    async fn deliver(&self, row: &OutboxRow) -> Result<(), StoreError> {
        let (Some(target), Some(snapshot)) = (
            self.store.notice_target(row.notice).await?,
            self.store.delivery_snapshot(row.notice).await?,
        ) else {
            tracing::error!(
                notice = row.notice,
                "alert outbox row for a missing notice; dropped"
            );
            return self
                .store
                .delivery_done(row, None, Utc::now(), row.id, false)
                .await;
        };
        // `shown`: the newest outbox row this view includes; edits up to it are delivered with it.
        let (view, shown) = snapshot;
        let log = LogCourier;
        let courier: &dyn Courier = if self.needs_channel && target.channel.is_none() {
            &log
        } else {
            self.courier.as_ref()
        };
        let channel = target.channel.unwrap_or(Snowflake(0));
        let key = self.key(row, "");
        let result: Result<Sent, DeliveryError> = match (row.kind, target.message) {
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
                            .map(Sent::posted)
                    }
                    other => other.map(|()| Sent::shown()),
                }
            }
            (DeliveryKind::Post | DeliveryKind::Edit, None) => courier
                .post(channel, &view, &row.mention, &key)
                .await
                .map(Sent::posted),
            (DeliveryKind::Reply, Some(message)) => courier
                .reply(
                    message,
                    ReplyNote {
                        kind: row.reply.unwrap_or(ReplyKind::Reminder),
                        view: &view,
                        queued_at: row.created_at,
                    },
                    &row.mention,
                    &key,
                )
                .await
                .map(|_| Sent::shown()),
            // A reply whose message was never posted: post the notice first (it shows the
            // current state), the reply follows on the next round.
            (DeliveryKind::Reply, None) => {
                match courier
                    .post(channel, &view, &target.mention, &self.key(row, "n"))
                    .await
                {
                    Ok(posted) => {
                        self.store.set_message(row.notice, posted.message).await?;
                        if !posted.shows_view {
                            self.met_older_rendering(row);
                            self.store.queue_edit(row.notice, Utc::now()).await?;
                        }
                        self.wake.notify_one();
                        return Ok(());
                    }
                    Err(err) => Err(err),
                }
            }
        };
        self.record(row, shown, result).await
    }

    /// Records the outcome of one attempt at `row`.
    async fn record(
        &self,
        row: &OutboxRow,
        shown: i64,
        result: Result<Sent, DeliveryError>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        match result {
            Ok(sent) => {
                if !sent.shows_view {
                    self.met_older_rendering(row);
                }
                // A message showing an older rendering delivers no pending edit, and gets one.
                let shown = if sent.shows_view { shown } else { row.id };
                self.store
                    .delivery_done(row, sent.message, now, shown, !sent.shows_view)
                    .await?;
                // Counted before waiters wake, so what they read is current.
                self.count("delivered");
                self.delivered.send_modify(|count| *count += 1);
            }
            Err(DeliveryError::Held { after, kind }) => {
                tracing::debug!(
                    notice = row.notice,
                    outbox = row.id,
                    kind,
                    wait_ms = after.as_millis() as u64,
                    "alert delivery held back"
                );
                self.store
                    .postpone(row, now + chrono_duration(after))
                    .await?;
            }
            Err(DeliveryError::Retry {
                after,
                kind,
                message,
                ambiguous,
            }) => {
                let wait = after.unwrap_or_else(|| {
                    let retry = u32::try_from(row.attempts).unwrap_or(u32::MAX);
                    RETRY.backoff(retry).max(MIN_RETRY)
                });
                if ambiguous {
                    self.count("ambiguous");
                    tracing::warn!(notice = row.notice, outbox = row.id, kind, error = %message, retry_in_ms = wait.as_millis() as u64, "alert post's answer was lost and webhooks take no idempotency key: the retry may post it a second time");
                } else {
                    self.count("retry");
                    tracing::warn!(notice = row.notice, outbox = row.id, kind, error = %message, retry_in_ms = wait.as_millis() as u64, "alert delivery failed; will retry");
                }
                self.store
                    .delivery_failed(
                        row,
                        now + chrono_duration(wait),
                        &format!("{kind}: {message}"),
                    )
                    .await?;
            }
            Err(DeliveryError::Permanent { kind, message }) => {
                self.count("refused");
                tracing::error!(notice = row.notice, outbox = row.id, kind, error = %message, "alert delivery refused by Discord; fix the channel or the bot's permissions (retrying every 10 minutes)");
                self.store
                    .delivery_failed(
                        row,
                        now + chrono_duration(PERMANENT_RETRY),
                        &format!("{kind}: {message}"),
                    )
                    .await?;
            }
            Err(DeliveryError::MessageGone) => {
                // A reply to a deleted message: forget it, so the next round posts the notice.
                self.store.forget_message(row.notice).await?;
                self.store.delivery_failed(row, now, "message gone").await?;
            }
        }
        Ok(())
    }

    fn met_older_rendering(&self, row: &OutboxRow) {
        tracing::info!(
            notice = row.notice,
            outbox = row.id,
            "alert post met the message an earlier attempt created, showing an older state; editing it"
        );
    }
}

fn chrono_duration(wait: Duration) -> chrono::Duration {
    chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX)
}

/// How long until `at` (zero when it has passed).
fn until(at: DateTime<Utc>) -> Duration {
    (at - Utc::now()).to_std().unwrap_or_default()
}

/// `n` in base 36, lower case.
fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u64::MAX), "3w5e11264sgsf");
    }

    #[test]
    fn keys_fit_in_a_nonce() {
        // 6 token characters, a row id below 36^8 (2.8 trillion rows), a second before the year
        // 4400 (36^7 s after 1970) and a one-character suffix: 24 characters of Discord's 25.
        let longest = format!(
            "abcdef-{}-{}n",
            base36(36u64.pow(8) - 1),
            base36(36u64.pow(7) - 1)
        );
        assert_eq!(longest.len(), 24);
        assert!(base36(chrono::Utc::now().timestamp().unsigned_abs()).len() <= 7);
    }
}
