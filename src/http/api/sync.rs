//! `GET /sync/jobs`, `POST /sync/jobs/{name}/runs` and `GET /sync/runs/{id}`: `/sync list` and
//! `/sync run`. A run started here answers 202 as soon as it holds the job's lease, with a
//! `Location` to follow it; it goes on in the background (through the same `invoke` as
//! `/sync run`, so its audit entry is written when it ends, as the command's is).

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::Key;
use super::error::{ApiError, Named};
use super::{Body, number, path_number, text, time};
use crate::access::Permission;
use crate::audit::{InvocationOption, OptionValue};
use crate::http::AppState;
use crate::service::CommandError;
use crate::store::sync::{RunCounts, RunOutcome, SyncRun};
use crate::sync::Progress;

/// One run.
#[derive(Debug, Serialize)]
pub(super) struct RunView {
    id: i64,
    job: String,
    started_by: String,
    dry_run: bool,
    started_at: String,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    outcome: RunOutcome,
    counts: RunCounts,
    error_kind: Option<String>,
    error: Option<String>,
}

impl From<SyncRun> for RunView {
    fn from(run: SyncRun) -> RunView {
        RunView {
            id: run.id,
            job: run.job,
            started_by: run.actor.reference(),
            dry_run: run.dry_run,
            started_at: time(run.started_at),
            finished_at: run.finished_at.map(time),
            duration_ms: run
                .finished_at
                .map(|end| (end - run.started_at).num_milliseconds()),
            outcome: run.outcome,
            counts: run.counts,
            error_kind: run.error_kind,
            error: run.error,
        }
    }
}

/// One job.
#[derive(Debug, Serialize)]
pub(super) struct Job {
    name: String,
    kind: crate::config::SyncKind,
    every_seconds: Option<u64>,
    last_run: Option<RunView>,
}

/// `GET /api/v1/sync/jobs`.
pub(super) async fn jobs(
    key: Key,
    State(state): State<AppState>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let invocation = key.invocation("sync list", Permission::StatusView, Vec::new());
    let plane = &state.plane;
    let jobs = plane
        .invoke(&invocation, || plane.sync_list())
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(
        jobs.into_iter()
            .map(|job| Job {
                name: job.name,
                kind: job.kind,
                every_seconds: job.every.map(|every| every.as_secs()),
                last_run: job.last_run.map(RunView::from),
            })
            .collect(),
    ))
}

/// `POST /api/v1/sync/jobs/{name}/runs` (body `{"dry_run": false}` or none): 202 with the
/// run and a `Location`, once the run holds the job's lease.
pub(super) async fn start(
    key: Key,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let members = body.members(&["dry_run"], false)?;
    let dry_run = Body::flag(members, "dry_run")?;
    let invocation = key.invocation(
        "sync run",
        Permission::SyncRun,
        vec![
            text("job", &name),
            InvocationOption::new("dry_run", OptionValue::Boolean(dry_run)),
        ],
    );
    let (started, on_start) = tokio::sync::oneshot::channel::<i64>();
    let started = Mutex::new(Some(started));
    let plane = Arc::clone(&state.plane);
    // The run's first progress report comes once it holds the lease; it says which run it is.
    let progress = move |progress: &Progress| {
        if let Some(started) = started.lock().expect("start lock").take() {
            let _ = started.send(progress.run);
        }
    };
    let run = tokio::spawn(async move {
        let actor = invocation.actor.clone();
        plane
            .invoke(&invocation, || {
                plane.sync_run(&name, actor, dry_run, None, &progress)
            })
            .await
    });
    let id = match on_start.await {
        Ok(id) => id,
        // The run ended without starting (refused, unknown job, already running) or ended
        // before its first report.
        Err(_) => match run.await {
            Ok(Ok(report)) => report.run,
            Ok(Err(CommandError::SyncFailed(report))) => report.run,
            Ok(Err(err)) => return Err(ApiError::command(err, Named::Path)),
            Err(err) => {
                return Err(ApiError::command(
                    CommandError::internal("task", &err),
                    Named::Path,
                ));
            }
        },
    };
    let record = state
        .plane
        .sync_run_record(id)
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    let location = HeaderValue::from_str(&format!("/api/v1/sync/runs/{id}"))
        .expect("a path of digits is a header value");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(RunView::from(record)),
    )
        .into_response())
}

/// `GET /api/v1/sync/runs/{id}`.
pub(super) async fn run(
    key: Key,
    State(state): State<AppState>,
    Path(id_text): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let id = path_number(&id_text, "sync run")?;
    let invocation = key.invocation(
        "sync history",
        Permission::StatusView,
        vec![number("run", id)],
    );
    let plane = &state.plane;
    let run = plane
        .invoke(&invocation, || plane.sync_run_record(id))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(RunView::from(run)))
}
