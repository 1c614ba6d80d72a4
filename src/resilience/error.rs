//! The error taxonomy every outbound client shares: [`UpstreamError`] with its stable
//! [`UpstreamError::kind`] labels, and the two classifiers that produce it, one for an HTTP
//! status ([`classify_status`]) and one for a transport failure ([`classify_transport`]).
//! Messages never carry request headers or query strings, because tokens live there.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use super::retry_after::parse_retry_after;

/// The longest transport error message kept, so logs stay readable.
const MAX_MESSAGE_LEN: usize = 200;

/// Why a call to an upstream failed.
///
/// Every outbound client returns this type so that callers, metrics and the
/// audit log can reason about failures uniformly. Messages are short, human
/// readable, and never contain request headers or URL query strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream rejected our credentials (HTTP 401 or 403).
    #[error("upstream rejected the credentials (HTTP {status})")]
    Auth {
        /// The HTTP status the upstream returned.
        status: u16,
    },
    /// The upstream asked us to slow down (HTTP 429, or 503 with `Retry-After`), or a hold
    /// it announced earlier kept the request back.
    #[error("rate limited{}", fmt_retry_after(.retry_after.as_ref()))]
    RateLimited {
        /// How long the upstream asked us to wait, capped at
        /// [`MAX_RETRY_AFTER`](super::MAX_RETRY_AFTER).
        retry_after: Option<Duration>,
    },
    /// The upstream did not answer (headers and body) within the per-attempt timeout.
    #[error("upstream timed out")]
    Timeout,
    /// The connection failed: DNS, refused, reset, or TLS.
    #[error("could not reach upstream: {0}")]
    Connect(String),
    /// The upstream failed with a 5xx status.
    #[error("upstream server error (HTTP {status})")]
    Server {
        /// The HTTP status the upstream returned.
        status: u16,
    },
    /// The response could not be used: unparseable or unexpected body, body
    /// too large, bad redirect, or a request that could not be built.
    #[error("bad response from upstream: {0}")]
    BadResponse(String),
    /// The upstream refused the request with a 4xx status other than 401, 403
    /// or 429.
    #[error("upstream refused the request (HTTP {status})")]
    Client {
        /// The HTTP status the upstream returned.
        status: u16,
    },
    /// The circuit breaker for this upstream is open, so no request was sent.
    #[error("circuit open for {upstream}, retry in {}", fmt_duration(.retry_in))]
    CircuitOpen {
        /// The name of the upstream whose breaker is open.
        upstream: String,
        /// How long until the breaker will let a probe through (a hint).
        retry_in: Duration,
    },
}

impl UpstreamError {
    /// A stable lowercase label for metrics and the audit log.
    ///
    /// These strings are part of the metrics contract; do not rename them.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Auth { .. } => "auth",
            UpstreamError::RateLimited { .. } => "rate_limited",
            UpstreamError::Timeout => "timeout",
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Server { .. } => "server",
            UpstreamError::BadResponse(_) => "bad_response",
            UpstreamError::Client { .. } => "client",
            UpstreamError::CircuitOpen { .. } => "circuit_open",
        }
    }

    /// Whether repeating the same request could plausibly succeed.
    ///
    /// True for `rate_limited`, `timeout`, `connect` and `server`; whether a
    /// retry actually happens also depends on [`Idempotency`](super::Idempotency).
    pub fn is_retryable(&self) -> bool {
        self.is_upstream_fault()
    }

    /// Whether this failure says the upstream itself is unhealthy, and so
    /// counts towards opening its [`CircuitBreaker`](super::CircuitBreaker).
    ///
    /// Auth and client errors do not: the upstream answered, the request was
    /// wrong. A bad response does not either, because it is deterministic.
    pub fn is_upstream_fault(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Timeout
                | UpstreamError::Connect(_)
                | UpstreamError::Server { .. }
        )
    }

    /// The wait the upstream asked for, if this is a rate limit that said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// Renders the optional suffix of the rate-limited message.
fn fmt_retry_after(retry_after: Option<&Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}", fmt_duration(d)),
        None => String::new(),
    }
}

/// A wait as people read it, in the one duration module's precise format (`3s`, `250ms`,
/// `29.1s`): exact, so nobody reads a rounded-down wait and retries too early.
fn fmt_duration(d: &Duration) -> String {
    crate::duration::precise(*d)
}

