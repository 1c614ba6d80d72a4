//! The control-plane service: the one place the fronts (CLI, HTTP, and Discord in a later
//! release) ask about integrations, so they all answer from the same code.
//!
//! Status answers come from stored state and rollups only; they never wait for a live check.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::model::{IntegrationState, State};
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
    let mut rows: Vec<StatusRow> = config
        .integrations
        .iter()
        .map(|integration| {
            let state = states.get(&integration.name);
            let day = stats.get(&integration.name);
            let paused = !integration.enabled;
            StatusRow {
                name: integration.name.clone(),
                kind: integration.check.kind().to_string(),
                state: match state {
                    _ if paused => State::Paused,
                    Some(state) => state.state,
                    None => State::Unknown,
                },
                since: state.map_or(now, |s| s.since),
                last_check: state.and_then(|s| s.last_check.as_ref().map(|l| l.at)),
                last_error: state
                    .and_then(|s| s.last_check.as_ref())
                    .and_then(|l| l.message.clone()),
                latency_p95_ms: day.and_then(|d| d.latency_p95_ms()).map(round1),
                uptime_24h: day.and_then(|d| d.uptime_pct()).map(round1),
                tags: integration.tags.clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        severity(a.state)
            .cmp(&severity(b.state))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(rows)
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
