//! patchbay: a self-hosted chat-ops control plane for a team's integrations.
//!
//! Read [`ARCHITECTURE.md`](../ARCHITECTURE.md) first. In short: the modules stand on floors
//! (`model` and the other leaf tools at the bottom, the fronts at the top) and every `crate::`
//! path points down (`tests/layering.rs` checks it); domain modules (model, check, config,
//! store, monitor, alerts, service) know nothing of Discord or HTTP servers; the fronts
//! (`discord`, `http`, `cli`) are thin layers over [`service`], which answers in values.

/// Permissions, grants, callers and the access decision every front asks for.
pub mod access;
/// Actions: running Retool workflows once requested, confirmed and approved (lease, cooldown, call).
pub mod actions;
/// Incidents, routing, the alert outbox and its dispatcher.
pub mod alerts;
/// REST API keys: their shape, hashing, names and permissions.
pub mod apikey;
/// Wiring for `patchbay run`: opens the store, starts the engine and the fronts, handles signals.
pub mod app;
/// The audit log's vocabulary: entries, outcomes, typed and redacted options.
pub mod audit;
/// Status charts: latency and uptime over 24 hours or 7 days, incidents shaded, as a PNG.
pub mod chart;
/// What a check may ask of a response: conditions, the SSRF guard, TLS certificates.
pub mod check;
/// The command line (clap): `run` and the other subcommands commands.md lists.
pub mod cli;
/// Loading and validating `patchbay.toml` and the environment.
pub mod config;
/// The Discord front (the only module that imports serenity and poise).
pub mod discord;
/// `patchbay check --online`'s checks of Notion and Retool.
pub mod doctor;
/// Durations: the one grammar (`30s`, `5m`, `7d`) and the named formats.
pub mod duration;
/// The HTTP front: health, readiness and metrics (the only module that imports axum).
pub mod http;
/// Logging set-up (pretty or JSON lines).
pub mod logging;
/// Prometheus metrics.
pub mod metrics;
/// Shared vocabulary: ids, actors, states, severities, check results, transitions, alert views.
pub mod model;
/// The monitoring engine: scheduler, HTTP checks, state machine.
pub mod monitor;
/// The Notion client (API 2025-09-03), on the resilience layer.
pub mod notion;
/// The resilience layer every outbound API client goes through.
pub mod resilience;
/// The Retool client: starts workflows through their webhook triggers, on the resilience layer.
pub mod retool;
/// Values that must never be printed.
pub mod secret;
/// The control-plane service the fronts call: one invocation path, answers in values.
pub mod service;
/// The database.
pub mod store;
/// "Did you mean": the closest known name to one a user mistyped.
pub mod suggest;
/// Sync jobs: the Notion status board (and the incident log, fed by the alert pipeline).
pub mod sync;
