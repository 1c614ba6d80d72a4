//! `GET /api/v1/openapi.json`: the API described in OpenAPI 3.1, with bearer auth declared, so
//! Retool (or any client generator) imports it as a resource. Written by hand beside the
//! routes; `tests/rest_api.rs` holds it equal to [`super::routes`] (every route documented,
//! nothing documented that is not routed) and checks that each documented operation is served.
//! Each operation names the permission it needs (`x-permission`), as the slash commands do.

use axum::Json;
use serde_json::{Value, json};

/// `GET /api/v1/openapi.json`: no key needed, so a tool can read it before it has one; it
/// describes the API's shape and holds nothing about this installation.
pub(super) async fn serve() -> Json<Value> {
    Json(document())
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn answer(description: &str, schema_name: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema(schema_name) } }
    })
}

fn error(description: &str) -> Value {
    answer(description, "Error")
}

/// An operation needing `permission`, with its success answers and the errors it may give on
/// top of the ones every authenticated operation may give (401, 403, 429, 500).
fn operation(
    id: &str,
    summary: &str,
    permission: &str,
    mut responses: serde_json::Map<String, Value>,
) -> Value {
    for (status, description) in [
        (
            "401",
            "No key, or a key that is malformed, unknown or revoked",
        ),
        ("403", "The key lacks the permission (the answer names it)"),
        ("429", "Over the key's rate limit; see Retry-After"),
        (
            "500",
            "Something failed on patchbay's side; the answer has a reference",
        ),
    ] {
        responses
            .entry(status)
            .or_insert_with(|| error(description));
    }
    json!({
        "operationId": id,
        "summary": summary,
        "description": format!("Needs the `{permission}` permission."),
        "x-permission": permission,
        "responses": responses,
    })
}

fn responses(pairs: &[(&str, Value)]) -> serde_json::Map<String, Value> {
    pairs
        .iter()
        .map(|(status, value)| ((*status).to_string(), value.clone()))
        .collect()
}

fn path_parameter(name: &str, description: &str, integer: bool) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": { "type": if integer { "integer" } else { "string" } }
    })
}

