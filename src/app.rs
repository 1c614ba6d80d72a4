//! `patchbay run`: open the store, start the writer, the engine and the HTTP server, then wait
//! for signals. SIGHUP reloads the config (an invalid one is refused and the running one kept);
//! SIGTERM and SIGINT shut down gracefully: stop scheduling, finish in-flight checks (bounded),
//! flush pending writes, exit 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::alerts::Alerts;
use crate::alerts::dispatch::Dispatcher;
use crate::alerts::notice::{Courier, LogCourier};
use crate::config::{self, Config, Environment};
use crate::discord::courier::DiscordCourier;
use crate::http;
use crate::metrics::Metrics;
use crate::monitor::{Engine, EngineParts};
use crate::service::ControlPlane;
use crate::store::process_leases::{DatabaseHold, HoldOutcome, ProcessRole};
use crate::store::{Pruned, Retention, Store, lease};
use crate::sync::Syncs;
use crate::sync::incident_log::IncidentLog;

/// How often old results and rollups are pruned.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// A started patchbay: every part `patchbay run` starts, held so signals (or tests) can reload
/// and stop it.
pub struct Running {
    config: Config,
    store: Store,
    engine: Engine,
    plane: Arc<ControlPlane>,
    alerts: Arc<Alerts>,
    incident_log: Arc<IncidentLog>,
    address: std::net::SocketAddr,
    stops: Vec<CancellationToken>,
    /// Stopped in this order: the Discord front, the alert pipeline, then the engine, the HTTP
    /// server, retention and the writer.
    discord: Option<tokio::task::JoinHandle<()>>,
    discord_stop: CancellationToken,
    alert_tasks: Vec<tokio::task::JoinHandle<()>>,
    alerts_stop: CancellationToken,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
    retention: tokio::task::JoinHandle<()>,
    writer_task: tokio::task::JoinHandle<()>,
    /// This process's record in the database, released last.
    hold: DatabaseHold,
}

/// Starts everything `patchbay run` runs: the store, the writer, the engine, the HTTP server,
/// the alert pipeline and its dispatcher, the Discord front (with a token), and retention.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store = Store::open(&config.storage.url)
        .await
        .with_context(|| format!("opening the database {}", config.storage.url))?;
    let hold = hold_database(&store, &config.storage.url).await?;
    let (parts, writer_task) = EngineParts::from_config(store.clone(), &config);
    let metrics = parts.metrics.clone();
    let notion = parts.notion.clone();
    let notion_for_log = notion.clone();
    let engine = Engine::start(EngineParts {
        integrations: config.integrations.clone(),
        ..parts
    })
    .await
    .context("loading stored integration states")?;

    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding the HTTP server to {}", config.http.listen))?;
    let address = listener.local_addr()?;

    // Alerts: transitions become incidents and outbox rows; the dispatcher delivers them.
    let alerts = Arc::new(Alerts::new(store.clone(), &config));
    let alerts_stop = CancellationToken::new();
    let alerts_task = {
        let (alerts, transitions, stop) = (alerts.clone(), engine.subscribe(), alerts_stop.clone());
        tokio::spawn(async move { alerts.run(transitions, stop).await })
    };
    let dispatcher = Arc::new(
        Dispatcher::new(
            store.clone(),
            courier(&config, &metrics),
            config.alerts.webhook.is_none(),
            alerts.delivery_signal(),
            alerts.delivered_sender(),
        )
        .with_metrics(metrics.clone()),
    );
    let dispatcher_task = {
        let stop = alerts_stop.clone();
        tokio::spawn(async move { dispatcher.run(stop).await })
    };
    let plane = Arc::new(
        ControlPlane::new(&config, store.clone(), Some(engine.clone()))
            .await
            .context("loading the stored permission grants")?
            .with_alerts(alerts.clone())
            .with_syncs(Arc::new(Syncs::new(
                store.clone(),
                notion,
                Some(metrics.clone()),
            )))
            .with_actions(Arc::new(crate::actions::Actions::new(
                store.clone(),
                Arc::new(crate::retool::Retool::new(Some(metrics.clone()))),
            ))),
    );
    // The HTTP server starts once the control plane exists (the REST API calls it); the port
    // was bound above, so a busy one fails the start before anything else runs.
    tracing::info!(%address, "HTTP server listening (healthz, readyz, metrics, REST API)");
    let http_shutdown = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(
        listener,
        http::AppState {
            store: store.clone(),
            engine: engine.clone(),
            metrics: metrics.clone(),
            plane: plane.clone(),
            body_limit: config.api.body_limit,
            list_cache: Arc::default(),
        },
        http_shutdown.clone(),
    ));
    // Sync jobs with a schedule run on their own, as the scheduler, through the control plane;
    // incident logs follow the incidents' timelines as the alert pipeline commits them.
    let sync_stop = CancellationToken::new();
    tokio::spawn(plane.clone().run_schedules(sync_stop.clone()));
    // Action requests waiting for a confirmation or an approval expire on time.
    tokio::spawn(plane.clone().run_action_timers(sync_stop.clone()));
    let incident_log = Arc::new(IncidentLog::new(
        store.clone(),
        notion_for_log,
        &config,
        alerts.changes(),
    ));
    tokio::spawn(incident_log.clone().run(sync_stop.clone()));
    let discord_stop = CancellationToken::new();
    let discord = if config.bot.token.is_none() {
        tracing::info!(
            "DISCORD_TOKEN is not set: running headless (monitoring, HTTP server, and state changes as log lines)"
        );
        None
    } else {
        let front = crate::discord::run(plane.clone(), discord_stop.clone());
        Some(tokio::spawn(async move {
            // The bot keeps monitoring without Discord: a failed connection is logged, not fatal.
            if let Err(err) = front.await {
                tracing::error!(error = %format!("{err:#}"), "the Discord front stopped");
            }
        }))
    };
    if config.source.is_none() {
        tracing::warn!(
            "no config file (./patchbay.toml is absent and neither --config nor PATCHBAY_CONFIG is set): running with defaults and no integrations; see patchbay.example.toml"
        );
    }
    tracing::info!(
        integrations = config.integrations.len(),
        database = %config.storage.url,
        "patchbay started"
    );

    let retention_stop = CancellationToken::new();
    let retention = tokio::spawn(prune_periodically(
        store.clone(),
        config.storage.clone(),
        retention_stop.clone(),
    ));
    Ok(Running {
        config,
        store,
        engine,
        plane,
        alerts,
        incident_log,
        address,
        stops: vec![retention_stop, http_shutdown, sync_stop],
        discord,
        discord_stop,
        alert_tasks: vec![alerts_task, dispatcher_task],
        alerts_stop,
        http_task,
        retention,
        writer_task,
        hold,
    })
}

