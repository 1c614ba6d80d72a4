//! Every error the REST API answers, as JSON `{"error": "<kind>", "message": "…"}` with its
//! status, mapped in one place: [`ApiError::command`] turns each `CommandError` and each
//! `Invalid` variant into a status through a `match` the compiler keeps exhaustive, so a new
//! variant cannot reach a caller unmapped. Some answers carry more members (the permission
//! missing, the field at fault, suggestions, the run that holds a job, a reference).

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::access::Denied;
use crate::service::{CommandError, Invalid};

/// An error answer: its status, kind, message, and any more members and headers.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    extra: Map<String, Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Where the thing an `Invalid` names came from: the URL's path (an unknown one is a 404, the
/// resource does not exist) or the request body (an unknown one is a 422 naming the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// The path names it (`/integrations/{name}`).
    Path,
    /// The body names it (`POST /silences` with `"target"`).
    Body,
}

impl ApiError {
    /// An error of `status` and `kind` saying `message`.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    /// Adds a member to the JSON body.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(name.to_string(), value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// 400: the body is not JSON.
    pub fn malformed(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 422 naming the field at fault.
    pub fn field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message).with("field", field)
    }

    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750: `error="invalid_token"` when a key was
    /// sent but is not valid).
    pub fn unauthorized(message: impl Into<String>, key_sent: bool) -> ApiError {
        let challenge = if key_sent {
            "Bearer realm=\"patchbay\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"patchbay\""
        };
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )
    }

    /// The answer to a `CommandError`; `named` says where a thing it calls unknown came from.
    pub fn command(error: CommandError, named: Named) -> ApiError {
        let message = error.to_string();
        match error {
            CommandError::Denied(Denied::Missing(permission)) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this API key lacks the {permission} permission: make a key that holds it \
                     (patchbay apikey create --permissions ...,{permission})"
                ),
            )
            .with("permission", permission.as_str()),
            CommandError::Denied(
                Denied::DirectMessage
                | Denied::ActionRoles { .. }
                | Denied::ActionKey { .. }
                | Denied::OwnRequest
                | Denied::NotRequester,
            ) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            CommandError::RateLimited { retry_in } => {
                let seconds = retry_in.as_secs_f64().ceil().max(1.0) as u64;
                ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!(
                        "this API key is over its rate limit ([api].rate): retry in {seconds}s"
                    ),
                )
                .with("retry_after_seconds", seconds)
                .header(header::RETRY_AFTER, HeaderValue::from(seconds))
            }
            CommandError::Invalid(invalid) => ApiError::invalid(invalid, named),
            CommandError::Busy(run) => {
                ApiError::new(StatusCode::CONFLICT, "already_running", message)
                    .with("run", run.id)
                    .with("started_by", run.actor.reference())
                    .with("location", format!("/api/v1/sync/runs/{}", run.id))
            }
            CommandError::ActionBusy(run) => {
                ApiError::new(StatusCode::CONFLICT, "already_running", message)
                    .with("request", run.request_id.clone())
                    .with("started_by", run.requested_by.reference())
                    .with(
                        "location",
                        format!("/api/v1/actions/runs/{}", run.request_id),
                    )
            }
            CommandError::CoolingDown { left, .. } => {
                let seconds = left.as_secs_f64().ceil().max(1.0) as u64;
                ApiError::new(StatusCode::CONFLICT, "cooling_down", message)
                    .with("retry_after_seconds", seconds)
                    .header(header::RETRY_AFTER, HeaderValue::from(seconds))
            }
            CommandError::ActionFailed(run) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "action_failed", message)
                    .with("request", run.request_id.clone())
                    .with("error_kind", run.error_kind.clone())
            }
            CommandError::SyncFailed(report) => {
                let (what_to_do, request_id) = report.failure.as_ref().map_or((None, None), |f| {
                    (Some(f.what_to_do.clone()), f.request_id.clone())
                });
                ApiError::new(StatusCode::BAD_GATEWAY, "sync_failed", message)
                    .with("run", report.run)
                    .with("what_to_do", what_to_do)
                    .with("notion_request_id", request_id)
            }
            CommandError::Internal { reference, .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
                    .with("reference", reference)
            }
        }
    }

    fn invalid(invalid: Invalid, named: Named) -> ApiError {
        let message = invalid.to_string();
        let unknown = |field: &str| match named {
            Named::Path => ApiError::new(StatusCode::NOT_FOUND, "not_found", message.clone()),
            Named::Body => ApiError::field(field, message.clone()),
        };
        let not_found = || ApiError::new(StatusCode::NOT_FOUND, "not_found", message.clone());
        let conflict = || ApiError::new(StatusCode::CONFLICT, "conflict", message.clone());
        let unavailable = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                message.clone(),
            )
        };
        match &invalid {
            Invalid::UnknownIntegration { suggestions, .. } => {
                unknown("target").with("suggestions", suggestions.clone())
            }
            Invalid::UnknownTag { .. } => unknown("target"),
            Invalid::UnknownAction { suggestions, .. } => {
                unknown("action").with("suggestions", suggestions.clone())
            }
            Invalid::Param(problem) => {
                ApiError::field(problem.field().unwrap_or("params"), message.clone())
                    .with("problem", serde_json::to_value(problem).unwrap_or_default())
            }
            Invalid::UnknownJob {
                suggestions, known, ..
            } => unknown("job")
                .with("suggestions", suggestions.clone())
                .with("known", known.clone()),
            Invalid::UnknownIncident { .. }
            | Invalid::UnknownSilence { .. }
            | Invalid::UnknownRun { .. }
            | Invalid::UnknownKey { .. }
            | Invalid::UnknownRequest { .. }
            | Invalid::NoOlderEntries => not_found(),
            Invalid::AlreadyAcknowledged { .. }
            | Invalid::IncidentResolved { .. }
            | Invalid::Paused { .. }
            | Invalid::ConfigGrant { .. }
            | Invalid::NotGranted { .. }
            | Invalid::DuplicateKey { .. }
            | Invalid::RequestSettled { .. }
            | Invalid::NoApprovalChannel { .. } => conflict(),
            Invalid::Duration { .. } | Invalid::SilenceLength => {
                ApiError::field("duration", message.clone())
            }
            Invalid::KeyName { .. } => ApiError::field("name", message.clone()),
            Invalid::Permissions { .. } => ApiError::field("permissions", message.clone()),
            // The problem names the option (`cursor`, `state`, `limit`).
            Invalid::Option { problem } => ApiError::field(
                problem.split(':').next().unwrap_or_default().trim(),
                message.clone(),
            ),
            Invalid::Stopped { .. }
            | Invalid::NoEngine
            | Invalid::NoAlerts
            | Invalid::NoSyncs
            | Invalid::NoActions => unavailable(),
        }
    }

    /// 404 for a path no route serves.
    pub fn no_route(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no route {method} {}; GET /api/v1/openapi.json lists the routes",
                crate::model::shorten(path, 200)
            ),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, kind = self.kind, message = %self.message,
                "REST API call failed");
        }
        let mut body = Map::new();
        body.insert("error".into(), json!(self.kind));
        body.insert("message".into(), json!(self.message));
        body.extend(self.extra);
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

/// The fallback of the whole server: a JSON 404 naming the path.
pub async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::no_route(method.as_str(), uri.path())
}

/// The fallback of a route asked with a method it does not serve: a JSON 405 (axum adds the
/// `Allow` header).
pub async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}; the Allow header lists what it takes",
            crate::model::shorten(uri.path(), 200)
        ),
    )
}
