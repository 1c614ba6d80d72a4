//! The control-plane service: the one place the fronts (Discord, the REST API, the command line,
//! the scheduler) ask about integrations and act on them, so they all answer from the same code.
//!
//! - [`ControlPlane::invoke`] is the path of every command, button, API call and scheduled job:
//!   the caller's rate limit, then the access decision, then the action, then one audit entry
//!   whatever happened, naming the permission asked for and what allowed it.
//! - Answers are values (`status::StatusDetail`, `alerts::Silenced`, `perms::GrantChanged`, ...)
//!   and errors are one [`CommandError`]; each front renders both its own way. Nothing here
//!   writes markup or names a front's commands.
//! - [`status_overview`] answers from stored state and rollups only; it never waits for a live
//!   check.

mod actions;
mod alerts;
mod apikeys;
mod error;
mod figures;
mod perms;
mod status;
mod sync;

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::access::{Allowed, Caller, Denied, Grant, Permission, Policy};
use crate::audit::{AuditEntry, AuditPage, AuditQuery, InvocationOption, Outcome, redact};
use crate::config::{CommandRate, Config};
use crate::model::{Actor, Snowflake};
use crate::monitor::Engine;
use crate::store::{Store, StoreError};

pub use actions::{ActionInfo, ActionRequest, step_options};
pub use alerts::{
    AlertsOverview, BUTTON_SILENCE, IncidentAcked, IncidentPage, NoticeSilenced, REASON_LIMIT,
    Silenced, Unsilenced,
};
pub use apikeys::{ApiKeyRevoked, CreatedApiKey};
pub use error::{CommandError, Invalid};
pub use figures::DAY_FIGURES_MAX_AGE;
pub use perms::{GrantChange, GrantChanged};
pub use status::{
    Chart, HourFigures, IntegrationHistory, ListStamp, OverviewPage, RECENT_CHECKS, StatusDetail,
    StatusRow, WindowFigures, chart_data, overview_rows, status_detail, status_overview,
    suggest_integrations,
};
pub use sync::{HISTORY_PAGE, JobSummary, SyncHistory};

/// One command, button press, API call or scheduled job, as a front received it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Who, as the audit log names them.
    pub actor: Actor,
    /// Who, with the facts that decide their permissions.
    pub caller: Caller,
    /// Where (a Discord channel), if anywhere.
    pub channel: Option<Snowflake>,
    /// The command path (`status`, `perms grant`), button (`status page`) or API operation.
    pub command: String,
    /// The permission it needs; `None` for what every caller may run (`/help`).
    pub permission: Option<Permission>,
    /// The options given, typed; secret ones are redacted before anything stores them.
    pub options: Vec<InvocationOption>,
    /// When it arrived.
    pub received: std::time::Instant,
}

/// The control plane: the one path every front goes through. It applies the per-caller rate
/// limit, asks the access policy, runs the action, and writes one audit entry whatever the
/// outcome, so a Discord command and a REST call are checked and recorded alike. It also owns
/// what the answers are made of: the running config (swapped on reload), the engine's live
/// states, the store, and the 24-hour figures of the full list (`figures.rs`).
pub struct ControlPlane {
    store: Store,
    engine: Option<Engine>,
    config: std::sync::RwLock<Arc<Config>>,
    /// Configs taken by [`ControlPlane::reload`] since the start.
    reloads: std::sync::atomic::AtomicU64,
    command_grants: std::sync::RwLock<Vec<Grant>>,
    limiter: std::sync::RwLock<Arc<MemberLimiter>>,
    /// The per-key limiter of REST API calls (`[api].rate`), apart from members' commands.
    api_limiter: std::sync::RwLock<Arc<MemberLimiter>>,
    alerts: Option<Arc<crate::alerts::Alerts>>,
    syncs: Option<Arc<crate::sync::Syncs>>,
    actions: Option<Arc<crate::actions::Actions>>,
    action_changes: tokio::sync::broadcast::Sender<String>,
    action_deadlines: tokio::sync::Notify,
    audit_sink: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<AuditEntry>>,
    /// The 24-hour figures of the full list, at most [`DAY_FIGURES_MAX_AGE`] old.
    day: figures::DayFigures,
}

