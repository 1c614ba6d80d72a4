//! `GET /integrations` (flat rows for a Retool table), `GET /integrations/{name}` (the detail,
//! the last 24 hours hour by hour, the latest checks) and `POST /integrations/{name}/recheck`:
//! `/status` and its "Re-check now" button.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::Key;
use super::error::{ApiError, Named};
use super::{text, time};
use crate::access::Permission;
use crate::http::AppState;
use crate::service::{CommandError, ControlPlane, ListStamp, StatusDetail, StatusRow};
use crate::store::alerts::OpenIncident;

/// One integration as a table row.
#[derive(Debug, Serialize)]
pub(super) struct IntegrationRow {
    name: String,
    kind: String,
    state: crate::model::State,
    since: String,
    last_checked: Option<String>,
    last_error: Option<String>,
    latency_p95_ms: Option<f64>,
    uptime_24h: Option<f64>,
    open_incident: Option<i64>,
    open_incident_since: Option<String>,
    tags: Vec<String>,
}

fn row(row: StatusRow, incident: Option<&OpenIncident>) -> IntegrationRow {
    IntegrationRow {
        name: row.name,
        kind: row.kind,
        state: row.state,
        since: time(row.since),
        last_checked: row.last_check.map(time),
        last_error: row.last_error,
        latency_p95_ms: row.latency_p95_ms,
        uptime_24h: row.uptime_24h,
        open_incident: incident.and_then(|i| i.notice),
        open_incident_since: incident.map(|i| time(i.opened_at)),
        tags: row.tags,
    }
}

/// Room for one row of the list in JSON (a row is about 230 bytes), so the whole list is
/// written into one buffer allocated once.
const ROW_BYTES: usize = 256;

/// How long a rendered list is served again while its [`ListStamp`] holds: the most its
/// last-check times and figures lag behind (states and incidents never do).
pub const LIST_MAX_AGE: Duration = Duration::from_secs(1);

/// The full list as last rendered, served again to every caller for up to [`LIST_MAX_AGE`]
/// while nothing it shows besides last-check times and figures changed (its [`ListStamp`]).
///
/// At 10,000 integrations the list is 2.3 MB of JSON and rendering it costs about 15 ms of a
/// core; with 8 dashboards polling at once on 2 cores, rendering it for each made the p99
/// 118 ms (`benches/api.rs`). Every caller is still checked, rate limited and audited: only
/// the bytes are shared.
#[derive(Default)]
pub struct ListCache {
    /// Held while the list is rendered, so callers that find it stale wait for one rendering
    /// instead of each making their own.
    kept: tokio::sync::Mutex<Option<RenderedList>>,
}

struct RenderedList {
    at: Instant,
    stamp: ListStamp,
    body: Bytes,
}

impl ListCache {
    /// The list's body: the kept one while it is fresh, else rendered now and kept.
    async fn body(&self, plane: &ControlPlane) -> Result<Bytes, CommandError> {
        // The stamp is taken before the list is read: a change after it makes the next
        // caller's stamp differ, so it is never hidden for longer than the change takes.
        let stamp = plane.status_list_stamp().await?;
        let mut kept = self.kept.lock().await;
        if let Some(list) = kept.as_ref()
            && list.stamp == stamp
            && list.at.elapsed() < LIST_MAX_AGE
        {
            return Ok(list.body.clone());
        }
        let at = Instant::now();
        let body = render_list(plane.status_list(crate::model::now()).await?)?;
        *kept = Some(RenderedList {
            at,
            stamp,
            body: body.clone(),
        });
        Ok(body)
    }
}

/// The list as JSON, serialized into a buffer sized for it rather than through `Json`, which
/// grows its buffer from 128 bytes with one small write per token: at 10,000 integrations
/// (2.3 MB) those writes and copies were the largest item of the list's CPU profile under load
/// (`benches/api.rs`).
fn render_list(rows: Vec<(StatusRow, Option<OpenIncident>)>) -> Result<Bytes, CommandError> {
    let rows: Vec<IntegrationRow> = rows
        .into_iter()
        .map(|(status, incident)| row(status, incident.as_ref()))
        .collect();
    let mut body = Vec::with_capacity(rows.len() * ROW_BYTES + 2);
    serde_json::to_writer(&mut body, &rows)
        .map_err(|err| CommandError::internal("serialize", &err))?;
    Ok(Bytes::from(body))
}

