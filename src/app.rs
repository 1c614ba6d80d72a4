//! `patchbay run`: open the store, start the writer, the engine and the HTTP server, then wait
//! for signals. SIGHUP reloads the config (an invalid one is refused and the running one kept);
//! SIGTERM and SIGINT shut down gracefully: stop scheduling, finish in-flight checks (bounded),
//! flush pending writes, exit 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, Environment};
use crate::http;
use crate::metrics::Metrics;
use crate::monitor::Engine;
use crate::monitor::http_check::HttpChecker;
use crate::service::ControlPlane;
use crate::store::{Store, writer};

/// How often old results and rollups are pruned.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Runs the bot until SIGTERM or SIGINT. `config_path` and `required` say where SIGHUP reloads
/// the config from.
pub async fn run(config: Config, config_path: PathBuf, required: bool) -> anyhow::Result<()> {
    let store = Store::open(&config.storage.url)
        .await
        .with_context(|| format!("opening the database {}", config.storage.url))?;
    let metrics = Arc::new(Metrics::new());
    let (writer, writer_task) = writer::spawn(
        store.clone(),
        config.storage.batch_size,
        config.storage.flush_interval,
        metrics.clone(),
    );
    let engine = Engine::start(
        store.clone(),
        writer,
        metrics.clone(),
        Arc::new(HttpChecker::new()),
        config.scheduler.concurrency,
        config.integrations.clone(),
    )
    .await
    .context("loading stored integration states")?;

    let listener = TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding the HTTP server to {}", config.http.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "HTTP server listening (healthz, readyz, metrics)");
    let http_shutdown = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(
        listener,
        http::AppState {
            store: store.clone(),
            engine: engine.clone(),
            metrics: metrics.clone(),
        },
        http_shutdown.clone(),
    ));

    let plane = Arc::new(
        ControlPlane::new(&config, store.clone(), Some(engine.clone()))
            .await
            .context("loading the stored permission grants")?,
    );
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
        config.storage.retention,
        config.storage.rollup_retention,
        retention_stop.clone(),
    ));

    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut running = config;
    loop {
        tokio::select! {
            _ = hangup.recv() => reload(&engine, &plane, &mut running, &config_path, required).await,
            _ = terminate.recv() => { tracing::info!("SIGTERM received; shutting down"); break; }
            _ = interrupt.recv() => { tracing::info!("SIGINT received; shutting down"); break; }
        }
    }

    retention_stop.cancel();
    discord_stop.cancel();
    if let Some(discord) = discord {
        let _ = discord.await;
    }
    let abandoned = engine.shutdown(running.scheduler.shutdown_timeout).await;
    if abandoned > 0 {
        tracing::warn!(
            abandoned,
            "checks still running at the shutdown deadline were abandoned"
        );
    }
    http_shutdown.cancel();
    let _ = http_task.await;
    let _ = retention.await;
    // The engine (also held by the control plane) held the last writer handle; dropping both
    // lets the writer finish.
    drop(plane);
    drop(engine);
    let _ = writer_task.await;
    store.close().await;
    tracing::info!("patchbay stopped");
    Ok(())
}

async fn reload(
    engine: &Engine,
    plane: &ControlPlane,
    running: &mut Config,
    path: &std::path::Path,
    required: bool,
) {
    tracing::info!(path = %path.display(), "SIGHUP received; reloading the config");
    match config::load(path, required, &Environment::from_process()) {
        Ok(new) => {
            if new.storage.url != running.storage.url || new.http.listen != running.http.listen {
                tracing::warn!(
                    "[storage] and [http] changes need a restart; the new integrations are applied"
                );
            }
            if new.bot.guilds != running.bot.guilds
                || new.bot.audit_channel != running.bot.audit_channel
            {
                tracing::warn!(
                    "[bot] guilds and audit_channel changes need a restart; grants, public_status and command_rate are applied"
                );
            }
            let count = new.integrations.len();
            engine.apply(new.integrations.clone()).await;
            *running = Config {
                storage: running.storage.clone(),
                http: running.http.clone(),
                ..new
            };
            plane.reload(running);
            tracing::info!(integrations = count, "config reloaded");
        }
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

async fn prune_periodically(
    store: Store,
    retention: Duration,
    rollup_retention: Duration,
    stop: CancellationToken,
) {
    loop {
        match store.prune(Utc::now(), retention, rollup_retention).await {
            Ok(pruned) => tracing::debug!(
                results = pruned.results,
                rollups = pruned.rollups,
                "retention pass"
            ),
            Err(err) => tracing::warn!(error = %err, "retention pass failed"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RETENTION_EVERY) => {}
        }
    }
}
