//! Alerts: incidents opened and resolved from the engine's transitions, routed to channels,
//! written to a durable outbox in the same transaction as the incident change, and delivered
//! in order, once, by the [`dispatch`]er. Knows nothing of Discord: delivery goes through a
//! [`notice::Courier`].
//!
//! - **Reading transitions.** The engine commits each transition before it announces it. The
//!   alert pipeline reads committed transitions from the database after its cursor
//!   (`alert_cursor`), and moves the cursor in the same transaction as the incident changes
//!   and outbox rows a transition causes. The broadcast only wakes it. So after a crash, a lag
//!   or a restart, every transition is handled exactly once.
//! - **Notices.** One message per incident, or per burst: incidents opening on the same channel
//!   within `group_wait` of a notice's first join it (the first is posted at once; the others
//!   edit it into "N integrations down").
//! - **Suppression.** While an integration is silenced, in a maintenance window, flapping, or
//!   down because a dependency is DOWN, its incidents are recorded but not notified (a
//!   dependency's message lists its dependents instead).
//! - **Time** is always passed in (`now`), so reminders and windows are tested without waiting.

pub mod dispatch;
pub mod notice;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Integration};
use crate::model::notice::ReplyKind;
use crate::model::{Actor, Severity, Snowflake};
use crate::model::{State, Transition};
use crate::store::alerts::{AlertTx, DeliveryKind, NewIncident};
use crate::store::{Store, StoreError};

/// The longest the pipeline sleeps without looking at its timers: a safety net, not a
/// schedule (every change that moves a timer wakes it).
const MAX_TIMER_WAIT: Duration = Duration::from_secs(600);
/// How long to wait before looking again when a timer that was due is still due right after
/// the pass that should have handled it, so that a mistake cannot spin.
const STUCK_TIMER_WAIT: Duration = Duration::from_secs(1);
/// Transitions read per round.
const BATCH: i64 = 500;

/// The alert pipeline; cheap to share behind an `Arc`.
pub struct Alerts {
    store: Store,
    config: std::sync::RwLock<Arc<Config>>,
    /// Wakes the dispatcher when rows were written.
    delivery: Arc<Notify>,
    /// Counts deliveries done (the dispatcher bumps it), for whoever waits on delivery.
    delivered: tokio::sync::watch::Sender<u64>,
    /// Bumped after every committed change of incidents (their timeline included), for the
    /// Notion incident log.
    changes: tokio::sync::watch::Sender<u64>,
    /// Serialises the pipeline's own transactions (transitions, ticks, buttons).
    busy: tokio::sync::Mutex<()>,
    /// Wakes the pipeline's timers when something moves them (an acknowledgement, a silence,
    /// a reload).
    timers: Notify,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// Recorded, and the message will show it.
    Now,
    /// Someone had already acknowledged it.
    Already,
    /// It is resolved; nothing to acknowledge.
    Resolved,
    /// No such notice.
    Unknown,
}

impl Alerts {
    /// The pipeline over `store`, routing with `config`.
    pub fn new(store: Store, config: &Config) -> Alerts {
        Alerts {
            store,
            config: std::sync::RwLock::new(Arc::new(config.clone())),
            delivery: Arc::new(Notify::new()),
            delivered: tokio::sync::watch::channel(0).0,
            changes: tokio::sync::watch::channel(0).0,
            busy: tokio::sync::Mutex::new(()),
            timers: Notify::new(),
        }
    }

    /// Takes a reloaded config (routes, silences' targets, maintenance, thresholds).
    pub fn reload(&self, config: &Config) {
        *self.config.write().expect("config lock") = Arc::new(config.clone());
        // `repeat`, the flapping window and maintenance windows may have moved.
        self.timers.notify_one();
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }

    /// What the dispatcher waits on.
    pub fn delivery_signal(&self) -> Arc<Notify> {
        self.delivery.clone()
    }