/// The per-caller command limiter, with the rate it was built from (so a reload only replaces
/// it, and forgets who spent what, when the rate changed). Keyed by the actor's kind and id.
struct MemberLimiter {
    rate: CommandRate,
    limiter: DefaultKeyedRateLimiter<String>,
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
            reloads: std::sync::atomic::AtomicU64::new(0),
            command_grants: std::sync::RwLock::new(command_grants),
            limiter: std::sync::RwLock::new(Arc::new(MemberLimiter::new(config.bot.command_rate))),
            api_limiter: std::sync::RwLock::new(Arc::new(MemberLimiter::new(config.api.rate))),
            alerts: None,
            syncs: None,
            actions: None,
            action_changes: tokio::sync::broadcast::channel(256).0,
            action_deadlines: tokio::sync::Notify::new(),
            audit_sink: std::sync::OnceLock::new(),
            day: figures::DayFigures::default(),
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
    /// status is public, and the command and API rates all follow it from the next invocation
    /// on.
    pub fn reload(&self, config: &Config) {
        for (limiter, rate) in [
            (&self.limiter, config.bot.command_rate),
            (&self.api_limiter, config.api.rate),
        ] {
            if limiter.read().expect("limiter lock").rate != rate {
                *limiter.write().expect("limiter lock") = Arc::new(MemberLimiter::new(rate));
            }
        }
        *self.config.write().expect("config lock") = Arc::new(config.clone());
        self.reloads
            .fetch_add(1, std::sync::atomic::Ordering::Release);
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

    /// A page of the audit log.
    pub async fn audit_page(&self, query: &AuditQuery) -> Result<AuditPage, CommandError> {
        Ok(self.store.audit_page(query).await?)
    }

    /// Runs `action` for `invocation` if the caller is within the rate limit and holds the
    /// invocation's permission, and records the outcome in the audit log: the permission it
    /// needed, what allowed it, how it ended.
    pub async fn invoke<T, F, Fut>(
        &self,
        invocation: &Invocation,
        action: F,
    ) -> Result<T, CommandError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, CommandError>>,
    {
        let (allowed, result) = match self.admit(invocation) {
            Ok(allowed) => (allowed, action().await),
            Err(err) => (None, Err(err)),
        };
        self.audit(invocation, allowed, result.as_ref().err()).await;
        result
    }

    /// The rate limit, then the access decision: what allowed the invocation (`None` for what
    /// every caller may run), or why not.
    fn admit(&self, invocation: &Invocation) -> Result<Option<Allowed>, CommandError> {
        if invocation.caller != Caller::Local {
            let (kind, id, _) = invocation.actor.parts();
            // API keys have their own rate (`[api].rate`): a dashboard polls more than a person.
            let limiter = match invocation.caller {
                Caller::ApiKey { .. } => &self.api_limiter,
                _ => &self.limiter,
            };
            let limiter = limiter.read().expect("limiter lock").clone();
            if let Err(not_until) = limiter.limiter.check_key(&format!("{kind}:{id}")) {
                return Err(CommandError::RateLimited {
                    retry_in: not_until.wait_time_from(DefaultClock::default().now()),
                });
            }
        }
        match invocation.permission {
            Some(permission) => self
                .policy()
                .admit(&invocation.caller, permission)
                .map(Some)
                .map_err(CommandError::Denied),
            // Open to every caller, but a Discord member must ask from a server.
            None => match &invocation.caller {
                Caller::Member(member) if member.guild.is_none() => {
                    Err(CommandError::Denied(Denied::DirectMessage))
                }
                _ => Ok(None),
            },
        }
    }

    async fn audit(
        &self,
        invocation: &Invocation,
        allowed: Option<Allowed>,
        error: Option<&CommandError>,
    ) {
        let entry = AuditEntry {
            at: crate::model::now(),
            guild: invocation.caller.guild(),
            channel: invocation.channel,
            actor: invocation.actor.clone(),
            command: invocation.command.clone(),
            options: redact(&invocation.options),
            permission: invocation.permission,
            allowed,
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
}
