//! The REST API under `/api/v1`, for Retool dashboards and scripts: the same operations,
//! permission checks and audit entries as the slash commands, because every handler builds an
//! [`Invocation`](crate::service::Invocation) and calls `ControlPlane::invoke`. Handlers are
//! thin: check the key ([`auth`]), read the path, query and body, invoke, render JSON.
//!
//! One file per resource (`integrations`, `incidents`, `silences`, `sync`, `actions`, `audit`); `error`
//! maps every error to its status once; `openapi` is the document Retool imports, kept equal to
//! [`routes`] by a test.

pub mod auth;
pub mod error;

mod actions;
mod audit;
mod incidents;
mod integrations;
mod openapi;
mod silences;
mod sync;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use axum::routing::{MethodFilter, on};
use serde_json::{Map, Value};

use self::error::ApiError;
use super::AppState;
use crate::audit::{InvocationOption, OptionValue};
use crate::service::Invalid;

pub use integrations::{LIST_MAX_AGE, ListCache};

/// Where every route of the API lives.
pub const PREFIX: &str = "/api/v1";

/// The router and the list of its routes, built together so the list is what the router
/// serves.
struct Api {
    router: Router<AppState>,
    routes: Vec<(Method, &'static str)>,
}

impl Api {
    fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Api
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        self.router = self.router.route(path, on(filter, handler));
        self.routes.push((method, path));
        self
    }
}

fn api() -> Api {
    let api = Api {
        router: Router::new(),
        routes: Vec::new(),
    };
    api.add(Method::GET, "/api/v1/openapi.json", openapi::serve)
        .add(Method::GET, "/api/v1/integrations", integrations::list)
        .add(
            Method::GET,
            "/api/v1/integrations/{name}",
            integrations::show,
        )
        .add(
            Method::POST,
            "/api/v1/integrations/{name}/recheck",
            integrations::recheck,
        )
        .add(
            Method::GET,
            "/api/v1/integrations/{name}/chart.png",
            integrations::chart,
        )
        .add(Method::GET, "/api/v1/incidents", incidents::list)
        .add(
            Method::POST,
            "/api/v1/incidents/{number}/ack",
            incidents::ack,
        )
        .add(Method::GET, "/api/v1/silences", silences::list)
        .add(Method::POST, "/api/v1/silences", silences::create)
        .add(Method::DELETE, "/api/v1/silences/{id}", silences::delete)
        .add(Method::GET, "/api/v1/sync/jobs", sync::jobs)
        .add(Method::POST, "/api/v1/sync/jobs/{name}/runs", sync::start)
        .add(Method::GET, "/api/v1/sync/runs/{id}", sync::run)
        .add(Method::GET, "/api/v1/actions", actions::list)
        .add(Method::POST, "/api/v1/actions/{name}/runs", actions::start)
        .add(Method::GET, "/api/v1/actions/runs/{id}", actions::run)
        .add(Method::GET, "/api/v1/audit", audit::page)
}

/// Every route the API serves: method and path (axum's `{name}` syntax, as OpenAPI writes it).
pub fn routes() -> Vec<(Method, &'static str)> {
    api().routes
}

/// The API's router, with the request body limit.
pub(super) fn router(body_limit: usize) -> Router<AppState> {
    api()
        .router
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
}

/// The OpenAPI document of the API (served at `/api/v1/openapi.json`).
pub fn openapi_document() -> Value {
    openapi::document()
}

/// A request body: empty, or a JSON object whose members are read one by one, so an error
/// names the member at fault. Larger than `[api].body_limit`: 413; not JSON: 400; not an
/// object, a member of the wrong type, a missing or unknown one: 422 naming it.
pub struct Body(Option<Map<String, Value>>);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Body, ApiError> {
        let json_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            });
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        rejection.status(),
                        "payload_too_large",
                        format!(
                            "the request body is larger than {} bytes ([api].body_limit)",
                            state.body_limit
                        ),
                    )
                } else {
                    ApiError::malformed(format!("the request body could not be read: {rejection}"))
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(None));
        }
        if json_type
            .as_deref()
            .is_some_and(|t| t != "application/json")
        {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(members)) => Ok(Body(Some(members))),
            Ok(_) => Err(ApiError::field("body", "the body must be a JSON object")),
            Err(err) => Err(ApiError::malformed(format!(
                "the body is not valid JSON: {err}"
            ))),
        }
    }
}