    /// A receiver that changes after every committed change of incidents.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Commits `tx` and tells the followers of [`Alerts::changes`].
    async fn committed(&self, tx: crate::store::alerts::AlertTx) -> Result<(), StoreError> {
        tx.commit().await?;
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// What the dispatcher bumps after each delivery.
    pub fn delivered_sender(&self) -> tokio::sync::watch::Sender<u64> {
        self.delivered.clone()
    }

    /// Changes after every delivery (tests and the benchmark wait on it).
    pub fn delivered(&self) -> tokio::sync::watch::Receiver<u64> {
        self.delivered.subscribe()
    }

    /// Runs until `stop`: handles committed transitions as the engine announces them (and any
    /// left from before a restart), and runs [`Alerts::tick`] when a reminder, the end of a
    /// silence or a maintenance window, or the settling of a flapping notice is due: it sleeps
    /// until the next such moment ([`Alerts::next_due`]), and is woken when one moves.
    pub async fn run(
        &self,
        mut transitions: broadcast::Receiver<Transition>,
        stop: CancellationToken,
    ) {
        loop {
            // After a failure (the database busy or unreachable), try again soon rather than
            // at the next transition: a lone incident must not wait for the tick.
            let retry = match self.catch_up().await {
                Ok(_) => None,
                Err(err) => {
                    tracing::warn!(error = %err, "alerts: could not process transitions; retrying in 250 ms");
                    Some(Duration::from_millis(250))
                }
            };
            let timer = self.run_due_timers().await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(retry.unwrap_or(Duration::MAX)), if retry.is_some() => {}
                // A lagged receiver loses nothing: the transitions are read from the database.
                _ = transitions.recv() => {}
                () = self.timers.notified() => {}
                () = tokio::time::sleep(timer) => {}
            }
        }
    }

    /// Runs [`Alerts::tick`] if a timer is due; returns how long until the next one.
    async fn run_due_timers(&self) -> Duration {
        let now = crate::model::now();
        let due = match self.next_due(now).await {
            Ok(due) => due,
            Err(err) => {
                tracing::warn!(error = %err, "alerts: could not read the timers; looking again in 1 s");
                return STUCK_TIMER_WAIT;
            }
        };
        if due.is_none_or(|at| at > now) {
            return due.map_or(MAX_TIMER_WAIT, |at| wait_until(at, now));
        }
        if let Err(err) = self.tick(now).await {
            tracing::error!(error = %err, "alerts: reminder pass failed");
            return STUCK_TIMER_WAIT;
        }
        let now = crate::model::now();
        match self.next_due(now).await {
            Ok(None) => MAX_TIMER_WAIT,
            Ok(Some(at)) if at > now => wait_until(at, now),
            Ok(Some(_)) => {
                tracing::debug!(
                    "alerts: a timer is still due after its pass; looking again in 1 s"
                );
                STUCK_TIMER_WAIT
            }
            Err(_) => STUCK_TIMER_WAIT,
        }
    }

    /// The next moment [`Alerts::tick`] has something to do after `now`, or at or before it
    /// when something is due: a reminder (`reminded_at + repeat`, or the end of the notice's
    /// silence if later), the end of whatever holds back an incident recorded under a silence
    /// or a maintenance window, the settling of a flapping notice (its integrations' last
    /// change plus the flapping window). `None` when nothing waits on time.
    pub async fn next_due(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let config = self.config();
        let mut next: Option<DateTime<Utc>> = None;
        let mut consider = |at: DateTime<Utc>| next = Some(next.map_or(at, |n| n.min(at)));
        let repeat = config.alerts.repeat.map(chrono_duration);
        for notice in self.store.open_notices().await? {
            if notice.flapping {
                let Some(view) = self.store.notice_view(notice.id).await? else {
                    continue;
                };
                let mut last = None;
                for line in &view.incidents {
                    last = last.max(self.store.last_transition_at(&line.integration).await?);
                }
                // Settled once no change lies within the window (`settle_flapping` counts a
                // change exactly at its start).
                if let Some(last) = last {
                    consider(
                        last + chrono_duration(config.alerts.flap_window)
                            + chrono::Duration::milliseconds(1),
                    );
                }
                continue;
            }
            let Some(repeat) = repeat.filter(|_| !notice.acknowledged) else {
                continue;
            };
            let due = notice.reminded_at + repeat;
            consider(notice.silenced_until.map_or(due, |until| due.max(until)));
        }
        let held = self.store.held_incidents().await?;
        if !held.is_empty() {
            let silences = self.store.active_silences(now).await?;
            for incident in held {
                let integration = config
                    .integrations
                    .iter()
                    .find(|i| i.name == incident.integration);
                // Released once every silence and window covering it has ended.
                let silenced = silences
                    .iter()
                    .filter(|s| covers(&s.target, &incident.integration, integration))
                    .map(|s| s.until);
                let maintained = config
                    .maintenance
                    .iter()
                    .filter(|w| integration.is_some_and(|i| w.covers(i)))
                    .filter_map(|w| w.active_until(now));
                consider(silenced.chain(maintained).max().unwrap_or(now));
            }
        }
        Ok(next)
    }