/// Records this bot in the database it runs on (`store::process_leases`), so `patchbay restore`
/// refuses while it runs and names it. A restore under way refuses the start; another bot on
/// the same database is logged (both would check, alert and write).
async fn hold_database(store: &Store, url: &str) -> anyhow::Result<DatabaseHold> {
    let outcome = store
        .hold_database(
            ProcessRole::Run,
            &lease::holder_id(),
            crate::model::now(),
            lease::holder_is_dead,
        )
        .await
        .with_context(|| format!("recording this process in the database {url}"))?;
    match outcome {
        HoldOutcome::Held { hold, others } => {
            for other in others {
                tracing::warn!(
                    other = %other,
                    "another patchbay runs on this database: both check, alert and write; stop one"
                );
            }
            Ok(hold)
        }
        HoldOutcome::Refused(holders) => {
            let holders: Vec<String> = holders.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "{} is replacing the database {url}: start patchbay once it has finished",
                holders.join(" and ")
            )
        }
    }
}

impl Running {
    /// The control plane (what the fronts call).
    pub fn plane(&self) -> &Arc<ControlPlane> {
        &self.plane
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The alert pipeline.
    pub fn alerts(&self) -> &Arc<Alerts> {
        &self.alerts
    }

    /// Where the HTTP server listens.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Applies a reloaded config (what SIGHUP does after validating the file): integrations,
    /// grants, routing and the rest; `[storage]` and `[http]` keep their running values.
    pub async fn reload(&mut self, new: Config) {
        if new.storage.url != self.config.storage.url
            || new.http.listen != self.config.http.listen
            || new.api.body_limit != self.config.api.body_limit
        {
            tracing::warn!(
                "[storage], [http] and [api].body_limit changes need a restart; the new integrations and [api].rate are applied"
            );
        }
        if new.bot.guilds != self.config.bot.guilds
            || new.bot.audit_channel != self.config.bot.audit_channel
        {
            tracing::warn!(
                "[bot] guilds and audit_channel changes need a restart; grants, public_status and command_rate are applied"
            );
        }
        let count = new.integrations.len();
        self.engine.apply(new.integrations.clone()).await;
        self.config = Config {
            storage: self.config.storage.clone(),
            http: self.config.http.clone(),
            ..new
        };
        self.plane.reload(&self.config);
        self.alerts.reload(&self.config);
        self.incident_log.reload(&self.config);
        tracing::info!(integrations = count, "config reloaded");
    }

    /// Stops gracefully: the Discord front, the alert pipeline (undelivered rows stay in the
    /// outbox for the next start), then scheduling, checks in flight (up to
    /// `[scheduler].shutdown_timeout`), the HTTP server, and the writer's last batch.
    pub async fn shutdown(self) {
        self.discord_stop.cancel();
        if let Some(discord) = self.discord {
            bounded("the Discord front", discord).await;
        }
        self.alerts_stop.cancel();
        for task in self.alert_tasks {
            bounded("the alert pipeline", task).await;
        }
        let abandoned = self
            .engine
            .shutdown(self.config.scheduler.shutdown_timeout)
            .await;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "checks still running at the shutdown deadline were abandoned"
            );
        }
        for stop in &self.stops {
            stop.cancel();
        }
        bounded("the HTTP server", self.http_task).await;
        bounded("the retention task", self.retention).await;
        // `Engine::shutdown` flushed the writer's last batch, and no check runs any more. The
        // writer ends when the last engine handle is dropped, but a Discord event task that
        // serenity has not dropped yet can still hold one (through the control plane), so it
        // is given a moment and then stopped: nothing is pending.
        drop(self.plane);
        drop(self.alerts);
        drop(self.engine);
        let mut writer = self.writer_task;
        if tokio::time::timeout(Duration::from_secs(1), &mut writer)
            .await
            .is_err()
        {
            tracing::debug!(
                "the storage writer is still referenced; stopping it after its final flush"
            );
            writer.abort();
        }
        if let Err(err) = self.hold.release().await {
            tracing::warn!(error = %err, "could not remove this process's record from the database");
        }
        bounded("the database pool", self.store.close()).await;
        tracing::info!("patchbay stopped");
    }
}