/// Maps an HTTP status (and its headers) to an error, or `None` for success.
///
/// Statuses below 400 (2xx, and 3xx that reached us unfollowed) are not
/// errors. 401/403 are [`UpstreamError::Auth`], 429 is
/// [`UpstreamError::RateLimited`], and so are 529 (overloaded, Notion's
/// `service_overload`) and 503 with a valid `Retry-After`, because that is how
/// several upstreams signal back-pressure. Other 5xx are [`UpstreamError::Server`] and other
/// 4xx are [`UpstreamError::Client`].
pub fn classify_status(status: StatusCode, headers: &HeaderMap) -> Option<UpstreamError> {
    let code = status.as_u16();
    if code < 400 {
        return None;
    }
    let retry_after = || {
        headers
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
    };
    Some(match code {
        401 | 403 => UpstreamError::Auth { status: code },
        429 => UpstreamError::RateLimited {
            retry_after: retry_after(),
        },
        // 529 is not in the HTTP registry; Notion (and others) answer it when overloaded, with
        // the same meaning as a 429: slow down, nothing was done.
        529 => UpstreamError::RateLimited {
            retry_after: retry_after(),
        },
        503 => match retry_after() {
            Some(wait) => UpstreamError::RateLimited {
                retry_after: Some(wait),
            },
            None => UpstreamError::Server { status: code },
        },
        500..=599 => UpstreamError::Server { status: code },
        400..=499 => UpstreamError::Client { status: code },
        _ => UpstreamError::BadResponse(format!("unexpected HTTP status {code}")),
    })
}

/// Maps a reqwest transport error to an error kind.
///
/// Timeouts become [`UpstreamError::Timeout`]; connector failures,
/// connections lost mid-request and answers whose body ends early (the
/// connection closed after the headers: reqwest reports those as body or
/// decode errors) become [`UpstreamError::Connect`], because they are
/// transport trouble that a retry may well get past; redirect and request
/// building failures, and a body that arrived whole but is not valid JSON
/// (`Response::json`), become [`UpstreamError::BadResponse`]. The message is
/// built from the error's source chain rather than its `Display`, because
/// reqwest's `Display` appends the full URL, query string included.
pub fn classify_transport(err: &reqwest::Error) -> UpstreamError {
    if err.is_timeout() {
        UpstreamError::Timeout
    } else if let Some(status) = err.status() {
        classify_status(status, &HeaderMap::new())
            .unwrap_or_else(|| UpstreamError::BadResponse(format!("unexpected status {status}")))
    } else if err.is_redirect() {
        UpstreamError::BadResponse(format!("bad redirect: {}", source_chain(err)))
    } else if err.is_builder() {
        UpstreamError::BadResponse(format!("invalid request: {}", source_chain(err)))
    } else if err.is_decode() && is_json_error(err) {
        UpstreamError::BadResponse(source_chain(err))
    } else if err.is_decode() || err.is_body() {
        UpstreamError::Connect(format!(
            "the connection closed before the whole answer arrived: {}",
            source_chain(err)
        ))
    } else {
        // `is_connect` failures and any other failure to send (reset, closed
        // connection, protocol error) are transport trouble worth a retry.
        UpstreamError::Connect(source_chain(err))
    }
}

