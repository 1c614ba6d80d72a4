//! `/status` and its REST twin: the health of every integration (a page of the overview, worst
//! first) or of one in detail (24-hour, 7-day and 30-day figures, the hourly uptime, the open
//! incident), its chart (a PNG), and a live re-check. Answers are values; the fronts draw them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CommandError, ControlPlane, Invalid};
use crate::chart::{self, ChartData, ChartPeriod, ChartPoint, ChartSize, IncidentSpan};
use crate::config::Config;
use crate::model::{ECHO_LIMIT, IntegrationState, State};
use crate::monitor::RecheckError;
use crate::store::rollup::Aggregate;
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
    Ok(overview_rows(config, &states, &stats, now))
}

/// The overview from states and 24-hour figures already at hand.
pub fn overview_rows(
    config: &Config,
    states: &HashMap<String, IntegrationState>,
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
    // Names are unique, so an unstable sort gives the one order.
    rows.sort_unstable_by(|a, b| {
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
        let (page, pages, shown) = pager(rows.len(), page, per_page);
        OverviewPage {
            counts: State::ALL
                .iter()
                .map(|state| (*state, rows.iter().filter(|r| r.state == *state).count()))
                .collect(),
            total: rows.len(),
            worst: rows.first().map_or(State::Up, |r| r.state),
            rows: rows[shown].to_vec(),
            page,
            pages,
        }
    }
}

/// The one pager: for `total` items shown `per_page` at a time, the page asked for (clamped to
/// the last, 0-based), how many pages there are (at least 1), and which items it shows.
pub fn pager(total: usize, page: usize, per_page: usize) -> (usize, usize, std::ops::Range<usize>) {
    let per_page = per_page.max(1);
    let pages = total.div_ceil(per_page).max(1);
    let page = page.min(pages - 1);
    let start = (page * per_page).min(total);
    (page, pages, start..(start + per_page).min(total))
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
        latency_p95_ms: day
            .and_then(super::super::store::WindowStats::latency_p95_ms)
            .map(round1),
        uptime_24h: day
            .and_then(super::super::store::WindowStats::uptime_pct)
            .map(round1),
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

impl ControlPlane {
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
            let (page, pages, shown) = pager(order.len(), page, per_page);
            let rows = order[shown]
                .iter()
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
            return Err(Invalid::NoEngine.into());
        };
        match engine.recheck(name).await {
            Ok(_) => self.detail(name, crate::model::now()).await,
            Err(RecheckError::Unknown) => Err(unknown_integration(&self.config(), name)),
            Err(RecheckError::Paused) => Err(Invalid::Paused {
                name: name.to_string(),
            }
            .into()),
            Err(RecheckError::Stopped) => Err(Invalid::Stopped {
                name: name.to_string(),
            }
            .into()),
        }
    }
}

/// One hour of an integration's checks, from its hourly rollup (for charts).
#[derive(Debug, Clone, PartialEq)]
pub struct HourFigures {
    /// When the hour began.
    pub start: DateTime<Utc>,
    /// Checks that hour.
    pub checks: i64,
    /// Percent that passed (`None` without checks).
    pub uptime_pct: Option<f64>,
    /// Estimated median latency (ms).
    pub latency_p50_ms: Option<f64>,
    /// Estimated 95th percentile latency (ms).
    pub latency_p95_ms: Option<f64>,
}

/// One integration with what a dashboard charts: the detail, the last 24 hours hour by hour
/// (oldest first), and its latest checks (newest first).
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationHistory {
    /// What `/status <integration>` shows.
    pub detail: StatusDetail,
    /// The last 24 hours, oldest first, the current hour last.
    pub hours: Vec<HourFigures>,
    /// The latest checks, newest first.
    pub recent_checks: Vec<crate::model::CheckResult>,
}

/// How many of the latest checks [`ControlPlane::history`] returns.
pub const RECENT_CHECKS: u32 = 50;

