//! The control-plane service: the one place the fronts (CLI, Discord, and HTTP) ask about integrations and act on them, so they all answer from the same code.
//!
//! - [`status_overview`] answers from stored state and rollups only; it never waits for a live
//!   check.
//! - [`ControlPlane::invoke`] is the path of every command, button and API call: per-member
//!   rate limit, then the access decision, then the action, then one audit entry whatever
//!   happened. [`CommandError`] is the one user-facing error type the fronts render.

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroU32;

use chrono::{DateTime, Utc};
use serde::Serialize;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use std::sync::Arc;

use crate::access::{Denied, Grant, Member, Permission, Policy};
use crate::audit::{Actor, AuditEntry, AuditPage, AuditQuery, InvocationOption, Outcome, redact};
use crate::config::{CommandRate, Config};
use crate::model::Snowflake;
use crate::model::{ECHO_LIMIT, IntegrationState, State, echo, shorten};
use crate::monitor::{Engine, RecheckError};
use crate::store::{StatsWindow, Store, StoreError};

/// One integration's line in a status overview.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StatusRow {
    /// The configured name.
    pub name: String,
    /// The check kind (`http`).
    pub kind: String,
    /// The current state.
    pub state: State,
    /// When the current state began (RFC 3339).
    pub since: DateTime<Utc>,
    /// When the last check ran, if one has.
    pub last_check: Option<DateTime<Utc>>,
    /// The last check's failure, if it failed.
    pub last_error: Option<String>,
    /// Estimated p95 latency over 24 hours, in milliseconds.
    pub latency_p95_ms: Option<f64>,
    /// Percent of checks that passed over 24 hours.
    pub uptime_24h: Option<f64>,
    /// The configured tags.
    pub tags: Vec<String>,
}

/// The status of every configured integration, worst state first, then by name.
///
/// `live` states (from a running engine) win over stored ones; the CLI passes none and reads
/// what the last running bot stored.
pub async fn status_overview(
    config: &Config,
    store: &Store,
    live: Option<Vec<IntegrationState>>,
    now: DateTime<Utc>,
) -> Result<Vec<StatusRow>, StoreError> {
    let states: HashMap<String, IntegrationState> = match live {
        Some(states) => states,
        None => store.load_states().await?,
    }
    .into_iter()
    .map(|state| (state.integration.clone(), state))
    .collect();
    let stats = store.window_stats(None, StatsWindow::Day, now).await?;
    Ok(overview_rows(config, states, &stats, now))
}