    /// Handles every committed transition after the cursor; returns how many.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let _busy = self.busy.lock().await;
        let mut handled = 0;
        loop {
            let cursor = self.store.alert_cursor().await?;
            let batch = self.store.transitions_after(cursor, BATCH).await?;
            if batch.is_empty() {
                break;
            }
            for (id, transition) in batch {
                let mut tx = self.store.alert_tx().await?;
                self.handle(&mut tx, &transition, crate::model::now())
                    .await?;
                tx.set_cursor(id).await?;
                self.committed(tx).await?;
                handled += 1;
                // Wake the dispatcher per transition, not per batch: during a burst the
                // first alert must not wait for the last transition (measured 0.4 s).
                self.delivery.notify_one();
            }
        }
        Ok(handled)
    }

    async fn handle(
        &self,
        tx: &mut AlertTx,
        t: &Transition,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let config = self.config();
        let integration = config.integrations.iter().find(|i| i.name == t.integration);
        let open = tx.open_incident(&t.integration).await?;
        match (Severity::of_state(t.to), open) {
            // Still bad, or worse: the open incident follows.
            (Some(default), Some(open)) => {
                let severity = integration
                    .and_then(|i| i.alert_severity(t.to))
                    .unwrap_or(default);
                tx.update_incident(open.id, t.to, severity, &t.reason, t.at)
                    .await?;
                if let Some(notice) = open.notice {
                    self.edit_unless_quiet(tx, notice, now).await?;
                }
            }
            // A new outage or degradation.
            (Some(default), None) => {
                let severity = integration
                    .and_then(|i| i.alert_severity(t.to))
                    .unwrap_or(default);
                self.open(tx, &config, integration, t, severity, now)
                    .await?;
            }
            // Back to UP (or paused by the config): the open incident resolves.
            (None, Some(open)) if matches!(t.to, State::Up | State::Paused) => {
                tx.resolve_incident(open.id, t.to, &t.reason, t.at).await?;
                if let Some(notice) = open.notice {
                    self.after_resolution(tx, notice, now).await?;
                }
                self.promote_dependents(tx, &config, open.id, now).await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn open(
        &self,
        tx: &mut AlertTx,
        config: &Config,
        integration: Option<&Integration>,
        t: &Transition,
        severity: Severity,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let new = NewIncident {
            integration: &t.integration,
            severity,
            state: t.to,
            reason: &t.reason,
            at: t.at,
        };
        // A dependency that is DOWN explains this outage: record it under the dependency's
        // incident, whose message lists it.
        if let Some(integration) = integration {
            for dependency in &integration.depends_on {
                if let Some(parent) = tx.open_incident(dependency).await?
                    && parent.state == State::Down
                {
                    tx.insert_incident(
                        &new,
                        None,
                        Some(parent.id),
                        Some(&format!("dependency:{dependency}")),
                    )
                    .await?;
                    if let Some(notice) = parent.notice {
                        self.edit_unless_quiet(tx, notice, now).await?;
                    }
                    return Ok(());
                }
            }
        }
        if let Some(why) = suppression(tx, config, integration, &t.integration, now).await? {
            tx.insert_incident(&new, None, None, Some(&why)).await?;
            tracing::info!(target: "patchbay::alert", integration = %t.integration, why, "incident recorded, not notified");
            return Ok(());
        }
        let (channel, mention) = target(config, integration, severity);
        // Flapping: one notice says so, then quiet until stable.
        if let Some(notice) = tx.flapping_notice_of(&t.integration).await? {
            // Already said it flaps: record quietly under that notice.
            tx.insert_incident(&new, Some(notice), None, None).await?;
            return Ok(());
        }
        if is_flapping(tx, config, &t.integration, now).await? {
            let notice = tx.insert_notice(channel, &mention, now, true).await?;
            tx.insert_incident(&new, Some(notice), None, None).await?;
            tx.enqueue(notice, DeliveryKind::Post, None, &mention, now)
                .await?;
            return Ok(());
        }
        let group_wait = chrono::Duration::from_std(config.alerts.group_wait).unwrap_or_default();
        let joined = if config.alerts.group_wait.is_zero() {
            None
        } else {
            tx.joinable_notice(channel, now - group_wait).await?
        };
        if let Some(notice) = joined {
            tx.insert_incident(&new, Some(notice), None, None).await?;
            tx.enqueue(notice, DeliveryKind::Edit, None, &[], now)
                .await?;
        } else {
            let notice = tx.insert_notice(channel, &mention, now, false).await?;
            tx.insert_incident(&new, Some(notice), None, None).await?;
            tx.enqueue(notice, DeliveryKind::Post, None, &mention, now)
                .await?;
        }
        Ok(())
    }

    /// Queues an edit of `notice`, unless it is a flapping notice (quiet until stable).
    async fn edit_unless_quiet(
        &self,
        tx: &mut AlertTx,
        notice: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if tx.is_flapping(notice).await? {
            return Ok(());
        }
        tx.enqueue(notice, DeliveryKind::Edit, None, &[], now)
            .await?;
        Ok(())
    }

    /// After an incident of `notice` resolved: the message shows it, and when the whole notice
    /// is resolved, a short reply says after how long.
    async fn after_resolution(
        &self,
        tx: &mut AlertTx,
        notice: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if tx.is_flapping(notice).await? {
            // Flapping notices close when the integration is stable (see `tick`).
            return Ok(());
        }
        tx.enqueue(notice, DeliveryKind::Edit, None, &[], now)
            .await?;
        if tx.open_in_notice(notice).await? == 0 {
            tx.resolve_notice(notice, now).await?;
            if self.config().alerts.send_resolved {
                tx.enqueue(
                    notice,
                    DeliveryKind::Reply,
                    Some(ReplyKind::Resolved),
                    &[],
                    now,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// When a dependency resolves while its dependents are still down, the dependents are no
    /// longer explained by it: each gets its own notice.
    async fn promote_dependents(
        &self,
        tx: &mut AlertTx,
        config: &Config,
        parent: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for child in tx.orphaned_children(parent).await? {
            let integration = config
                .integrations
                .iter()
                .find(|i| i.name == child.integration);
            let (channel, mention) = target(config, integration, child.severity);
            let notice = tx.insert_notice(channel, &mention, now, false).await?;
            tx.attach(child.id, notice).await?;
            tx.enqueue(notice, DeliveryKind::Post, None, &mention, now)
                .await?;
        }
        Ok(())
    }

    /// Reminders for open, unacknowledged, unsilenced notices every `repeat`; flapping notices
    /// close once their integration is stable for the flapping window; incidents held back by
    /// a silence or a maintenance window that has ended are notified now.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let _busy = self.busy.lock().await;
        let config = self.config();
        let mut wrote = self.release(&config, now).await?;
        for notice in self.store.open_notices().await? {
            if notice.flapping {
                wrote |= self.settle_flapping(&config, notice.id, now).await?;
                continue;
            }
            let Some(repeat) = config.alerts.repeat else {
                continue;
            };
            let repeat = chrono::Duration::from_std(repeat).unwrap_or(chrono::Duration::MAX);
            let silenced = notice.silenced_until.is_some_and(|until| until > now);
            if notice.acknowledged || silenced || notice.reminded_at + repeat > now {
                continue;
            }
            let mut tx = self.store.alert_tx().await?;
            tx.enqueue(
                notice.id,
                DeliveryKind::Reply,
                Some(ReplyKind::Reminder),
                &notice.mention,
                now,
            )
            .await?;
            tx.reminded(notice.id, now).await?;
            self.committed(tx).await?;
            wrote = true;
        }
        if wrote {
            self.delivery.notify_one();
        }
        Ok(())
    }

    /// Notifies open incidents that were recorded only because of a silence or a maintenance
    /// window that no longer applies. Returns whether it queued anything.
    async fn release(&self, config: &Config, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut wrote = false;
        for incident in self.store.open_incidents().await? {
            let held = incident.notice.is_none()
                && incident.suppressed.as_deref().is_some_and(|why| {
                    why.starts_with("silence:") || why.starts_with("maintenance:")
                });
            if !held {
                continue;
            }
            let integration = config
                .integrations
                .iter()
                .find(|i| i.name == incident.integration);
            let mut tx = self.store.alert_tx().await?;
            if suppression(&mut tx, config, integration, &incident.integration, now)
                .await?
                .is_some()
            {
                continue;
            }
            let (channel, mention) = target(config, integration, incident.severity);
            let notice = tx.insert_notice(channel, &mention, now, false).await?;
            tx.attach(incident.id, notice).await?;
            tx.event(
                incident.id,
                now,
                "notified",
                "its silence or maintenance window ended",
            )
            .await?;
            tx.enqueue(notice, DeliveryKind::Post, None, &mention, now)
                .await?;
            self.committed(tx).await?;
            wrote = true;
        }
        Ok(wrote)
    }

    async fn settle_flapping(
        &self,
        config: &Config,
        notice: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(view) = self.store.notice_view(notice).await? else {
            return Ok(false);
        };
        for line in &view.incidents {
            if self
                .is_recently_changed(config, &line.integration, now)
                .await?
            {
                return Ok(false);
            }
        }
        let mut tx = self.store.alert_tx().await?;
        tx.end_flapping(notice).await?;
        tx.enqueue(notice, DeliveryKind::Edit, None, &[], now)
            .await?;
        if tx.open_in_notice(notice).await? == 0 {
            tx.resolve_notice(notice, now).await?;
            tx.enqueue(
                notice,
                DeliveryKind::Reply,
                Some(ReplyKind::StableAgain),
                &[],
                now,
            )
            .await?;
        }
        self.committed(tx).await?;
        Ok(true)
    }

    async fn is_recently_changed(
        &self,
        config: &Config,
        integration: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let window = chrono::Duration::from_std(config.alerts.flap_window).unwrap_or_default();
        Ok(self
            .store
            .transitions_since(integration, now - window)
            .await?
            > 0)
    }

    /// Acknowledges `notice` for `by`: reminders stop and the message says who.
    pub async fn acknowledge(
        &self,
        notice: i64,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Acked, StoreError> {
        let _busy = self.busy.lock().await;
        let Some(view) = self.store.notice_view(notice).await? else {
            return Ok(Acked::Unknown);
        };
        if view.resolved_after.is_some() {
            return Ok(Acked::Resolved);
        }
        let mut tx = self.store.alert_tx().await?;
        if !tx.acknowledge(notice, by, now).await? {
            return Ok(Acked::Already);
        }
        tx.enqueue(notice, DeliveryKind::Edit, None, &[], now)
            .await?;
        self.committed(tx).await?;
        self.delivery.notify_one();
        self.timers.notify_one();
        Ok(Acked::Now)
    }

    /// Silences `target` (an integration name or `tag:NAME`) for `length`: its new incidents are
    /// recorded, not notified, and its open notices say until when and stop reminding.
    /// Returns the silence's id.
    pub async fn silence(
        &self,
        target: &str,
        length: Duration,
        reason: &str,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let _busy = self.busy.lock().await;
        let config = self.config();
        let until = now + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::MAX);
        let covered: Vec<String> = config
            .integrations
            .iter()
            .filter(|i| covers(target, &i.name, Some(i)))
            .map(|i| i.name.clone())
            .collect();
        let mut tx = self.store.alert_tx().await?;
        let id = tx.insert_silence(target, until, reason, by, now).await?;
        let why = format!("silenced by {by} until {until}: {reason}");
        for notice in tx.open_notices_of(&covered).await? {
            tx.silence_notice(notice, until, now, &why).await?;
            tx.enqueue(notice, DeliveryKind::Edit, None, &[], now)
                .await?;
        }
        self.committed(tx).await?;
        self.delivery.notify_one();
        self.timers.notify_one();
        Ok(id)
    }

    /// The integrations of `notice` that are still open (what its buttons act on).
    pub async fn notice_integrations(
        &self,
        notice: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        Ok(self.store.notice_view(notice).await?.map(|view| {
            view.incidents
                .into_iter()
                .filter(|i| i.resolved_at.is_none())
                .map(|i| i.integration)
                .collect()
        }))
    }

    /// Ends silence `id` now; false when no such silence is active.
    pub async fn unsilence(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let _busy = self.busy.lock().await;
        let mut tx = self.store.alert_tx().await?;
        let removed = tx.remove_silence(id, now).await?;
        self.committed(tx).await?;
        // What the silence held back and is still open goes out now, not at the next tick.
        if removed && self.release(&self.config(), now).await? {
            self.delivery.notify_one();
        }
        self.timers.notify_one();
        Ok(removed)
    }
}

/// Why an integration's new incident is not notified now, if it is not. Reads through `tx`:
/// a transaction holding the write lock must not wait for another pooled connection.
async fn suppression(
    tx: &mut AlertTx,
    config: &Config,
    integration: Option<&Integration>,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, StoreError> {
    for silence in tx.active_silences(now).await? {
        if covers(&silence.target, name, integration) {
            return Ok(Some(format!("silence:{}", silence.id)));
        }
    }
    if let Some(integration) = integration {
        for (index, window) in config.maintenance.iter().enumerate() {
            if window.covers(integration) && window.active_at(now) {
                let label = window.name.clone().unwrap_or_else(|| index.to_string());
                return Ok(Some(format!("maintenance:{label}")));
            }
        }
    }
    Ok(None)
}

/// Whether `integration` changed state more than `flap_threshold` times within `flap_window`.
async fn is_flapping(
    tx: &mut AlertTx,
    config: &Config,
    integration: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let window = chrono::Duration::from_std(config.alerts.flap_window).unwrap_or_default();
    let changes = tx.transitions_since(integration, now - window).await?;
    Ok(changes > i64::from(config.alerts.flap_threshold))
}

/// Where an alert of `integration` at `severity` goes, and whom it mentions (see
/// `AlertsConfig::route_for`); no channel when nothing routes it.
fn target(
    config: &Config,
    integration: Option<&Integration>,
    severity: Severity,
) -> (Option<Snowflake>, Vec<Snowflake>) {
    match integration.and_then(|i| config.alerts.route_for(i, severity)) {
        Some(route) => (Some(route.channel), route.mention),
        None => (None, Vec::new()),
    }
}

fn chrono_duration(length: Duration) -> chrono::Duration {
    chrono::Duration::from_std(length).unwrap_or(chrono::Duration::MAX)
}

/// How long from `now` until `at`, at most [`MAX_TIMER_WAIT`]. The wall clock and tokio's clock
/// may disagree by a little; waking a millisecond late is harmless, early would find nothing.
fn wait_until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now)
        .to_std()
        .unwrap_or_default()
        .saturating_add(Duration::from_millis(1))
        .min(MAX_TIMER_WAIT)
}

/// Whether a silence target (`name` or `tag:NAME`) covers an integration.
fn covers(target: &str, name: &str, integration: Option<&Integration>) -> bool {
    match target.strip_prefix("tag:") {
        Some(tag) => integration.is_some_and(|i| i.tags.iter().any(|t| t == tag)),
        None => target == name,
    }
}