/// What [`ControlPlane::status_list`] shows besides its figures and last-check times: two
/// stamps differ when a state changed, the config was reloaded, or an incident opened, was
/// notified or resolved in between. A front that keeps a rendered list (the REST API's
/// `GET /integrations`) renders it again when the stamp it was rendered under differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStamp {
    /// Transitions the engine announced (0 without an engine: the stored states are read).
    transitions: u64,
    /// Configs reloaded.
    reloads: u64,
    /// The open incidents: id and notice, oldest first.
    open: Vec<(i64, Option<i64>)>,
}

impl ControlPlane {
    /// The list's stamp now (see [`ListStamp`]): two counters and one indexed read of the open
    /// incidents. Taken before the list it stamps is read, so a change that lands in between
    /// makes the next stamp differ.
    pub async fn status_list_stamp(&self) -> Result<ListStamp, CommandError> {
        let transitions = self
            .engine
            .as_ref()
            .map_or(0, crate::monitor::Engine::transitions_announced);
        let reloads = self.reloads.load(std::sync::atomic::Ordering::Acquire);
        let open = self.store.open_incident_ids().await?;
        Ok(ListStamp {
            transitions,
            reloads,
            open,
        })
    }

    /// Every integration's overview line (worst state first, then by name) with its open
    /// incident: what a dashboard's table shows. States (live when the engine runs), last
    /// checks and incidents are read on every call; the 24-hour figures are the plane's kept
    /// ones, at most [`super::DAY_FIGURES_MAX_AGE`] old.
    pub async fn status_list(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(StatusRow, Option<crate::store::alerts::OpenIncident>)>, CommandError> {
        let config = self.config();
        let day = self.day.get(&self.store, now).await?;
        // With an engine, rows are built from its states in place: copying 10,000 states
        // first cost as much as building the rows, under the same lock.
        let rows = if let Some(engine) = &self.engine {
            engine.with_states(|states| overview_rows(&config, states, &day, now))
        } else {
            let states = self
                .store
                .load_states()
                .await?
                .into_iter()
                .map(|state| (state.integration.clone(), state))
                .collect();
            overview_rows(&config, &states, &day, now)
        };
        let mut open: HashMap<String, crate::store::alerts::OpenIncident> = HashMap::new();
        for incident in self.store.open_incidents().await? {
            // Oldest first, so the newest open incident of an integration wins.
            open.insert(incident.integration.clone(), incident);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let incident = open.remove(&row.name);
                (row, incident)
            })
            .collect())
    }

    /// One integration in detail, with its hourly figures and latest checks.
    pub async fn history(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<IntegrationHistory, CommandError> {
        let detail = self.detail(name, now).await?;
        let current = crate::store::rollup::bucket_of(now.timestamp_millis(), HOUR_SECS);
        let hours = self
            .store
            .hourly(name, 24, now)
            .await?
            .into_iter()
            .enumerate()
            .map(|(index, hour)| HourFigures {
                start: DateTime::from_timestamp(current - (23 - index as i64) * HOUR_SECS, 0)
                    .unwrap_or(now),
                checks: hour.as_ref().map_or(0, |h| h.count),
                uptime_pct: hour.as_ref().and_then(Aggregate::uptime_pct).map(round1),
                latency_p50_ms: hour.as_ref().and_then(|h| h.quantile(0.5)).map(round1),
                latency_p95_ms: hour.as_ref().and_then(|h| h.quantile(0.95)).map(round1),
            })
            .collect();
        Ok(IntegrationHistory {
            detail,
            hours,
            recent_checks: self.store.latest_results(name, RECENT_CHECKS).await?,
        })
    }
}

/// One integration's status chart: latency p50/p95 and uptime over the period, DOWN and
/// DEGRADED spans shaded, as a PNG of [`ChartSize::STANDARD`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    /// The integration.
    pub integration: String,
    /// The period drawn.
    pub period: ChartPeriod,
    /// The PNG.
    pub png: Vec<u8>,
}

impl Chart {
    /// A file name for the PNG (`payments-api-24h.png`): integration names are lower-case
    /// letters, digits, `-` and `_`, so it needs no escaping anywhere.
    pub fn filename(&self) -> String {
        format!("{}-{}.png", self.integration, self.period.label())
    }
}