/// The overview from states and 24-hour figures already at hand.
pub fn overview_rows(
    config: &Config,
    states: HashMap<String, IntegrationState>,
    stats: &HashMap<String, crate::store::WindowStats>,
    now: DateTime<Utc>,
) -> Vec<StatusRow> {
    let mut rows: Vec<StatusRow> = config
        .integrations
        .iter()
        .map(|integration| {
            status_row(
                integration,
                states.get(&integration.name),
                stats.get(&integration.name),
                now,
            )
        })
        .collect();
    rows.sort_by(|a, b| {
        severity(a.state)
            .cmp(&severity(b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    rows
}

/// One page of the `/status` overview.
#[derive(Debug, Clone, PartialEq)]
pub struct OverviewPage {
    /// How many integrations are in each state.
    pub counts: Vec<(State, usize)>,
    /// Integrations in all.
    pub total: usize,
    /// The worst state of any integration.
    pub worst: State,
    /// This page's rows, worst first.
    pub rows: Vec<StatusRow>,
    /// This page (0-based, clamped to the last).
    pub page: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
}

impl OverviewPage {
    /// A page cut from every row (already sorted).
    pub fn of(rows: &[StatusRow], page: usize, per_page: usize) -> OverviewPage {
        let per_page = per_page.max(1);
        let pages = rows.len().div_ceil(per_page).max(1);
        let page = page.min(pages - 1);
        OverviewPage {
            counts: State::ALL
                .iter()
                .map(|state| (*state, rows.iter().filter(|r| r.state == *state).count()))
                .collect(),
            total: rows.len(),
            worst: rows.first().map_or(State::Up, |r| r.state),
            rows: rows
                .iter()
                .skip(page * per_page)
                .take(per_page)
                .cloned()
                .collect(),
            page,
            pages,
        }
    }
}

/// The state an integration shows: PAUSED when disabled, UNKNOWN before its first state.
fn effective_state(
    integration: &crate::config::Integration,
    state: Option<&IntegrationState>,
) -> State {
    match state {
        _ if !integration.enabled => State::Paused,
        Some(state) => state.state,
        None => State::Unknown,
    }
}

/// One integration's overview line from its state and its 24-hour figures.
fn status_row(
    integration: &crate::config::Integration,
    state: Option<&IntegrationState>,
    day: Option<&crate::store::WindowStats>,
    now: DateTime<Utc>,
) -> StatusRow {
    StatusRow {
        name: integration.name.clone(),
        kind: integration.check.kind().to_string(),
        state: effective_state(integration, state),
        since: state.map_or(now, |s| s.since),
        last_check: state.and_then(|s| s.last_check.as_ref().map(|l| l.at)),
        last_error: state
            .and_then(|s| s.last_check.as_ref())
            .and_then(|l| l.message.clone()),
        latency_p95_ms: day.and_then(|d| d.latency_p95_ms()).map(round1),
        uptime_24h: day.and_then(|d| d.uptime_pct()).map(round1),
        tags: integration.tags.clone(),
    }
}

/// Sort key: DOWN first, then DEGRADED, UNKNOWN, PAUSED, UP.
fn severity(state: State) -> usize {
    State::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or(usize::MAX)
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// What went wrong with an invocation, as the member will be told. Every front renders this
/// one type in one place (an ephemeral reply in Discord, a status code in the REST API).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// The member may not do this.
    #[error("{0}")]
    Denied(Denied),
    /// The member is over the command rate limit.
    #[error("you are sending commands too fast: try again in {}s", retry_in.as_secs().max(1))]
    RateLimited {
        /// When the next command is allowed.
        retry_in: std::time::Duration,
    },
    /// The input is wrong; the text says how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// Something failed on our side; details are logged under the reference.
    #[error("something went wrong (ref {reference})")]
    Internal {
        /// A short reference that appears in the log line with the details.
        reference: String,
        /// The error class, for the audit log.
        kind: &'static str,
    },
}

impl CommandError {
    /// Logs `error` under a fresh reference and returns the user-facing error.
    pub fn internal(kind: &'static str, error: &dyn std::fmt::Display) -> CommandError {
        let reference = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        tracing::error!(reference, kind, error = %error, "command failed");
        CommandError::Internal { reference, kind }
    }

    /// The audit outcome this error records.
    pub fn outcome(&self) -> Outcome {
        match self {
            CommandError::Denied(_) => Outcome::Denied,
            CommandError::RateLimited { .. } => Outcome::RateLimited,
            CommandError::Invalid(_) => Outcome::Invalid,
            CommandError::Internal { .. } => Outcome::Failed,
        }
    }

    fn error_kind(&self) -> Option<String> {
        match self {
            CommandError::Internal { kind, .. } => Some((*kind).to_string()),
            _ => None,
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> Self {
        CommandError::internal("storage", &err)
    }
}

/// One command, button press or API call, as a front received it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Who, with the facts that decide their permissions.
    pub member: Member,
    /// Who, as the audit log names them.
    pub actor: Actor,
    /// Where.
    pub channel: Option<Snowflake>,
    /// The command path (`status`, `perms grant`) or button id.
    pub command: String,
    /// The options given; secret ones are redacted in the audit log.
    pub options: Vec<InvocationOption>,
    /// When it arrived.
    pub received: std::time::Instant,
}

/// The control plane: the one path every front goes through. It applies the per-member rate
/// limit, asks the access policy, runs the action, and writes one audit entry whatever the
/// outcome, so a Discord command and a REST call are checked and recorded alike. It also owns
/// what the answers are made of: the running config (swapped on reload), the engine's live
/// states, the store, and the 24-hour figures of the overview.
pub struct ControlPlane {
    store: Store,
    engine: Option<Engine>,
    config: std::sync::RwLock<Arc<Config>>,
    command_grants: std::sync::RwLock<Vec<Grant>>,
    limiter: std::sync::RwLock<Arc<MemberLimiter>>,
    alerts: Option<Arc<crate::alerts::Alerts>>,
    audit_sink: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<AuditEntry>>,
}

/// The per-member command limiter, with the rate it was built from (so a reload only replaces
/// it, and forgets who spent what, when the rate changed).
struct MemberLimiter {
    rate: CommandRate,
    limiter: DefaultKeyedRateLimiter<u64>,
}

impl MemberLimiter {
    fn new(rate: CommandRate) -> MemberLimiter {
        let quota = Quota::with_period(rate.refill_every())
            .expect("the refill period is not zero")
            .allow_burst(NonZeroU32::new(rate.burst).expect("the burst is at least 1"));
        MemberLimiter {
            rate,
            limiter: RateLimiter::keyed(quota),
        }
    }
}

impl ControlPlane {
    /// Builds the control plane from the config and the grants stored by `/perms`. `engine` is
    /// the running engine (live states, re-checks); without one, answers come from the stored
    /// states, as the CLI reads them.
    pub async fn new(
        config: &Config,
        store: Store,
        engine: Option<Engine>,
    ) -> Result<ControlPlane, StoreError> {
        let command_grants = store.command_grants().await?;
        Ok(ControlPlane {
            store,
            engine,
            config: std::sync::RwLock::new(Arc::new(config.clone())),
            command_grants: std::sync::RwLock::new(command_grants),
            limiter: std::sync::RwLock::new(Arc::new(MemberLimiter::new(config.bot.command_rate))),
            alerts: None,
            audit_sink: std::sync::OnceLock::new(),
        })
    }

    /// Adds the alert pipeline, for `/alerts` and the alert buttons.
    pub fn with_alerts(mut self, alerts: Arc<crate::alerts::Alerts>) -> ControlPlane {
        self.alerts = Some(alerts);
        self
    }

    /// The running config.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().expect("config lock").clone()
    }

    /// The store, for fronts that read what the plane does not wrap yet.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes a reloaded config: integrations listed and suggested, config grants, whether
    /// status is public, and the command rate all follow it from the next invocation on.
    pub fn reload(&self, config: &Config) {
        let rate = config.bot.command_rate;
        if self.limiter.read().expect("limiter lock").rate != rate {
            *self.limiter.write().expect("limiter lock") = Arc::new(MemberLimiter::new(rate));
        }
        *self.config.write().expect("config lock") = Arc::new(config.clone());
    }

    /// Also sends every audit entry to `sink` (the Discord front mirrors them into
    /// `[bot].audit_channel`).
    /// Only the first sink counts; the Discord front sets it once it is connected.
    pub fn mirror_audit(&self, sink: tokio::sync::mpsc::UnboundedSender<AuditEntry>) {
        let _ = self.audit_sink.set(sink);
    }

    /// The access policy as it stands: config grants plus `/perms` grants.
    pub fn policy(&self) -> Policy {
        let config = self.config();
        let command = self.command_grants.read().expect("grants lock");
        Policy {
            public_status: config.bot.public_status,
            grants: config
                .grants
                .iter()
                .chain(command.iter())
                .cloned()
                .collect(),
        }
    }

    /// One page of the overview: the count per state, and the page's integrations, worst state
    /// first, then by name. With a running engine, states are live and only the page's rows
    /// are built (sorting 10,000 names is cheap; building 10,000 rows is not); without one,
    /// the stored states are read.
    pub async fn overview_page(
        &self,
        page: usize,
        per_page: usize,
        now: DateTime<Utc>,
    ) -> Result<OverviewPage, CommandError> {
        let config = self.config();
        let Some(engine) = &self.engine else {
            let rows = status_overview(&config, &self.store, None, now).await?;
            return Ok(OverviewPage::of(&rows, page, per_page));
        };
        Ok(engine.with_states(|states| {
            let mut order: Vec<(usize, &str, &crate::config::Integration)> = config
                .integrations
                .iter()
                .map(|integration| {
                    let state = effective_state(integration, states.get(&integration.name));
                    (severity(state), integration.name.as_str(), integration)
                })
                .collect();
            let mut counts = [0usize; State::ALL.len()];
            for (rank, _, _) in &order {
                counts[*rank] += 1;
            }
            order.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            let pages = order.len().div_ceil(per_page.max(1)).max(1);
            let page = page.min(pages - 1);
            let rows = order
                .iter()
                .skip(page * per_page)
                .take(per_page)
                .map(|(_, _, integration)| {
                    status_row(integration, states.get(&integration.name), None, now)
                })
                .collect();
            OverviewPage {
                counts: State::ALL.iter().copied().zip(counts).collect(),
                total: order.len(),
                worst: order.first().map_or(State::Up, |(_, _, i)| {
                    effective_state(i, states.get(&i.name))
                }),
                rows,
                page,
                pages,
            }
        }))
    }

    /// One integration in detail (see [`status_detail`]).
    pub async fn detail(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<StatusDetail, CommandError> {
        let live = self
            .engine
            .as_ref()
            .map(|engine| engine.state(name).into_iter().collect());
        status_detail(&self.config(), &self.store, live, name, now).await
    }

    /// Runs a check of `name` now (its result counts like any scheduled check) and returns the
    /// detail that follows. Takes up to the integration's timeout.
    pub async fn recheck(&self, name: &str) -> Result<StatusDetail, CommandError> {
        let Some(engine) = &self.engine else {
            return Err(CommandError::Invalid(
                "checks run in the bot process; this front has no engine".into(),
            ));
        };
        match engine.recheck(name).await {
            Ok(_) => self.detail(name, crate::model::now()).await,
            Err(RecheckError::Unknown) => Err(unknown_integration(&self.config(), name)),
            Err(RecheckError::Paused) => Err(CommandError::Invalid(format!(
                "{name} is disabled in the config (PAUSED): enable it to check it"
            ))),
            Err(RecheckError::Stopped) => Err(CommandError::Invalid(format!(
                "{name} was removed or the bot is shutting down; nothing was checked"
            ))),
        }
    }

    fn alerts(&self) -> Result<&crate::alerts::Alerts, CommandError> {
        self.alerts.as_deref().ok_or_else(|| {
            CommandError::Invalid("alerts run in the bot process; this front has none".into())
        })
    }

    /// Open incidents (as their notices show them) and active silences.
    pub async fn alerts_overview(&self) -> Result<AlertsOverview, CommandError> {
        self.alerts()?;
        let now = crate::model::now();
        let mut open = Vec::new();
        for notice in self.store.open_notices().await? {
            if let Some(view) = self.store.notice_view(notice.id).await? {
                open.push(view);
            }
        }
        let recorded = self
            .store
            .open_incidents()
            .await?
            .into_iter()
            .filter(|i| i.notice.is_none())
            .collect();
        Ok(AlertsOverview {
            open,
            recorded,
            silences: self.store.active_silences(now).await?,
        })
    }

    /// `/alerts ack` and the Acknowledge button.
    pub async fn acknowledge(&self, notice: i64, actor: &Actor) -> Result<String, CommandError> {
        let Actor::Discord { user, name } = actor;
        match self
            .alerts()?
            .acknowledge(notice, *user, name, crate::model::now())
            .await?
        {
            crate::alerts::Acked::Now => Ok(format!(
                "✅ Incident #{notice} acknowledged: reminders stop, and its message says you have it."
            )),
            crate::alerts::Acked::Already => Err(CommandError::Invalid(format!(
                "incident #{notice} is already acknowledged"
            ))),
            crate::alerts::Acked::Resolved => Err(CommandError::Invalid(format!(
                "incident #{notice} is resolved; there is nothing to acknowledge"
            ))),
            crate::alerts::Acked::Unknown => Err(CommandError::Invalid(format!(
                "there is no incident #{notice}; /alerts list shows the open ones"
            ))),
        }
    }

    /// `/alerts silence`: `target` is an integration name or `tag:NAME`.
    pub async fn silence(
        &self,
        target: &str,
        length: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<String, CommandError> {
        let config = self.config();
        let valid = match target.strip_prefix("tag:") {
            Some(tag) => config
                .integrations
                .iter()
                .any(|i| i.tags.iter().any(|t| t == tag)),
            None => config.integrations.iter().any(|i| i.name == target),
        };
        if !valid {
            return Err(match target.strip_prefix("tag:") {
                Some(tag) => CommandError::Invalid(format!(
                    "no integration has the tag {}; write tag:NAME with a configured tag",
                    echo(tag)
                )),
                None => unknown_integration(&config, target),
            });
        }
        let length = crate::duration::parse(length).map_err(|err| {
            CommandError::Invalid(format!("duration: {err}; write it like 30m, 1h or 2d"))
        })?;
        if length.is_zero() || length > std::time::Duration::from_secs(30 * 86_400) {
            return Err(CommandError::Invalid(
                "a silence lasts between 1s and 30d".into(),
            ));
        }
        let Actor::Discord { user, name } = actor;
        let now = crate::model::now();
        // A client that ignores the option's limit can send a reason of thousands of
        // characters; it is kept cut, as every later view of it would show it cut anyway.
        let reason = shorten(reason, REASON_LIMIT);
        let id = self
            .alerts()?
            .silence(target, length, &reason, *user, name, now)
            .await?;
        let until = now + chrono::Duration::from_std(length).unwrap_or_default();
        Ok(format!(
            "🔕 Silence #{id}: {target} until <t:{}:f>. Incidents are still recorded and shown by /status; `/alerts unsilence silence:{id}` ends it early.",
            until.timestamp()
        ))
    }

    /// The Silence 1h button: silences every open integration of `notice` for an hour.
    pub async fn silence_notice(&self, notice: i64, actor: &Actor) -> Result<String, CommandError> {
        let names = self.notice_integrations(notice).await?;
        let mut ids = Vec::new();
        let Actor::Discord { user, name } = actor;
        let now = crate::model::now();
        for integration in &names {
            ids.push(
                self.alerts()?
                    .silence(
                        integration,
                        std::time::Duration::from_secs(3600),
                        &format!("Silence 1h on incident #{notice}"),
                        *user,
                        name,
                        now,
                    )
                    .await?,
            );
        }
        Ok(format!(
            "🔕 Silenced {} for 1h (silence {}).",
            names.join(", "),
            ids.iter()
                .map(|id| format!("#{id}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The open integrations of `notice` (what its buttons act on).
    pub async fn notice_integrations(&self, notice: i64) -> Result<Vec<String>, CommandError> {
        match self.alerts()?.notice_integrations(notice).await? {
            None => Err(CommandError::Invalid(format!(
                "there is no incident #{notice}"
            ))),
            Some(names) if names.is_empty() => Err(CommandError::Invalid(format!(
                "incident #{notice} is resolved"
            ))),
            Some(names) => Ok(names),
        }
    }

    /// `/alerts unsilence`.
    pub async fn unsilence(&self, silence: i64) -> Result<String, CommandError> {
        if self
            .alerts()?
            .unsilence(silence, crate::model::now())
            .await?
        {
            Ok(format!("🔔 Silence #{silence} ended."))
        } else {
            Err(CommandError::Invalid(format!(
                "there is no active silence #{silence}; /alerts list shows them"
            )))
        }
    }

    /// A page of the audit log.
    pub async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage, CommandError> {
        Ok(self.store.audit_page(query).await?)
    }

    /// Runs `action` for `invocation` if the member is within the rate limit and holds
    /// `permission`, and records the outcome in the audit log.
    pub async fn invoke<T, F, Fut>(
        &self,
        invocation: &Invocation,
        permission: Permission,
        action: F,
    ) -> Result<T, CommandError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CommandError>>,
    {
        let result = match self.admit(invocation, Some(permission)) {
            Ok(()) => action().await,
            Err(err) => Err(err),
        };
        self.audit(invocation, result.as_ref().err()).await;
        result
    }

    /// Like [`ControlPlane::invoke`] for what every member may run (`/help`): rate limited,
    /// refused outside a server, and audited, but no permission is asked for.
    pub async fn invoke_open<T, F, Fut>(
        &self,
        invocation: &Invocation,
        action: F,
    ) -> Result<T, CommandError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CommandError>>,
    {
        let result = match self.admit(invocation, None) {
            Ok(()) => action().await,
            Err(err) => Err(err),
        };
        self.audit(invocation, result.as_ref().err()).await;
        result
    }

    fn admit(
        &self,
        invocation: &Invocation,
        permission: Option<Permission>,
    ) -> Result<(), CommandError> {
        let limiter = self.limiter.read().expect("limiter lock").clone();
        if let Err(not_until) = limiter.limiter.check_key(&invocation.member.user.0) {
            return Err(CommandError::RateLimited {
                retry_in: not_until.wait_time_from(DefaultClock::default().now()),
            });
        }
        let Some(permission) = permission else {
            return match invocation.member.guild {
                Some(_) => Ok(()),
                None => Err(CommandError::Denied(Denied::DirectMessage)),
            };
        };
        self.policy()
            .decide(&invocation.member, permission)
            .map(|_| ())
            .map_err(CommandError::Denied)
    }

    async fn audit(&self, invocation: &Invocation, error: Option<&CommandError>) {
        let entry = AuditEntry {
            at: crate::model::now(),
            guild: invocation.member.guild,
            channel: invocation.channel,
            actor: invocation.actor.clone(),
            command: invocation.command.clone(),
            options: redact(&invocation.options),
            outcome: error.map_or(Outcome::Ok, CommandError::outcome),
            latency_ms: invocation.received.elapsed().as_secs_f64() * 1000.0,
            error_kind: error.and_then(CommandError::error_kind),
        };
        if let Err(err) = self.store.record_audit(&entry).await {
            // The command already ran; losing its audit line must be loud, not fatal.
            tracing::error!(error = %err, command = %entry.command, "could not write an audit entry");
        }
        if let Some(sink) = self.audit_sink.get() {
            let _ = sink.send(entry);
        }
    }

    /// `/perms grant`: gives `role` the `permission` in `guild`.
    pub async fn grant(
        &self,
        guild: Snowflake,
        role: Snowflake,
        permission: Permission,
        by: Snowflake,
    ) -> Result<String, CommandError> {
        let added = self
            .store
            .add_grant(guild, role, permission, by, crate::model::now())
            .await?;
        *self.command_grants.write().expect("grants lock") = self.store.command_grants().await?;
        Ok(if added {
            format!("<@&{}> now holds `{permission}`.", role.0)
        } else {
            format!("<@&{}> already held `{permission}`.", role.0)
        })
    }

    /// `/perms revoke`: takes a `/perms` grant back; config grants cannot be revoked here.
    pub async fn revoke(
        &self,
        guild: Snowflake,
        role: Snowflake,
        permission: Permission,
    ) -> Result<String, CommandError> {
        let from_config = self
            .config()
            .grants
            .iter()
            .any(|g| g.role == role && g.permission == permission);
        let removed = self.store.remove_grant(guild, role, permission).await?;
        *self.command_grants.write().expect("grants lock") = self.store.command_grants().await?;
        match (removed, from_config) {
            (_, true) => Err(CommandError::Invalid(format!(
                "<@&{}> holds `{permission}` from the config file ([[grant]]), which Discord cannot change: remove it from the config and reload{}",
                role.0,
                if removed {
                    " (the /perms grant on top of it was removed)"
                } else {
                    ""
                }
            ))),
            (true, false) => Ok(format!("<@&{}> no longer holds `{permission}`.", role.0)),
            (false, false) => Err(CommandError::Invalid(format!(
                "<@&{}> does not hold `{permission}` here; /perms list shows every grant",
                role.0
            ))),
        }
    }
}

/// The longest silence reason kept, in characters: the limit `/alerts silence` registers for its
/// `reason` option, which Discord enforces only in its own client.
pub const REASON_LIMIT: usize = 200;

/// What `/alerts list` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsOverview {
    /// Open notices, oldest first.
    pub open: Vec<crate::model::notice::NoticeView>,
    /// Open incidents recorded but not notified (silenced, in maintenance, or under a DOWN
    /// dependency).
    pub recorded: Vec<crate::store::alerts::OpenIncident>,
    /// Silences in force.
    pub silences: Vec<crate::store::alerts::Silence>,
}

/// Everything `/status <integration>` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusDetail {
    /// The overview line (state, since, last check, p95 and uptime over 24 hours, tags).
    pub row: StatusRow,
    /// Uptime and latency over 24 hours, 7 days and 30 days.
    pub windows: Vec<(StatsWindow, Option<WindowFigures>)>,
    /// Uptime per hour over the last 24 hours, oldest first (`None`: no checks that hour).
    pub hourly_uptime: Vec<Option<f64>>,
    /// The open incident, if there is one.
    pub incident: Option<crate::store::alerts::OpenIncident>,
}

/// Uptime and latency over one window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowFigures {
    /// Percent of checks that passed.
    pub uptime_pct: f64,
    /// Estimated median latency (ms).
    pub latency_p50_ms: f64,
    /// Estimated 95th percentile latency (ms).
    pub latency_p95_ms: f64,
    /// Checks counted.
    pub checks: i64,
}

/// The detail of one integration, from stored state and rollups only.
pub async fn status_detail(
    config: &Config,
    store: &Store,
    live: Option<Vec<IntegrationState>>,
    name: &str,
    now: DateTime<Utc>,
) -> Result<StatusDetail, CommandError> {
    let Some(integration) = config.integrations.iter().find(|i| i.name == name) else {
        return Err(unknown_integration(config, name));
    };
    // Only this integration's state and figures: the detail must not cost what the overview
    // of every integration costs.
    let state = match live {
        Some(states) => states.into_iter().find(|s| s.integration == name),
        None => store
            .load_states()
            .await?
            .into_iter()
            .find(|s| s.integration == name),
    };
    let day = store
        .window_stats(Some(name), StatsWindow::Day, now)
        .await?;
    let row = status_row(integration, state.as_ref(), day.get(name), now);
    let mut windows = Vec::new();
    for window in [StatsWindow::Day, StatsWindow::Week, StatsWindow::Month] {
        let stats = store.window_stats(Some(name), window, now).await?;
        let figures = stats.get(name).and_then(|stats| {
            Some(WindowFigures {
                uptime_pct: stats.uptime_pct()?,
                latency_p50_ms: stats.latency_p50_ms()?,
                latency_p95_ms: stats.latency_p95_ms()?,
                checks: stats.aggregate.count,
            })
        });
        windows.push((window, figures));
    }
    let hourly_uptime = store
        .hourly(name, 24, now)
        .await?
        .into_iter()
        .map(|hour| hour.and_then(|aggregate| aggregate.uptime_pct()))
        .collect();
    Ok(StatusDetail {
        row,
        windows,
        hourly_uptime,
        incident: store.open_incident_of(name).await?,
    })
}

/// The error for a name that is not configured, with the nearest names. The name is quoted cut
/// ([`echo`]): it is whatever the member typed, up to the thousands of characters a client that
/// ignores the option's limit can send.
fn unknown_integration(config: &Config, name: &str) -> CommandError {
    let suggestions = suggest_integrations(config, name, 3);
    let quoted = echo(name);
    CommandError::Invalid(if suggestions.is_empty() {
        format!("there is no integration named {quoted}; /status lists them all")
    } else {
        format!(
            "there is no integration named {quoted}; did you mean {}?",
            suggestions.join(" or ")
        )
    })
}

/// Draws uptime percentages as a one-line sparkline: `█` for 100%, lower blocks for less,
/// `·` for hours without checks.
pub fn sparkline(values: &[Option<f64>]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|value| match value {
            None => '·',
            Some(pct) => {
                let index = ((pct.clamp(0.0, 100.0) / 100.0) * 7.0).round() as usize;
                BLOCKS[index]
            }
        })
        .collect()
}

/// Integration names matching `partial`, best first, at most `limit` (Discord shows 25):
/// names containing it (prefix matches first), then names within a small edit distance.
///
/// Only the first [`ECHO_LIMIT`] characters of `partial` are compared, the part an answer
/// quotes back: names are at most 64 characters, so more input cannot find a better match,
/// only make the edit distance to every name slower (it grows with both lengths).
pub fn suggest_integrations(config: &Config, partial: &str, limit: usize) -> Vec<String> {
    let partial: String = partial
        .trim()
        .chars()
        .take(ECHO_LIMIT)
        .collect::<String>()
        .to_ascii_lowercase();
    let mut scored: Vec<(u8, f64, &str)> = config
        .integrations
        .iter()
        .filter_map(|integration| {
            let name = integration.name.as_str();
            if partial.is_empty() || name.starts_with(&partial) {
                Some((0, 0.0, name))
            } else if name.contains(&partial) {
                Some((1, 0.0, name))
            } else {
                let similarity = strsim::jaro_winkler(&partial, name);
                (similarity >= 0.8).then_some((2, -similarity, name))
            }
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(b.2)));
    scored
        .into_iter()
        .take(limit)
        .map(|(_, _, name)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_uptime_to_blocks() {
        assert_eq!(
            sparkline(&[Some(100.0), Some(0.0), None, Some(50.0), Some(99.0)]),
            "█▁·▅█"
        );
    }

    #[test]
    fn suggestions_rank_prefix_then_substring_then_typos() {
        let text: String = [
            "payments-api",
            "payments-db",
            "core-payments",
            "search",
            "billing",
        ]
        .iter()
        .map(|n| format!("[[integration]]\nname = \"{n}\"\nurl = \"http://127.0.0.1:9/\"\n"))
        .collect();
        let config = crate::config::parse(
            &text,
            "t.toml",
            None,
            &crate::config::Environment::default(),
        )
        .unwrap();
        assert_eq!(
            suggest_integrations(&config, "pay", 25),
            ["payments-api", "payments-db", "core-payments"]
        );
        assert_eq!(suggest_integrations(&config, "serch", 25), ["search"]);
        assert_eq!(suggest_integrations(&config, "", 2).len(), 2);
        assert!(suggest_integrations(&config, "zzz", 25).is_empty());
    }
}
