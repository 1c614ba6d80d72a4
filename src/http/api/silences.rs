//! `GET /silences`, `POST /silences` (`{"target", "duration", "reason"}`, like `/alerts
//! silence`) and `DELETE /silences/{id}` (`/alerts unsilence`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use super::auth::Key;
use super::error::{ApiError, Named};
use super::{Body, number, path_number, text, time};
use crate::access::Permission;
use crate::http::AppState;

/// One silence in force.
#[derive(Debug, Serialize)]
pub(super) struct Silence {
    id: i64,
    target: String,
    until: String,
    reason: String,
    created_by: String,
}

/// `GET /api/v1/silences`.
pub(super) async fn list(
    key: Key,
    State(state): State<AppState>,
) -> Result<Json<Vec<Silence>>, ApiError> {
    let invocation = key.invocation("alerts list", Permission::StatusView, Vec::new());
    let plane = &state.plane;
    let silences = plane
        .invoke(&invocation, || plane.silences())
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(
        silences
            .into_iter()
            .map(|s| Silence {
                id: s.id,
                target: s.target,
                until: time(s.until),
                reason: s.reason,
                created_by: s.created_by.reference(),
            })
            .collect(),
    ))
}

/// `POST /api/v1/silences`: 201 with the silence made.
pub(super) async fn create(
    key: Key,
    State(state): State<AppState>,
    body: Body,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    let members = body.members(&["target", "duration", "reason"], true)?;
    let target = Body::text(members, "target")?;
    let duration = Body::text(members, "duration")?;
    let reason = Body::text(members, "reason")?;
    let invocation = key.invocation(
        "alerts silence",
        Permission::AlertsManage,
        vec![
            text("target", &target),
            text("duration", &duration),
            text("reason", &reason),
        ],
    );
    let plane = &state.plane;
    let silenced = plane
        .invoke(&invocation, || {
            plane.silence(&target, &duration, &reason, &invocation.actor)
        })
        .await
        .map_err(|err| ApiError::command(err, Named::Body))?;
    Ok((
        StatusCode::CREATED,
        Json(Silence {
            id: silenced.id,
            target: silenced.target,
            until: time(silenced.until),
            // Kept as the service keeps it: cut to the reason limit.
            reason: crate::model::shorten(&reason, crate::service::REASON_LIMIT),
            created_by: invocation.actor.reference(),
        }),
    ))
}

/// A silence ended.
#[derive(Debug, Serialize)]
pub(super) struct Ended {
    id: i64,
    ended: bool,
}

/// `DELETE /api/v1/silences/{id}`.
pub(super) async fn delete(
    key: Key,
    State(state): State<AppState>,
    Path(id_text): Path<String>,
) -> Result<Json<Ended>, ApiError> {
    let id = path_number(&id_text, "silence")?;
    let invocation = key.invocation(
        "alerts unsilence",
        Permission::AlertsManage,
        vec![number("silence", id)],
    );
    let plane = &state.plane;
    let ended = plane
        .invoke(&invocation, || plane.unsilence(id))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(Ended {
        id: ended.silence,
        ended: true,
    }))
}