impl Body {
    /// Refuses members other than `known` (with the closest known one), and an empty body
    /// when `required`.
    fn members(&self, known: &[&str], required: bool) -> Result<&Map<String, Value>, ApiError> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let Some(members) = &self.0 else {
            if required {
                return Err(ApiError::field(
                    "body",
                    format!("send a JSON object with {}", known.join(", ")),
                ));
            }
            return Ok(EMPTY.get_or_init(Map::new));
        };
        if let Some(unknown) = members.keys().find(|k| !known.contains(&k.as_str())) {
            let hint = crate::suggest::closest(unknown, known).map_or_else(
                || format!("known: {}", known.join(", ")),
                |c| format!("did you mean {c}?"),
            );
            return Err(ApiError::field(
                unknown,
                format!("unknown member {}; {hint}", crate::model::echo(unknown)),
            ));
        }
        Ok(members)
    }

    /// The text member `name`, which must be there.
    fn text(members: &Map<String, Value>, name: &str) -> Result<String, ApiError> {
        match members.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(ApiError::field(name, format!("{name} must be a string"))),
            None => Err(ApiError::field(name, format!("{name} is missing"))),
        }
    }

    /// The boolean member `name`, false when absent.
    fn flag(members: &Map<String, Value>, name: &str) -> Result<bool, ApiError> {
        match members.get(name) {
            Some(Value::Bool(flag)) => Ok(*flag),
            None | Some(Value::Null) => Ok(false),
            Some(_) => Err(ApiError::field(
                name,
                format!("{name} must be true or false"),
            )),
        }
    }
}

/// An option with a text value, as the audit log stores it.
fn text(name: &str, value: &str) -> InvocationOption {
    InvocationOption::new(name, OptionValue::Text(value.to_string()))
}

/// An option with a number value.
fn number(name: &str, value: i64) -> InvocationOption {
    InvocationOption::new(name, OptionValue::Integer(value))
}

/// Items per page unless `limit` says otherwise, and the most a page holds.
const PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// A page of a growing list: its `limit` and the opaque `cursor` of the previous page's
/// `next_cursor`.
#[derive(Debug, Default, serde::Deserialize)]
struct PageQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

impl PageQuery {
    /// The page size and the position to read before, or why the query is wrong (an
    /// `Invalid::Option` naming `limit` or `cursor`, so it is audited as invalid input).
    fn read(&self) -> Result<(u32, Option<i64>), Invalid> {
        let limit = match &self.limit {
            None => PAGE,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| Invalid::Option {
                    problem: format!(
                        "limit: {} is not a whole number from 1 to {MAX_PAGE}",
                        crate::model::echo(text)
                    ),
                })?,
        };
        let before = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok((limit, before))
    }

    /// The options the audit entry records.
    fn options(&self) -> Vec<InvocationOption> {
        [("cursor", &self.cursor), ("limit", &self.limit)]
            .into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| text(name, v)))
            .collect()
    }
}

/// A cursor as the API hands it out: `c` and the position in base 36. Opaque to callers (the
/// docs say to pass it back as it is), so its form may change.
fn encode_cursor(position: Option<i64>) -> Option<String> {
    position.map(|mut n| {
        let mut digits = Vec::new();
        loop {
            digits.push(char::from_digit((n % 36) as u32, 36).unwrap_or('0'));
            n /= 36;
            if n == 0 {
                break;
            }
        }
        digits.push('c');
        digits.into_iter().rev().collect()
    })
}

fn decode_cursor(cursor: &str) -> Result<i64, Invalid> {
    cursor
        .strip_prefix('c')
        .and_then(|digits| i64::from_str_radix(digits, 36).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| Invalid::Option {
            problem: format!(
                "cursor: {} is not a cursor this API gave out; pass a page's next_cursor as it is",
                crate::model::echo(cursor)
            ),
        })
}

/// A number from the path (`/incidents/{number}`); anything else names nothing: 404.
fn path_number(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no {what} {}", crate::model::echo(text)),
        )
    })
}

/// An RFC 3339 time in UTC to the millisecond, as every time in the API is written.
fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_make() {
        for n in [1, 35, 36, 1_000_000, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(Some(n)).unwrap()), Ok(n));
        }
        assert_eq!(encode_cursor(None), None);
        for bad in ["", "c", "x12", "c-5", "c0", "c!!"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