impl ControlPlane {
    /// The chart of `name` over the `period` ending now (see [`ControlPlane::status_chart_at`]).
    pub async fn status_chart(
        &self,
        name: &str,
        period: ChartPeriod,
    ) -> Result<Chart, CommandError> {
        self.status_chart_at(name, period, crate::model::now())
            .await
    }

    /// The chart of `name` over the `period` ending at `now`, from the rollups (one-minute rows
    /// for 24 hours, one-hour rows for 7 days) and the transitions. The PNG is drawn on tokio's
    /// blocking pool, never on the runtime's worker threads.
    pub async fn status_chart_at(
        &self,
        name: &str,
        period: ChartPeriod,
        now: DateTime<Utc>,
    ) -> Result<Chart, CommandError> {
        let data = chart_data(&self.config(), &self.store, name, period, now).await?;
        let png =
            tokio::task::spawn_blocking(move || chart::render_png(&data, ChartSize::STANDARD))
                .await
                .map_err(|err| CommandError::internal("chart", &err))?
                .map_err(|err| CommandError::internal("chart", &err))?;
        Ok(Chart {
            integration: name.to_string(),
            period,
            png,
        })
    }
}

/// An hour, in seconds (the rollups' resolution).
const HOUR_SECS: i64 = crate::store::rollup::HOUR;

/// What the chart of `name` over the `period` ending at `now` shows: a point per rollup row
/// whose bucket starts within the period, the DOWN and DEGRADED spans, and the uptime of every
/// check counted.
pub async fn chart_data(
    config: &Config,
    store: &Store,
    name: &str,
    period: ChartPeriod,
    now: DateTime<Utc>,
) -> Result<ChartData, CommandError> {
    if !config.integrations.iter().any(|i| i.name == name) {
        return Err(unknown_integration(config, name));
    }
    let start = now - chrono::Duration::from_std(period.length()).expect("a period fits");
    let resolution = period.resolution_secs();
    // The first bucket starting at or after `start`, so every point lies on the axis.
    let first = (start.timestamp() + resolution - 1).div_euclid(resolution) * resolution;
    let rows = store.rollups(name, resolution, first).await?;
    let mut total = Aggregate::default();
    let mut points = Vec::with_capacity(rows.len());
    for (bucket, aggregate) in &rows {
        total.merge(aggregate);
        let figures = (
            DateTime::from_timestamp(*bucket, 0),
            aggregate.quantile(0.5),
            aggregate.quantile(0.95),
            aggregate.uptime_pct(),
        );
        if let (Some(at), Some(p50_ms), Some(p95_ms), Some(uptime_pct)) = figures {
            points.push(ChartPoint {
                at,
                p50_ms,
                p95_ms,
                uptime_pct,
            });
        }
    }
    let (before, transitions) = store.state_history(name, start, now).await?;
    Ok(ChartData {
        integration: name.to_string(),
        period,
        end: now,
        points,
        incidents: IncidentSpan::from_transitions(before, &transitions, start, now),
        uptime_pct: total.uptime_pct(),
    })
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

/// The error for a name that is not configured, with the nearest names.
pub(super) fn unknown_integration(config: &Config, name: &str) -> CommandError {
    Invalid::UnknownIntegration {
        name: name.to_string(),
        suggestions: suggest_integrations(config, name, 3),
    }
    .into()
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
    fn the_pager_clamps_and_covers_every_item_once() {
        assert_eq!(pager(0, 3, 20), (0, 1, 0..0));
        assert_eq!(pager(45, 0, 20), (0, 3, 0..20));
        assert_eq!(pager(45, 2, 20), (2, 3, 40..45));
        assert_eq!(pager(45, 9, 20), (2, 3, 40..45));
        assert_eq!(pager(40, 1, 20), (1, 2, 20..40));
        assert_eq!(pager(5, 0, 0), (0, 5, 0..1));
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
