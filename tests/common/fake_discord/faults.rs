//! What a test injects instead of an answer ([`Fault`]: 429s with Discord's body and headers,
//! 5xx answers, requests that hang, answers lost or cut mid-body), and the 429 windows that make
//! a request sent before its `retry_after` ran out a violation.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::rest::{RestReply, api_route, error_json, route_matches, route_prefix};
use super::*;

impl FakeDiscord {
    /// Answers the next `times` requests with `method` and a path under `path` with `fault`
    /// instead of serving them. `path` is a route prefix as in [`FakeDiscord::attempts`], for
    /// example `format!("/channels/{ALERT_CHANNEL_ID}/messages")` or a webhook URL. Faults are
    /// used in the order they were injected; the requests stay in [`FakeDiscord::requests`]
    /// with the status answered.
    pub fn inject(&self, fault: Fault, method: &str, path: &str, times: usize) {
        match fault {
            Fault::RateLimited { retry_after, .. } => assert!(
                retry_after.is_finite() && retry_after >= 0.0,
                "inject: retry_after must be a number of seconds, got {retry_after}"
            ),
            Fault::Server(status) => assert!(
                (500..=599).contains(&status),
                "inject: Fault::Server takes a 5xx status, got {status}"
            ),
            Fault::Hang | Fault::Lost | Fault::Cut => {}
        }
        self.inner.lock().faults.push(Injected {
            fault,
            method: method.to_ascii_uppercase(),
            path: route_prefix(path),
            remaining: times,
        });
    }
}

impl St {
    /// The 429 for a request sent while an earlier 429's `retry_after` has not run out (for the
    /// same method and path, or for anything when that 429 was global), recorded as a violation.
    /// The check assumes the bot sends one request at a time to a route, as a client that waits
    /// out its bucket does: a request already on its way when the 429 was answered is counted
    /// too.
    pub(super) fn early_retry(
        &mut self,
        method: &str,
        path: &str,
        now: Instant,
    ) -> Option<Limited> {
        let route = api_route(path);
        let window = self
            .windows
            .iter()
            .find(|w| now < w.until && (w.global || (w.method == method && w.path == route)))?;
        let (retry_after, global) = (window.retry_after, window.global);
        let waited = now.saturating_duration_since(window.answered_at);
        let left = window.until.saturating_duration_since(now).as_secs_f64();
        let limited = Limited {
            retry_after: (left * 1000.0).ceil() / 1000.0,
            global,
            bucket: bucket(&window.method, &window.path),
        };
        let scope = if global { "a global" } else { "its" };
        self.violation(format!(
            "{method} {path}: sent {:.3} s after {scope} 429 that said to retry after \
             {retry_after} s (retry_after ignored)",
            waited.as_secs_f64()
        ));
        Some(limited)
    }

    /// Uses up one injected fault matching the request, if any.
    pub(super) fn take_fault(&mut self, method: &str, path: &str) -> Option<Fault> {
        let route = api_route(path);
        let at = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && f.method == method && route_matches(&f.path, route))?;
        let injected = &mut self.faults[at];
        injected.remaining -= 1;
        let fault = injected.fault;
        if injected.remaining == 0 {
            self.faults.remove(at);
        }
        Some(fault)
    }

    /// Starts the `retry_after` window of a 429 answered now.
    pub(super) fn open_window(
        &mut self,
        method: &str,
        path: &str,
        retry_after: f64,
        global: bool,
        now: Instant,
    ) -> Limited {
        let route = api_route(path).to_string();
        let limited = Limited {
            retry_after,
            global,
            bucket: bucket(method, &route),
        };
        self.windows.push(Window {
            method: method.to_string(),
            path: route,
            global,
            retry_after,
            answered_at: now,
            until: now + Duration::from_secs_f64(retry_after),
        });
        limited
    }
}

/// The answer of [`Fault::Cut`]: the status, a `Content-Length` promising the whole JSON body,
/// half of it, then an error that makes the server close the connection.
pub(super) fn cut_response(status: StatusCode, value: Option<Value>) -> Response {
    let body = value
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_default();
    let half = Bytes::from(body[..body.len() / 2].to_vec());
    // The error comes a moment after the first half, so that the server has flushed the status,
    // the headers and that half: an error in the same poll would close the connection before
    // anything went out, which is a dropped connection, not a cut answer.
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "answer cut by Fault::Cut",
            ))
        }),
    );
    let mut response = Response::new(axum::body::Body::from_stream(chunks));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("content-length", HeaderValue::from(body.len()));
    response
}

/// A stable, opaque bucket id per route, as Discord's `X-RateLimit-Bucket` is.
fn bucket(method: &str, route: &str) -> String {
    let mut hasher = DefaultHasher::new();
    (method, route).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Discord's 429: the body the spec calls `RatelimitedResponse` (without `code`, which real
/// 429s carry only for a few special limits) and the headers of Discord's rate limit docs.
/// `Retry-After` is whole seconds, rounded up; the body's `retry_after` and
/// `X-RateLimit-Reset-After` keep the fraction.
pub(super) fn rate_limited(limited: &Limited) -> Response {
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": limited.retry_after,
        "global": limited.global,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let reset = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        + limited.retry_after;
    let mut headers = vec![
        ("retry-after", format!("{}", limited.retry_after.ceil())),
        ("x-ratelimit-limit", RATE_LIMIT.to_string()),
        ("x-ratelimit-remaining", "0".to_string()),
        ("x-ratelimit-reset", format!("{reset:.3}")),
        (
            "x-ratelimit-reset-after",
            format!("{:.3}", limited.retry_after),
        ),
        ("x-ratelimit-bucket", limited.bucket.clone()),
        (
            "x-ratelimit-scope",
            if limited.global { "global" } else { "user" }.to_string(),
        ),
    ];
    if limited.global {
        headers.push(("x-ratelimit-global", "true".to_string()));
    }
    for (name, value) in headers {
        let value = HeaderValue::from_str(&value).expect("header values are ASCII");
        response.headers_mut().insert(name, value);
    }
    response
}

/// A 5xx as Discord's API answers it (`{"message": "500: Internal Server Error", "code": 0}`).
/// Cloudflare, in front of Discord, may answer a 502 or 503 with an HTML page instead, so the bot
/// must not rely on this body being there.
pub(super) fn server_error(status: u16) -> RestReply {
    let status = StatusCode::from_u16(status).expect("checked to be 5xx by inject");
    let reason = status.canonical_reason().unwrap_or("Server Error");
    (
        status,
        Some(error_json(0, &format!("{}: {reason}", status.as_u16()))),
    )
}
