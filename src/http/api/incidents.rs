//! `GET /incidents?state=open|all&cursor=&limit=` (newest first, a page at a time) and
//! `POST /incidents/{number}/ack`: `/alerts list` and `/alerts ack`.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Serialize;

use super::auth::Key;
use super::error::{ApiError, Named};
use super::{PageQuery, encode_cursor, number, path_number, text, time};
use crate::access::Permission;
use crate::http::AppState;
use crate::service::Invalid;
use crate::store::alerts::IncidentRecord;

/// The incident list's query.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ListQuery {
    state: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// One incident.
#[derive(Debug, Serialize)]
struct Incident {
    id: i64,
    number: Option<i64>,
    integration: String,
    severity: &'static str,
    state: crate::model::State,
    reason: String,
    opened_at: String,
    resolved_at: Option<String>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<String>,
    suppressed: Option<String>,
}

impl From<IncidentRecord> for Incident {
    fn from(record: IncidentRecord) -> Incident {
        Incident {
            id: record.id,
            number: record.number,
            integration: record.integration,
            severity: record.severity.as_str(),
            state: record.state,
            reason: record.reason,
            opened_at: time(record.opened_at),
            resolved_at: record.resolved_at.map(time),
            acknowledged_by: record.acknowledged.as_ref().map(|a| a.by.reference()),
            acknowledged_at: record.acknowledged.as_ref().map(|a| time(a.at)),
            suppressed: record.suppressed,
        }
    }
}

/// A page of incidents.
#[derive(Debug, Serialize)]
pub(super) struct Page {
    incidents: Vec<Incident>,
    next_cursor: Option<String>,
}

/// `GET /api/v1/incidents`.
pub(super) async fn list(
    key: Key,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page>, ApiError> {
    let wanted = query.state.clone().unwrap_or_else(|| "open".into());
    let mut options = vec![text("state", &wanted)];
    options.extend(query.page.options());
    let invocation = key.invocation("alerts list", Permission::StatusView, options);
    let plane = &state.plane;
    let page = plane
        .invoke(&invocation, || async {
            let open_only = match wanted.as_str() {
                "open" => true,
                "all" => false,
                other => {
                    return Err(Invalid::Option {
                        problem: format!("state: {} is not open or all", crate::model::echo(other)),
                    }
                    .into());
                }
            };
            let (limit, before) = query.page.read()?;
            plane.incidents(open_only, before, limit).await
        })
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(Page {
        incidents: page.incidents.into_iter().map(Incident::from).collect(),
        next_cursor: encode_cursor(page.next),
    }))
}

/// An acknowledgement.
#[derive(Debug, Serialize)]
pub(super) struct Acked {
    number: i64,
    acknowledged_by: String,
}

/// `POST /api/v1/incidents/{number}/ack`.
pub(super) async fn ack(
    key: Key,
    State(state): State<AppState>,
    Path(number_text): Path<String>,
) -> Result<Json<Acked>, ApiError> {
    let notice = path_number(&number_text, "incident")?;
    let invocation = key.invocation(
        "alerts ack",
        Permission::AlertsManage,
        vec![number("incident", notice)],
    );
    let plane = &state.plane;
    let acked = plane
        .invoke(&invocation, || plane.acknowledge(notice, &invocation.actor))
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(Acked {
        number: acked.notice,
        acknowledged_by: invocation.actor.reference(),
    }))
}
