//! `GET /audit?cursor=&limit=`: the audit log, newest first, a page at a time (`/audit`).

use axum::Json;
use axum::extract::{Query, State};
use serde::Serialize;

use super::auth::Key;
use super::error::{ApiError, Named};
use super::{PageQuery, encode_cursor, time};
use crate::access::Permission;
use crate::audit::{AuditEntry, AuditQuery};
use crate::http::AppState;

/// One entry.
#[derive(Debug, Serialize)]
struct Entry {
    at: String,
    actor: String,
    actor_name: String,
    command: String,
    options: serde_json::Value,
    permission: Option<Permission>,
    allowed_by: Option<String>,
    outcome: crate::audit::Outcome,
    latency_ms: f64,
    error_kind: Option<String>,
    guild: Option<String>,
    channel: Option<String>,
}

impl From<AuditEntry> for Entry {
    fn from(entry: AuditEntry) -> Entry {
        Entry {
            at: time(entry.at),
            actor: entry.actor.reference(),
            actor_name: entry.actor.name().to_string(),
            command: entry.command,
            options: entry.options,
            permission: entry.permission,
            allowed_by: entry.allowed.as_ref().map(crate::access::Allowed::code),
            outcome: entry.outcome,
            latency_ms: entry.latency_ms,
            error_kind: entry.error_kind,
            guild: entry.guild.map(|g| g.0.to_string()),
            channel: entry.channel.map(|c| c.0.to_string()),
        }
    }
}

/// A page of the audit log.
#[derive(Debug, Serialize)]
pub(super) struct Page {
    entries: Vec<Entry>,
    next_cursor: Option<String>,
}

/// `GET /api/v1/audit`.
pub(super) async fn page(
    key: Key,
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<Json<Page>, ApiError> {
    let invocation = key.invocation("audit", Permission::AuditView, query.options());
    let plane = &state.plane;
    let page = plane
        .invoke(&invocation, || async {
            let (limit, before) = query.read()?;
            plane
                .audit_page(&AuditQuery {
                    limit,
                    before,
                    ..AuditQuery::default()
                })
                .await
        })
        .await
        .map_err(|err| ApiError::command(err, Named::Path))?;
    Ok(Json(Page {
        entries: page.entries.into_iter().map(Entry::from).collect(),
        next_cursor: encode_cursor(page.older),
    }))
}
