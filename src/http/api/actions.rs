//! `GET /actions`, `POST /actions/{name}/runs` and `GET /actions/runs/{id}`: `/action list` and
//! `/action run` for API keys. A run asked for here needs no confirmation (the call is one);
//! an action with `approval` answers 202 "awaiting approval" and its approval message goes to
//! `[bot].approval_channel`; otherwise the run answers 202 at once and goes on in the
//! background. `GET /actions/runs/{id}` follows it by its request id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::auth::Key;
use super::error::{ApiError, Named};
use super::{Body, text, time};
use crate::access::Permission;
use crate::actions::ParamInput;
use crate::config::ActionParam;
use crate::http::AppState;
use crate::service::{ActionRequest, ControlPlane};
use crate::store::actions::{ActionRun, ActionState};

/// One run (a request and how far it got).
#[derive(Debug, Serialize)]
pub(super) struct RunView {
    request_id: String,
    action: String,
    params: Value,
    state: ActionState,
    requested_by: String,
    approved_by: Option<String>,
    created_at: String,
    expires_at: Option<String>,
    started_at: Option<String>,
    finished_at: Option<String>,
    response_status: Option<u16>,
    response: Option<Value>,
    retool_run_id: Option<String>,
    error_kind: Option<String>,
    error: Option<String>,
}

impl From<ActionRun> for RunView {
    fn from(run: ActionRun) -> RunView {
        RunView {
            request_id: run.request_id,
            action: run.action,
            params: run.params,
            state: run.state,
            requested_by: run.requested_by.reference(),
            approved_by: run.decided_by.as_ref().map(crate::model::Actor::reference),
            created_at: time(run.created_at),
            expires_at: run.expires_at.map(time),
            started_at: run.started_at.map(time),
            finished_at: run.finished_at.map(time),
            response_status: run.response_status,
            response: run.response,
            retool_run_id: run.retool_run_id,
            error_kind: run.error_kind,
            error: run.error,
        }
    }
}

/// One action.
#[derive(Debug, Serialize)]
pub(super) struct ActionView {
    name: String,
    description: String,
    params: Vec<ActionParam>,
    approval: bool,
    cooldown_seconds: Option<u64>,
    cooldown_left_seconds: Option<u64>,
    may_run: bool,
    running: Option<RunView>,
    last_run: Option<RunView>,
}

/// `GET /api/v1/actions`: every action, with whether this key may run it.
pub(super) async fn list(
    key: Key,
    State(state): State<AppState>,
) -> Result<Json<Vec<ActionView>>, ApiError> {
    let invocation = key.invocation("action list", Permission::StatusView, Vec::new());
    let plane = &state.plane;
    let actions = plane
        .invoke(&invocation, || {
            plane.list_actions(&invocation.caller, &invocation.actor, false)
        })
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(
        actions
            .into_iter()
            .map(|info| ActionView {
                name: info.name,
                description: info.description,
                params: info.params,
                approval: info.approval,
                cooldown_seconds: info.cooldown_secs,
                cooldown_left_seconds: info.cooldown_left_secs,
                may_run: info.may_run,
                running: info.running.map(RunView::from),
                last_run: info.last_run.map(RunView::from),
            })
            .collect(),
    ))
}

/// `POST /api/v1/actions/{name}/runs` with `{"params": {…}}` (or nothing, for an action
/// without parameters): 202 with the run and a `Location`.
pub(super) async fn start(
    key: Key,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let members = body.members(&["params"], false)?;
    let params = match members.get("params") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(params)) => params.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "params",
                "params must be an object of parameter names and values",
            ));
        }
    };
    let request_id = ControlPlane::new_request_id();
    let invocation = key.invocation(
        "action run",
        Permission::ActionRun,
        vec![
            text("request", &request_id),
            text("name", &name),
            text("params", &Value::Object(params.clone()).to_string()),
        ],
    );
    let plane = Arc::clone(&state.plane);
    let request = ActionRequest {
        request_id,
        action: name,
        input: ParamInput::Json(params),
        confirmable: false,
    };
    let run = plane
        .invoke(&invocation, || plane.request_action(&invocation, request))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    if run.state == ActionState::Ready {
        let plane = Arc::clone(&plane);
        let request_id = run.request_id.clone();
        // Its outcome is recorded with the run (and audited as `action execute`).
        tokio::spawn(async move {
            if let Err(err) = plane.execute_action(&request_id).await {
                tracing::info!(error = %err, request = %request_id, "an action run from the API did not succeed");
            }
        });
    }
    let location = HeaderValue::from_str(&format!("/api/v1/actions/runs/{}", run.request_id))
        .expect("a request id is a header value");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(RunView::from(run)),
    )
        .into_response())
}

/// `GET /api/v1/actions/runs/{id}`: a run by its request id.
pub(super) async fn run(
    key: Key,
    State(state): State<AppState>,
    Path(request_id): Path<String>,
) -> Result<Json<RunView>, ApiError> {
    let invocation = key.invocation(
        "action show",
        Permission::StatusView,
        vec![text("request", &request_id)],
    );
    let plane = &state.plane;
    let run = plane
        .invoke(&invocation, || plane.action_request(&request_id))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(RunView::from(run)))
}