/// Whether a decode error comes from parsing a complete body as JSON (the body is wrong), rather
/// than from reading it (the transfer broke off).
fn is_json_error(err: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if e.is::<serde_json::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Joins the messages of an error's sources, skipping the top-level reqwest
/// message (which embeds the URL), then redacts and truncates the result.
fn source_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        let msg = e.to_string();
        // Nested errors often repeat their source's message; keep it once.
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        source = e.source();
    }
    if parts.is_empty() {
        parts.push("transport error".to_owned());
    }
    let mut message = redact_urls(&parts.join(": "));
    if message.len() > MAX_MESSAGE_LEN {
        let mut cut = MAX_MESSAGE_LEN;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// Removes query strings and fragments from anything URL-shaped in `text`.
///
/// Defence in depth: a nested error could still echo a URL, and patchbay's
/// upstream URLs may carry tokens in their query strings.
fn redact_urls(text: &str) -> String {
    text.split(' ')
        .map(|word| match (word.find("://"), word.find(['?', '#'])) {
            (Some(scheme), Some(query)) if query > scheme => &word[..query],
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    use crate::resilience::MAX_RETRY_AFTER;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        if let Some(v) = retry_after {
            map.insert(http::header::RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn status(code: u16, retry_after: Option<&str>) -> Option<UpstreamError> {
        classify_status(StatusCode::from_u16(code).unwrap(), &headers(retry_after))
    }

    #[test]
    fn classify_status_table() {
        assert_eq!(status(200, None), None);
        assert_eq!(status(204, None), None);
        assert_eq!(status(301, None), None);
        assert_eq!(status(401, None), Some(UpstreamError::Auth { status: 401 }));
        assert_eq!(status(403, None), Some(UpstreamError::Auth { status: 403 }));
        assert_eq!(
            status(404, None),
            Some(UpstreamError::Client { status: 404 })
        );
        assert_eq!(
            status(429, None),
            Some(UpstreamError::RateLimited { retry_after: None })
        );
        assert_eq!(
            status(429, Some("3")),
            Some(UpstreamError::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            })
        );
        // A date far in the future is capped; one in the past means "now".
        assert_eq!(
            status(429, Some("Fri, 01 Jan 2100 00:00:00 GMT")),
            Some(UpstreamError::RateLimited {
                retry_after: Some(MAX_RETRY_AFTER)
            })
        );
        assert_eq!(
            status(429, Some("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(UpstreamError::RateLimited {
                retry_after: Some(Duration::ZERO)
            })
        );
        assert_eq!(
            status(429, Some("soon")),
            Some(UpstreamError::RateLimited { retry_after: None })
        );
        assert_eq!(
            status(500, None),
            Some(UpstreamError::Server { status: 500 })
        );
        assert_eq!(
            status(502, None),
            Some(UpstreamError::Server { status: 502 })
        );
        assert_eq!(
            status(503, None),
            Some(UpstreamError::Server { status: 503 })
        );
        assert_eq!(
            status(503, Some("7")),
            Some(UpstreamError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert_eq!(
            status(503, Some("garbage")),
            Some(UpstreamError::Server { status: 503 })
        );
        assert_eq!(
            status(418, None),
            Some(UpstreamError::Client { status: 418 })
        );
        assert_eq!(status(599, None).map(|e| e.kind()), Some("server"));
    }

    #[test]
    fn kinds_and_messages() {
        let cases = [
            (
                UpstreamError::Auth { status: 401 },
                "auth",
                "upstream rejected the credentials (HTTP 401)",
            ),
            (
                UpstreamError::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                },
                "rate_limited",
                "rate limited, retry after 3s",
            ),
            (
                UpstreamError::RateLimited {
                    retry_after: Some(Duration::from_millis(250)),
                },
                "rate_limited",
                "rate limited, retry after 250ms",
            ),
            (
                UpstreamError::RateLimited { retry_after: None },
                "rate_limited",
                "rate limited",
            ),
            (UpstreamError::Timeout, "timeout", "upstream timed out"),
            (
                UpstreamError::Connect("connection refused".into()),
                "connect",
                "could not reach upstream: connection refused",
            ),
            (
                UpstreamError::Server { status: 502 },
                "server",
                "upstream server error (HTTP 502)",
            ),
            (
                UpstreamError::BadResponse("body too large".into()),
                "bad_response",
                "bad response from upstream: body too large",
            ),
            (
                UpstreamError::Client { status: 404 },
                "client",
                "upstream refused the request (HTTP 404)",
            ),
            (
                UpstreamError::CircuitOpen {
                    upstream: "notion".into(),
                    retry_in: Duration::from_millis(29_100),
                },
                "circuit_open",
                "circuit open for notion, retry in 29.1s",
            ),
        ];
        for (err, kind, message) in cases {
            assert_eq!(err.kind(), kind);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn redacts_query_strings() {
        assert_eq!(
            redact_urls("error for https://x.test/a?token=s3cret#frag: refused"),
            "error for https://x.test/a refused",
        );
        assert!(!redact_urls("see http://h/p?key=s3cret and more").contains("s3cret"));
        assert_eq!(redact_urls("is this ok? yes"), "is this ok? yes");
    }
}