/// `GET /api/v1/integrations`: every caller's permission checked and audited, the body shared
/// through the [`ListCache`].
pub(super) async fn list(key: Key, State(state): State<AppState>) -> Result<Response, ApiError> {
    let invocation = key.invocation("status", Permission::StatusView, Vec::new());
    let plane = &state.plane;
    let body = plane
        .invoke(&invocation, || state.list_cache.body(plane))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Figures over one window.
#[derive(Debug, Serialize)]
struct WindowFigures {
    window: &'static str,
    checks: i64,
    uptime_pct: f64,
    latency_p50_ms: f64,
    latency_p95_ms: f64,
}

/// One hour, for charts.
#[derive(Debug, Serialize)]
struct Hour {
    start: String,
    checks: i64,
    uptime_pct: Option<f64>,
    latency_p50_ms: Option<f64>,
    latency_p95_ms: Option<f64>,
}

/// One check.
#[derive(Debug, Serialize)]
struct Check {
    at: String,
    success: bool,
    latency_ms: f64,
    status: Option<u16>,
    error_kind: Option<String>,
    message: Option<String>,
}

/// `GET /integrations/{name}`.
#[derive(Debug, Serialize)]
pub(super) struct Detail {
    #[serde(flatten)]
    row: IntegrationRow,
    windows: Vec<WindowFigures>,
    hourly: Vec<Hour>,
    recent_checks: Vec<Check>,
}

fn windows(detail: &StatusDetail) -> Vec<WindowFigures> {
    detail
        .windows
        .iter()
        .filter_map(|(window, figures)| {
            figures.as_ref().map(|f| WindowFigures {
                window: window.label(),
                checks: f.checks,
                uptime_pct: f.uptime_pct,
                latency_p50_ms: f.latency_p50_ms,
                latency_p95_ms: f.latency_p95_ms,
            })
        })
        .collect()
}

/// `GET /api/v1/integrations/{name}`.
pub(super) async fn show(
    key: Key,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Detail>, ApiError> {
    let invocation = key.invocation(
        "status",
        Permission::StatusView,
        vec![text("integration", &name)],
    );
    let plane = &state.plane;
    let history = plane
        .invoke(&invocation, || plane.history(&name, crate::model::now()))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    let detail = &history.detail;
    Ok(Json(Detail {
        row: row(detail.row.clone(), detail.incident.as_ref()),
        windows: windows(detail),
        hourly: history
            .hours
            .iter()
            .map(|h| Hour {
                start: time(h.start),
                checks: h.checks,
                uptime_pct: h.uptime_pct,
                latency_p50_ms: h.latency_p50_ms,
                latency_p95_ms: h.latency_p95_ms,
            })
            .collect(),
        recent_checks: history
            .recent_checks
            .into_iter()
            .map(|c| Check {
                at: time(c.at),
                success: c.success,
                latency_ms: c.latency_ms,
                status: c.status,
                error_kind: c.error_kind,
                message: c.message,
            })
            .collect(),
    }))
}

/// `POST /api/v1/integrations/{name}/recheck`: runs a check now and answers the row after it.
pub(super) async fn recheck(
    key: Key,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<IntegrationRow>, ApiError> {
    let invocation = key.invocation(
        "status recheck",
        Permission::StatusRecheck,
        vec![text("integration", &name)],
    );
    let plane = &state.plane;
    let detail = plane
        .invoke(&invocation, || plane.recheck(&name))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(row(detail.row, detail.incident.as_ref())))
}

/// The query of `GET /integrations/{name}/chart.png`.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ChartQuery {
    period: Option<String>,
}

/// `GET /api/v1/integrations/{name}/chart.png?period=24h|7d`: the chart `/status <integration>`
/// attaches, the same bytes, for Retool's Image component.
pub(super) async fn chart(
    key: Key,
    State(state): State<AppState>,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ChartQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let period_text = query.period.unwrap_or_else(|| "24h".into());
    let invocation = key.invocation(
        "status",
        Permission::StatusView,
        vec![text("integration", &name), text("period", &period_text)],
    );
    let plane = &state.plane;
    let chart = plane
        .invoke(&invocation, || async {
            let period = period_text
                .parse::<crate::chart::ChartPeriod>()
                .map_err(|err| crate::service::Invalid::Option {
                    problem: format!("period: {err}"),
                })?;
            plane.status_chart(&name, period).await
        })
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "image/png"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        chart.png,
    )
        .into_response())
}