/// How long one part may take to stop before shutdown goes on without it.
const STOP_STEP: Duration = Duration::from_secs(10);

/// Waits for `part` to stop, at most [`STOP_STEP`]: SIGTERM must end the process even if one
/// part hangs (what is unsaved is in the outbox or was flushed already).
async fn bounded<T>(what: &str, part: impl std::future::Future<Output = T>) {
    if tokio::time::timeout(STOP_STEP, part).await.is_err() {
        tracing::warn!(
            part = what,
            "did not stop within 10 s; shutting down without it"
        );
    }
}

/// Runs the bot until SIGTERM or SIGINT. `config_path` and `required` say where SIGHUP reloads
/// the config from.
pub async fn run(config: Config, config_path: PathBuf, required: bool) -> anyhow::Result<()> {
    // Handlers first: a SIGTERM during start-up then stops gracefully instead of killing the
    // process with work half-started.
    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut running = start(config).await?;
    loop {
        tokio::select! {
            _ = hangup.recv() => reload(&mut running, &config_path, required).await,
            _ = terminate.recv() => { tracing::info!("SIGTERM received; shutting down"); break; }
            _ = interrupt.recv() => { tracing::info!("SIGINT received; shutting down"); break; }
        }
    }
    running.shutdown().await;
    Ok(())
}

async fn reload(running: &mut Running, path: &std::path::Path, required: bool) {
    tracing::info!(path = %path.display(), "SIGHUP received; reloading the config");
    match config::load(path, required, &Environment::from_process()) {
        Ok(new) => running.reload(new).await,
        Err(errors) => {
            for error in &errors.0 {
                tracing::error!(%error, "config reload refused");
            }
            tracing::error!(
                problems = errors.0.len(),
                "the new config is invalid; keeping the running one"
            );
        }
    }
}

/// Where alert notifications go: a Discord webhook when one is configured, else the bot's
/// REST API when a token is set, else the log. The Discord courier's upstream is registered
/// with the metrics, so its breaker shows as `patchbay_circuit_state{upstream="discord"}`.
fn courier(config: &Config, metrics: &Metrics) -> Arc<dyn Courier> {
    match DiscordCourier::for_config(config) {
        Some(discord) => {
            metrics.watch_upstream(discord.upstream().clone());
            Arc::new(discord)
        }
        None => Arc::new(LogCourier),
    }
}

/// Prunes every [`RETENTION_EVERY`] (see [`retention_pass`]).
async fn prune_periodically(store: Store, storage: config::StorageConfig, stop: CancellationToken) {
    loop {
        retention_pass(&store, &storage, Utc::now()).await;
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}

/// `[storage]`'s retentions of check history, as the store takes them.
pub fn retention(storage: &config::StorageConfig) -> Retention {
    Retention {
        results: storage.retention,
        minute_rollups: storage.minute_rollup_retention,
        hourly_rollups: storage.rollup_retention,
    }
}

/// One retention pass at `now`, as `patchbay run` makes one every hour (and
/// `benches/retention.rs` on simulated time): raw results (`retention`), one-minute rollups
/// (`minute_rollup_retention`), one-hour rollups, transitions and resolved incidents
/// (`rollup_retention`), delivered alert rows (`retention`), and the audit log
/// (`audit_retention`). A failed step is logged and the others still run; returns what the
/// check-history step deleted, when it succeeded.
pub async fn retention_pass(
    store: &Store,
    storage: &config::StorageConfig,
    now: DateTime<Utc>,
) -> Option<Pruned> {
    let pruned = match store.prune(now, &retention(storage)).await {
        Ok(pruned) => {
            tracing::debug!(
                results = pruned.results,
                minute_rollups = pruned.minute_rollups,
                hourly_rollups = pruned.hourly_rollups,
                "retention pass"
            );
            Some(pruned)
        }
        Err(err) => {
            tracing::warn!(error = %err, "retention pass failed");
            None
        }
    };
    let ago = |length: Duration| now - chrono::Duration::from_std(length).unwrap_or_default();
    if let Err(err) = store
        .prune_alerts(ago(storage.retention), ago(storage.rollup_retention))
        .await
    {
        tracing::warn!(error = %err, "alert retention pass failed");
    }
    if let Err(err) = store.prune_audit(now, storage.audit_retention).await {
        tracing::warn!(error = %err, "audit retention pass failed");
    }
    pruned
}