fn page_parameters() -> Vec<Value> {
    vec![
        json!({ "name": "cursor", "in": "query", "required": false,
                "description": "The next_cursor of the previous page, as it was given (opaque)",
                "schema": { "type": "string" } }),
        json!({ "name": "limit", "in": "query", "required": false,
                "description": "Items per page, 1 to 200 (default 50)",
                "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }),
    ]
}

fn with_parameters(mut operation: Value, parameters: Vec<Value>) -> Value {
    operation["parameters"] = Value::Array(parameters);
    operation
}

fn with_body(mut operation: Value, schema_name: &str, required: bool) -> Value {
    operation["requestBody"] = json!({
        "required": required,
        "content": { "application/json": { "schema": schema(schema_name) } }
    });
    operation
}

/// The document.
pub(super) fn document() -> Value {
    let integration = path_parameter("name", "The integration's configured name", false);
    let paths = json!({
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": { "200": { "description": "The OpenAPI document",
                    "content": { "application/json": { "schema": { "type": "object" } } } } }
            }
        },
        "/api/v1/integrations": {
            "get": operation("listIntegrations", "Every integration as a flat row, worst state first",
                "status.view", responses(&[("200", json!({
                    "description": "The integrations",
                    "content": { "application/json": { "schema": {
                        "type": "array", "items": schema("Integration") } } }
                }))])),
        },
        "/api/v1/integrations/{name}": {
            "get": with_parameters(operation("getIntegration",
                "One integration: its row, 24h/7d/30d figures, the last 24 hours hour by hour, the latest checks",
                "status.view", responses(&[
                    ("200", answer("The integration", "IntegrationDetail")),
                    ("404", error("No integration has this name (suggestions are given)")),
                ])), vec![integration.clone()]),
        },
        "/api/v1/integrations/{name}/recheck": {
            "post": with_parameters(operation("recheckIntegration",
                "Run a check now (it counts like a scheduled one) and answer the row after it",
                "status.recheck", responses(&[
                    ("200", answer("The integration after the check", "Integration")),
                    ("404", error("No integration has this name")),
                    ("409", error("The integration is disabled (PAUSED)")),
                ])), vec![integration.clone()]),
        },
        "/api/v1/incidents": {
            "get": with_parameters(operation("listIncidents", "Incidents, newest first, a page at a time",
                "status.view", responses(&[
                    ("200", answer("A page of incidents", "IncidentPage")),
                    ("422", error("state, cursor or limit is not valid (field names it)")),
                ])), {
                    let mut parameters = vec![json!({ "name": "state", "in": "query", "required": false,
                        "description": "open (default) or all",
                        "schema": { "type": "string", "enum": ["open", "all"] } })];
                    parameters.extend(page_parameters());
                    parameters
                }),
        },
        "/api/v1/incidents/{number}/ack": {
            "post": with_parameters(operation("acknowledgeIncident",
                "Acknowledge an incident: reminders stop, its Discord message says who has it",
                "alerts.manage", responses(&[
                    ("200", answer("Acknowledged", "Acknowledged")),
                    ("404", error("No incident has this number")),
                    ("409", error("Already acknowledged, or resolved")),
                ])), vec![path_parameter("number", "The incident's number (`number` in the list, #N in Discord)", true)]),
        },
        "/api/v1/silences": {
            "get": operation("listSilences", "The silences in force", "status.view",
                responses(&[("200", json!({ "description": "The silences",
                    "content": { "application/json": { "schema": {
                        "type": "array", "items": schema("Silence") } } } }))])),
            "post": with_body(operation("createSilence",
                "Silence an integration, or every integration with a tag (`tag:NAME`)",
                "alerts.manage", responses(&[
                    ("201", answer("The silence made", "Silence")),
                    ("400", error("The body is not JSON")),
                    ("413", error("The body is larger than [api].body_limit")),
                    ("415", error("The body is not sent as application/json")),
                    ("422", error("A member is missing or not valid (field names it): unknown target, bad duration")),
                ])), "SilenceRequest", true),
        },
        "/api/v1/silences/{id}": {
            "delete": with_parameters(operation("deleteSilence", "End a silence early", "alerts.manage",
                responses(&[
                    ("200", answer("Ended", "SilenceEnded")),
                    ("404", error("No active silence has this id")),
                ])), vec![path_parameter("id", "The silence's id", true)]),
        },
        "/api/v1/sync/jobs": {
            "get": operation("listSyncJobs", "The Notion sync jobs with their schedule and last run",
                "status.view", responses(&[("200", json!({ "description": "The jobs",
                    "content": { "application/json": { "schema": {
                        "type": "array", "items": schema("SyncJob") } } } }))])),
        },
        "/api/v1/sync/jobs/{name}/runs": {
            "post": with_body(with_parameters(operation("startSyncRun",
                "Start a run of a job; it goes on in the background (follow the Location)",
                "sync.run", responses(&[
                    ("202", json!({ "description": "Started",
                        "headers": { "Location": { "description": "The run, to follow",
                            "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema("SyncRun") } } })),
                    ("400", error("The body is not JSON")),
                    ("404", error("No sync job has this name")),
                    ("409", error("The job is already running (the answer names who runs it)")),
                    ("413", error("The body is larger than [api].body_limit")),
                    ("422", error("dry_run is not true or false")),
                ])), vec![path_parameter("name", "The job's name", false)]), "SyncRunRequest", false),
        },
        "/api/v1/sync/runs/{id}": {
            "get": with_parameters(operation("getSyncRun", "One sync run, while it runs and after",
                "status.view", responses(&[
                    ("200", answer("The run", "SyncRun")),
                    ("404", error("No run has this id")),
                ])), vec![path_parameter("id", "The run's id", true)]),
        },
        "/api/v1/integrations/{name}/chart.png": {
            "get": with_parameters(operation("getIntegrationChart",
                "The integration's chart as a PNG: latency p50/p95 and uptime, DOWN and DEGRADED shaded (what /status attaches)",
                "status.view", responses(&[
                    ("200", json!({ "description": "The chart, 960x480",
                        "content": { "image/png": { "schema": { "type": "string", "contentMediaType": "image/png" } } } })),
                    ("404", error("No integration has this name")),
                    ("422", error("period is not 24h or 7d")),
                ])), vec![integration.clone(), json!({ "name": "period", "in": "query", "required": false,
                    "description": "24h (one-minute points, the default) or 7d (one-hour points)",
                    "schema": { "type": "string", "enum": ["24h", "7d"], "default": "24h" } })]),
        },
        "/api/v1/actions": {
            "get": operation("listActions", "Every action, with whether this key may run it, its cooldown and last run",
                "status.view", responses(&[("200", json!({ "description": "The actions",
                    "content": { "application/json": { "schema": {
                        "type": "array", "items": schema("Action") } } } }))])),
        },
        "/api/v1/actions/{name}/runs": {
            "post": with_body(with_parameters(operation("startActionRun",
                "Ask for a run of an action: it runs in the background, or waits for an approval in Discord",
                "action.run", responses(&[
                    ("202", json!({ "description": "Accepted: running, or awaiting approval",
                        "headers": { "Location": { "description": "The run, to follow",
                            "schema": { "type": "string" } } },
                        "content": { "application/json": { "schema": schema("ActionRun") } } })),
                    ("400", error("The body is not JSON")),
                    ("404", error("No action has this name")),
                    ("409", error("A run of the action is going on (named), or it cools down (Retry-After)")),
                    ("413", error("The body is larger than [api].body_limit")),
                    ("422", error("A parameter is unknown, missing or wrong (field names it)")),
                ])), vec![path_parameter("name", "The action's name", false)]), "ActionRunRequest", false),
        },
        "/api/v1/actions/runs/{id}": {
            "get": with_parameters(operation("getActionRun", "One action run by its request id",
                "status.view", responses(&[
                    ("200", answer("The run", "ActionRun")),
                    ("404", error("No run has this request id")),
                ])), vec![path_parameter("id", "The run's request id (act-...)", false)]),
        },
        "/api/v1/audit": {
            "get": with_parameters(operation("listAudit", "The audit log, newest first, a page at a time",
                "audit.view", responses(&[
                    ("200", answer("A page of entries", "AuditPage")),
                    ("422", error("cursor or limit is not valid")),
                ])), page_parameters()),
        },
    });
    let time = json!({ "type": "string", "format": "date-time" });
    let nullable_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let nullable_number = json!({ "type": ["number", "null"] });
    let state =
        json!({ "type": "string", "enum": ["UNKNOWN", "UP", "DEGRADED", "DOWN", "PAUSED"] });
    let integration_properties = json!({
        "name": { "type": "string" },
        "kind": { "type": "string" },
        "state": state,
        "since": time,
        "last_checked": nullable_time,
        "last_error": { "type": ["string", "null"] },
        "latency_p95_ms": nullable_number,
        "uptime_24h": nullable_number,
        "open_incident": { "type": ["integer", "null"], "description": "The open incident's number, when it is notified" },
        "open_incident_since": nullable_time,
        "tags": { "type": "array", "items": { "type": "string" } },
    });
    let mut detail_properties = integration_properties.clone();
    detail_properties["windows"] = json!({ "type": "array", "items": { "type": "object", "properties": {
        "window": { "type": "string", "enum": ["24h", "7d", "30d"] },
        "checks": { "type": "integer" }, "uptime_pct": { "type": "number" },
        "latency_p50_ms": { "type": "number" }, "latency_p95_ms": { "type": "number" } } } });
    detail_properties["hourly"] = json!({ "type": "array", "description": "The last 24 hours, oldest first",
        "items": { "type": "object", "properties": {
        "start": time, "checks": { "type": "integer" }, "uptime_pct": nullable_number,
        "latency_p50_ms": nullable_number, "latency_p95_ms": nullable_number } } });
    detail_properties["recent_checks"] = json!({ "type": "array", "description": "The latest 50 checks, newest first",
        "items": { "type": "object", "properties": {
        "at": time, "success": { "type": "boolean" }, "latency_ms": { "type": "number" },
        "status": { "type": ["integer", "null"] }, "error_kind": { "type": ["string", "null"] },
        "message": { "type": ["string", "null"] } } } });
    let run_properties = json!({
        "id": { "type": "integer" }, "job": { "type": "string" },
        "started_by": { "type": "string", "description": "discord:<id>, apikey:<name>, scheduler:<job> or cli:<user>" },
        "dry_run": { "type": "boolean" }, "started_at": time, "finished_at": nullable_time,
        "duration_ms": { "type": ["integer", "null"] },
        "outcome": { "type": "string", "enum": ["running", "ok", "failed", "abandoned"] },
        "counts": { "type": "object", "properties": {
            "total": { "type": "integer" }, "created": { "type": "integer" },
            "updated": { "type": "integer" }, "unchanged": { "type": "integer" },
            "removed": { "type": "integer" }, "requests": { "type": "integer" } } },
        "error_kind": { "type": ["string", "null"] }, "error": { "type": ["string", "null"] },
    });
    let action_schema = json!({ "type": "object", "properties": {
                    "name": { "type": "string" }, "description": { "type": "string" },
                    "params": { "type": "array", "items": { "type": "object", "properties": {
                        "name": { "type": "string" },
                        "type": { "type": "string", "enum": ["string", "integer", "boolean", "choice"] },
                        "required": { "type": "boolean" }, "description": { "type": ["string", "null"] },
                        "max_len": { "type": "integer" }, "min": { "type": ["integer", "null"] },
                        "max": { "type": ["integer", "null"] },
                        "choices": { "type": "array", "items": { "type": "string" } } } } },
                    "approval": { "type": "boolean" },
                    "cooldown_seconds": { "type": ["integer", "null"] },
                    "cooldown_left_seconds": { "type": ["integer", "null"] },
                    "may_run": { "type": "boolean", "description": "This key holds action.run and passes the action's roles" },
                    "running": { "oneOf": [schema("ActionRun"), { "type": "null" }] },
                    "last_run": { "oneOf": [schema("ActionRun"), { "type": "null" }] } } });
    let action_run_schema = json!({ "type": "object", "properties": {
                    "request_id": { "type": "string" }, "action": { "type": "string" },
                    "params": { "type": "object" },
                    "state": { "type": "string", "enum": ["confirming", "awaiting_approval", "ready", "running",
                        "succeeded", "started", "failed", "cancelled", "rejected", "expired", "refused"] },
                    "requested_by": { "type": "string" }, "approved_by": { "type": ["string", "null"] },
                    "created_at": time, "expires_at": nullable_time, "started_at": nullable_time,
                    "finished_at": nullable_time,
                    "response_status": { "type": ["integer", "null"], "description": "The workflow's Response block status" },
                    "response": { "description": "The workflow's Response block body" },
                    "retool_run_id": { "type": ["string", "null"], "description": "Retool's run id, for a workflow without a Response block" },
                    "error_kind": { "type": ["string", "null"] }, "error": { "type": ["string", "null"] } } });
    let action_run_request = json!({ "type": "object", "additionalProperties": false, "properties": {
                    "params": { "type": "object", "description": "Parameter names and values, checked against the action's params" } } });
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "patchbay REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The same operations, permission checks and audit log as patchbay's slash commands. Authenticate with `Authorization: Bearer pb_...` (a key from `patchbay apikey create`). Errors are JSON: {\"error\": kind, \"message\": text}. Times are RFC 3339 in UTC.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "pb_ key",
                    "description": "A key from `patchbay apikey create`; it holds the permissions it was made with." }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "message"], "properties": {
                    "error": { "type": "string", "description": "The kind: bad_request, unauthorized, forbidden, not_found, method_not_allowed, conflict, already_running, cooling_down, action_failed, payload_too_large, unsupported_media_type, invalid, rate_limited, sync_failed, unavailable, internal" },
                    "message": { "type": "string" },
                    "field": { "type": "string", "description": "The member or parameter at fault (422)" },
                    "permission": { "type": "string", "description": "The permission missing (403)" },
                    "retry_after_seconds": { "type": "integer", "description": "When to retry (429)" },
                    "reference": { "type": "string", "description": "The log reference (500)" } } },
                "Integration": { "type": "object", "properties": integration_properties },
                "IntegrationDetail": { "type": "object", "properties": detail_properties },
                "Incident": { "type": "object", "properties": {
                    "id": { "type": "integer" },
                    "number": { "type": ["integer", "null"], "description": "What acknowledging takes (#N in Discord); null while recorded without a message" },
                    "integration": { "type": "string" },
                    "severity": { "type": "string", "enum": ["critical", "warning"] },
                    "state": state, "reason": { "type": "string" },
                    "opened_at": time, "resolved_at": nullable_time,
                    "acknowledged_by": { "type": ["string", "null"] }, "acknowledged_at": nullable_time,
                    "suppressed": { "type": ["string", "null"] } } },
                "IncidentPage": { "type": "object", "properties": {
                    "incidents": { "type": "array", "items": schema("Incident") },
                    "next_cursor": { "type": ["string", "null"], "description": "null on the last page" } } },
                "Acknowledged": { "type": "object", "properties": {
                    "number": { "type": "integer" }, "acknowledged_by": { "type": "string" } } },
                "Silence": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "target": { "type": "string" }, "until": time,
                    "reason": { "type": "string" }, "created_by": { "type": "string" } } },
                "SilenceRequest": { "type": "object", "required": ["target", "duration", "reason"],
                    "additionalProperties": false, "properties": {
                    "target": { "type": "string", "description": "An integration, or tag:NAME" },
                    "duration": { "type": "string", "description": "Like 30m, 1h or 2d (1s to 30d)" },
                    "reason": { "type": "string", "description": "Why (kept up to 200 characters)" } } },
                "SilenceEnded": { "type": "object", "properties": {
                    "id": { "type": "integer" }, "ended": { "type": "boolean" } } },
                "SyncJob": { "type": "object", "properties": {
                    "name": { "type": "string" },
                    "kind": { "type": "string", "enum": ["notion-status-board", "notion-incident-log"] },
                    "every_seconds": { "type": ["integer", "null"] },
                    "last_run": { "oneOf": [schema("SyncRun"), { "type": "null" }] } } },
                "SyncRun": { "type": "object", "properties": run_properties },
                "SyncRunRequest": { "type": "object", "additionalProperties": false, "properties": {
                    "dry_run": { "type": "boolean", "default": false } } },
                "AuditEntry": { "type": "object", "properties": {
                    "at": time, "actor": { "type": "string" }, "actor_name": { "type": "string" },
                    "command": { "type": "string" }, "options": { "type": "object" },
                    "permission": { "type": ["string", "null"] }, "allowed_by": { "type": ["string", "null"] },
                    "outcome": { "type": "string", "enum": ["ok", "denied", "invalid", "failed", "rate_limited"] },
                    "latency_ms": { "type": "number" }, "error_kind": { "type": ["string", "null"] },
                    "guild": { "type": ["string", "null"] }, "channel": { "type": ["string", "null"] } } },
                "AuditPage": { "type": "object", "properties": {
                    "entries": { "type": "array", "items": schema("AuditEntry") },
                    "next_cursor": { "type": ["string", "null"] } } },
            }
        }
    });
    // Added apart: one json! of every schema is deeper than the macro's recursion limit.
    let schemas = &mut document["components"]["schemas"];
    schemas["Action"] = action_schema;
    schemas["ActionRun"] = action_run_schema;
    schemas["ActionRunRequest"] = action_run_request;
    document
}
