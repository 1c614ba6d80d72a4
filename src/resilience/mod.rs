//! Resilience layer for every outbound HTTP call patchbay makes.
//!
//! Patchbay talks to several upstreams (the feeds it polls, Notion, Retool and
//! Discord webhooks) and each of them fails in its own ways: they rate limit,
//! time out, return 5xx during incidents, or reject bad credentials. This
//! module owns the policy for all of that in one place so that API clients stay
//! thin and every upstream is treated the same way:
//!
//! * [`UpstreamError`] is the single error taxonomy. Its [`UpstreamError::kind`]
//!   label is stable, so metrics and the audit log can group failures without
//!   parsing messages, and its messages never carry request headers or query
//!   strings, because tokens and webhook secrets live there.
//! * [`RetryPolicy`] decides whether and when to retry: exponential backoff
//!   with full jitter, `Retry-After` honoured, and never a retry that could
//!   duplicate a side effect (see [`Idempotency`]).
//! * [`CircuitBreaker`] stops hammering an upstream that is down, so a dead
//!   upstream costs a fast local error instead of a timeout per call.
//! * [`RateLimit`] spaces out calls so that patchbay stays inside an upstream's
//!   published quota instead of learning about it from 429s.
//! * [`Upstream`] ties these together; its [`Upstream::send`] is the one
//!   entry point clients use.
//!
//! # Retry rules
//!
//! * Only the kinds `rate_limited`, `timeout`, `connect` and `server` are
//!   retried; `auth`, `client`, `bad_response` and `circuit_open` never are,
//!   because repeating the same request cannot change their outcome.
//! * [`Idempotency::Idempotent`] calls are retried up to
//!   [`RetryPolicy::max_attempts`] attempts in total.
//! * [`Idempotency::NonIdempotent`] calls are retried only when the failure
//!   came from the connector (DNS lookup, TCP connect, TLS handshake, or a
//!   connect timeout), as reported by `reqwest::Error::is_connect`. Those
//!   failures happen before any byte of the request is written, so the
//!   upstream provably never saw the request. Any other failure of a
//!   non-idempotent call (a timeout after connecting, a reset, any HTTP
//!   status) is returned at once, because the side effect may have happened.
//! * The wait before retry number `n` (0-based) is drawn uniformly from
//!   `[0, min(max_delay, base_delay * 2^n)]` ("full jitter").
//! * When the error carries a `Retry-After` wait, the delay is the larger of
//!   that wait and the jittered backoff. If the requested wait exceeds
//!   [`RetryPolicy::max_delay`] the call gives up at once and returns the
//!   [`UpstreamError::RateLimited`] error carrying that wait, so a caller such
//!   as the poller can reschedule instead of parking a task for minutes.
//! * `Retry-After` accepts delta-seconds and all three HTTP-date formats, and
//!   is capped at [`MAX_RETRY_AFTER`]; a date in the past means "now".
//!
//! # Circuit breaker rules
//!
//! Only failures that say the upstream itself is unhealthy (`rate_limited`,
//! `timeout`, `connect`, `server`) count towards opening the breaker. Any
//! other answer, including 401/403/4xx, proves the upstream is up and so
//! counts as a success: the request was wrong, not the upstream.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, StatusCode};
use tokio::time::Instant;
use tracing::{debug, warn};

/// The longest `Retry-After` wait patchbay will ever honour.
///
/// Upstreams occasionally send absurd values (hours, or dates years ahead);
/// capping them keeps one bad header from stalling a worker indefinitely.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How much of an error response body is read before the response is dropped.
///
/// Reading a small error body lets the connection go back to the pool; a
/// larger one is cheaper to abandon than to download.
const DRAIN_LIMIT: usize = 64 * 1024;

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
    /// The upstream asked us to slow down (HTTP 429, or 503 with `Retry-After`).
    #[error("rate limited{}", fmt_retry_after(.retry_after))]
    RateLimited {
        /// How long the upstream asked us to wait, capped at [`MAX_RETRY_AFTER`].
        retry_after: Option<Duration>,
    },
    /// The upstream did not answer within the per-attempt timeout.
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
    /// retry actually happens also depends on [`Idempotency`].
    pub fn is_retryable(&self) -> bool {
        self.is_upstream_fault()
    }

    /// Whether this failure says the upstream itself is unhealthy, and so
    /// counts towards opening its [`CircuitBreaker`].
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
fn fmt_retry_after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}", fmt_duration(d)),
        None => String::new(),
    }
}

/// Renders a duration the way people read it: whole seconds (rounded up, so
/// a caller never retries too early), or milliseconds below one second.
fn fmt_duration(d: &Duration) -> String {
    if d.is_zero() {
        "0s".to_owned()
    } else if *d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis().max(1))
    } else {
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        format!("{secs}s")
    }
}

/// Maps an HTTP status (and its headers) to an error, or `None` for success.
///
/// Statuses below 400 (2xx, and 3xx that reached us unfollowed) are not
/// errors. 401/403 are [`UpstreamError::Auth`], 429 is
/// [`UpstreamError::RateLimited`], and 503 with a valid `Retry-After` is
/// treated as a rate limit too, because that is how several upstreams signal
/// planned back-pressure. Other 5xx are [`UpstreamError::Server`] and other
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

/// Parses a `Retry-After` value relative to `now`.
///
/// Accepts delta-seconds (`"120"`) and HTTP-dates in IMF-fixdate, RFC 850 and
/// asctime form. Dates in the past yield zero; every result is capped at
/// [`MAX_RETRY_AFTER`]. Returns `None` for anything unparseable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too large for u64 still means "a very long time".
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = parse_http_date(value)?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Parses the three HTTP-date formats of RFC 9110 §5.6.7.
///
/// The weekday is ignored because it is redundant with the date.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let tokens: Vec<&str> = value
        .split([' ', ',', '-'])
        .filter(|t| !t.is_empty())
        .collect();
    let (day, month, year, time) = match tokens.as_slice() {
        // IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" and
        // RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT".
        [_, day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        // asctime "Sun Nov  6 08:49:37 1994".
        [_, month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let day: i64 = parse_digits(day, 1, 2)?;
    let month = match month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = match year.len() {
        4 => parse_digits(year, 4, 4)?,
        // RFC 850 two-digit years: pick the century closest to now, which for
        // the foreseeable future means 19xx for 70-99 and 20xx otherwise.
        2 => {
            let yy: i64 = parse_digits(year, 2, 2)?;
            if yy >= 70 { 1900 + yy } else { 2000 + yy }
        }
        _ => return None,
    };
    let mut clock = time.split(':');
    let hour: i64 = parse_digits(clock.next()?, 2, 2)?;
    let minute: i64 = parse_digits(clock.next()?, 2, 2)?;
    let second: i64 = parse_digits(clock.next()?, 2, 2)?;
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59);
    if secs < 0 {
        // Before 1970 is certainly in the past, which means "retry now".
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Parses an all-digit token of `min..=max` characters.
fn parse_digits(token: &str, min: usize, max: usize) -> Option<i64> {
    if token.len() < min || token.len() > max || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`), written out to avoid a date-time dependency.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Whether a call may be repeated without risking a duplicated side effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat (GET, PUT of a full resource, DELETE, or a POST the
    /// upstream deduplicates): retried for every retryable kind.
    Idempotent,
    /// Repeating could duplicate a side effect (e.g. posting a Discord
    /// message): retried only when the request provably never left.
    NonIdempotent,
}

/// How many times to try a call and how long to wait between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first; 0 is treated as 1.
    pub max_attempts: u32,
    /// The backoff cap before the first retry; it doubles for each retry.
    pub base_delay: Duration,
    /// The largest wait between attempts; also the largest `Retry-After`
    /// wait honoured before giving up.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 200 ms base delay, 10 s maximum delay: enough to ride
    /// out a blip without holding a Discord interaction open for long.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The upper bound of the wait before retry number `retry` (0-based):
    /// `min(max_delay, base_delay * 2^retry)`, saturating instead of overflowing.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// A full-jitter wait before retry number `retry`: uniform in
    /// `[0, backoff_cap(retry)]`, so that many clients recovering from the
    /// same incident do not retry in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = u64::try_from(self.backoff_cap(retry).as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::random_range(0..=cap))
    }

    /// The wait before retry number `retry` given the upstream's requested
    /// wait, or `None` to give up because the upstream asked for longer than
    /// [`RetryPolicy::max_delay`].
    pub fn delay_for(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let jittered = self.backoff(retry);
        match retry_after {
            Some(wait) if wait > self.max_delay => None,
            Some(wait) => Some(wait.max(jittered)),
            None => Some(jittered),
        }
    }
}

/// Whether a failed attempt may be retried, ignoring the attempt budget.
///
/// `never_sent` is true only when the connector failed, i.e. no byte of the
/// request reached the upstream.
fn may_retry(idempotency: Idempotency, err: &UpstreamError, never_sent: bool) -> bool {
    match idempotency {
        Idempotency::Idempotent => err.is_retryable(),
        Idempotency::NonIdempotent => never_sent && err.is_retryable(),
    }
}

/// The waits an upstream announced (a 429's `retry_after`), per bucket or for everything, so that
/// no request goes into a window the upstream said to keep out of. A client asks
/// [`Holds::remaining`] before each request on a bucket and records each 429 with
/// [`Holds::hold`]; a hold on one bucket leaves the others alone.
#[derive(Debug, Default)]
pub struct Holds {
    inner: Mutex<HoldsInner>,
}

#[derive(Debug, Default)]
struct HoldsInner {
    global: Option<Instant>,
    buckets: std::collections::HashMap<String, Instant>,
}

impl Holds {
    /// Keeps requests on `bucket` (on every bucket when `None`) back for `wait`, capped at
    /// [`MAX_RETRY_AFTER`]. A shorter hold never shortens a longer one already in force.
    pub fn hold(&self, bucket: Option<&str>, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_RETRY_AFTER);
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match bucket {
            None => {
                if inner.global.is_none_or(|current| current < until) {
                    inner.global = Some(until);
                }
            }
            Some(bucket) => {
                let current = inner.buckets.entry(bucket.to_string()).or_insert(until);
                *current = (*current).max(until);
            }
        }
    }

    /// How long requests on `bucket` must still wait (the longer of its own hold and a global
    /// one), or `None` when they may go now. Forgets holds that have ended.
    pub fn remaining(&self, bucket: &str) -> Option<Duration> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.buckets.retain(|_, until| *until > now);
        if inner.global.is_some_and(|until| until <= now) {
            inner.global = None;
        }
        [inner.global, inner.buckets.get(bucket).copied()]
            .into_iter()
            .flatten()
            .max()
            .map(|until| until - now)
    }
}

/// When a [`CircuitBreaker`] opens and how long it stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive upstream faults that open the breaker; 0 is treated as 1.
    pub failure_threshold: u32,
    /// How long the breaker stays open before it lets one probe through.
    pub open_duration: Duration,
}

impl Default for BreakerConfig {
    /// Five consecutive faults open the breaker for thirty seconds.
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_duration: Duration::from_secs(30),
        }
    }
}

/// The externally visible state of a [`CircuitBreaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls flow normally.
    Closed,
    /// Calls fail fast with [`UpstreamError::CircuitOpen`].
    Open,
    /// The open period is over: one probe call decides whether to close again.
    HalfOpen,
}

impl CircuitState {
    /// A stable lowercase label for metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// The breaker's mutable state, always accessed under its mutex.
#[derive(Debug, Clone, Copy)]
enum BreakerInner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

/// A per-upstream circuit breaker.
///
/// After `failure_threshold` consecutive upstream faults it opens and calls
/// fail fast; after `open_duration` it admits exactly one probe (concurrent
/// callers still fail fast) whose success closes it and whose failure
/// reopens it. Time comes from `tokio::time::Instant`, so tests can drive it
/// with tokio's paused clock. The lock is never held across an `.await`.
#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Mutex<BreakerInner>,
}

impl CircuitBreaker {
    /// Creates a closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        CircuitBreaker {
            config,
            inner: Mutex::new(BreakerInner::Closed { failures: 0 }),
        }
    }

    /// The breaker's configuration.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    /// Locks the state, recovering from poisoning: the state is a plain enum
    /// that is valid whatever a panicking thread was doing.
    fn lock(&self) -> MutexGuard<'_, BreakerInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state; cheap enough for a metrics endpoint (one brief,
    /// uncontended lock). An open breaker whose open period has elapsed
    /// reports `HalfOpen`, because the next call would be admitted as a probe.
    pub fn state(&self) -> CircuitState {
        match *self.lock() {
            BreakerInner::Closed { .. } => CircuitState::Closed,
            BreakerInner::Open { until } if Instant::now() < until => CircuitState::Open,
            BreakerInner::Open { .. } | BreakerInner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// How long calls will keep failing fast, or `None` if a call would be
    /// admitted right now. Does not take the probe slot.
    pub fn open_for(&self) -> Option<Duration> {
        let now = Instant::now();
        match *self.lock() {
            BreakerInner::Closed { .. } => None,
            BreakerInner::Open { until } if now < until => Some(until - now),
            BreakerInner::Open { .. } => None,
            BreakerInner::HalfOpen { probe_in_flight } => {
                probe_in_flight.then_some(self.config.open_duration)
            }
        }
    }

    /// Asks to make a call. On success the returned permit must be told the
    /// outcome; dropping it unrecorded (e.g. a cancelled call) counts as
    /// neither success nor failure and frees the probe slot.
    ///
    /// On refusal returns how long until a probe might be admitted (a hint:
    /// while another probe is in flight it is the full open duration).
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, Duration> {
        let now = Instant::now();
        let mut inner = self.lock();
        let probe = match *inner {
            BreakerInner::Closed { .. } => false,
            BreakerInner::Open { until } if now < until => return Err(until - now),
            BreakerInner::Open { .. }
            | BreakerInner::HalfOpen {
                probe_in_flight: false,
            } => {
                *inner = BreakerInner::HalfOpen {
                    probe_in_flight: true,
                };
                true
            }
            BreakerInner::HalfOpen {
                probe_in_flight: true,
            } => return Err(self.config.open_duration),
        };
        Ok(BreakerPermit {
            breaker: self,
            probe,
            recorded: false,
        })
    }

    /// Applies the outcome of a call admitted by `try_acquire`.
    fn apply(&self, probe: bool, healthy: Option<bool>) {
        let mut inner = self.lock();
        match (*inner, probe, healthy) {
            // A cancelled or neutral probe frees the slot for the next caller.
            (BreakerInner::HalfOpen { .. }, true, None) => {
                *inner = BreakerInner::HalfOpen {
                    probe_in_flight: false,
                };
            }
            (BreakerInner::HalfOpen { .. }, true, Some(true)) => {
                *inner = BreakerInner::Closed { failures: 0 };
            }
            (BreakerInner::HalfOpen { .. }, true, Some(false)) => {
                *inner = self.opened();
            }
            (BreakerInner::Closed { .. }, false, Some(true)) => {
                *inner = BreakerInner::Closed { failures: 0 };
            }
            (BreakerInner::Closed { failures }, false, Some(false)) => {
                let failures = failures.saturating_add(1);
                *inner = if failures >= self.config.failure_threshold.max(1) {
                    self.opened()
                } else {
                    BreakerInner::Closed { failures }
                };
            }
            // Late outcomes of calls admitted before the breaker changed
            // state say nothing about the current episode; ignore them.
            _ => {}
        }
    }

    /// The state of a breaker that opens now.
    fn opened(&self) -> BreakerInner {
        BreakerInner::Open {
            until: Instant::now() + self.config.open_duration,
        }
    }
}

/// Permission to make one call through a [`CircuitBreaker`].
///
/// Record the outcome with [`BreakerPermit::record`], [`BreakerPermit::success`]
/// or [`BreakerPermit::failure`]. Dropping it unrecorded is neutral.
#[derive(Debug)]
#[must_use = "a permit should be told the outcome of the call"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    recorded: bool,
}

impl BreakerPermit<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// Records the call's outcome: upstream faults (see
    /// [`UpstreamError::is_upstream_fault`]) count as failures, everything
    /// else, including auth and client errors, as success.
    pub fn record(self, outcome: Result<(), &UpstreamError>) {
        match outcome {
            Err(err) if err.is_upstream_fault() => self.failure(),
            _ => self.success(),
        }
    }

    /// Records that the upstream answered healthily.
    pub fn success(mut self) {
        self.recorded = true;
        self.breaker.apply(self.probe, Some(true));
    }

    /// Records an upstream fault.
    pub fn failure(mut self) {
        self.recorded = true;
        self.breaker.apply(self.probe, Some(false));
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.apply(self.probe, None);
        }
    }
}

/// A client-side rate limit for one upstream: a sustained rate plus a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls per second allowed on average.
    pub per_second: NonZeroU32,
    /// Calls allowed back to back after a quiet period.
    pub burst: NonZeroU32,
}

impl RateLimit {
    /// The governor quota this limit stands for.
    pub fn quota(&self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// Everything that shapes how calls to one upstream behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// The time one attempt may take until response headers arrive. Reading
    /// the body afterwards is bounded by the `reqwest::Client`'s own timeout.
    pub timeout: Duration,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// When the circuit breaker opens.
    pub breaker: BreakerConfig,
    /// An optional client-side rate limit; calls wait for it rather than fail.
    pub rate_limit: Option<RateLimit>,
}

impl Default for UpstreamConfig {
    /// A 10 s per-attempt timeout, default retry and breaker, no rate limit.
    fn default() -> Self {
        UpstreamConfig {
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            rate_limit: None,
        }
    }
}

/// Shared state behind an [`Upstream`] handle.
struct UpstreamInner {
    name: String,
    config: UpstreamConfig,
    breaker: CircuitBreaker,
    limiter: Option<DefaultDirectRateLimiter>,
}

/// One named upstream with its retry policy, circuit breaker and rate limit.
///
/// Cloning is cheap and clones share the breaker and rate limiter, so every
/// client of the same upstream sees the same health and quota.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<UpstreamInner>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.inner.name)
            .field("config", &self.inner.config)
            .field("circuit_state", &self.circuit_state())
            .finish()
    }
}

/// A failed attempt plus whether the request provably never left.
struct AttemptFailure {
    error: UpstreamError,
    never_sent: bool,
}

impl Upstream {
    /// Creates an upstream named `name` (used in errors, logs and metrics).
    pub fn new(name: impl Into<String>, config: UpstreamConfig) -> Self {
        Upstream {
            inner: Arc::new(UpstreamInner {
                name: name.into(),
                config,
                breaker: CircuitBreaker::new(config.breaker),
                limiter: config.rate_limit.map(|rl| RateLimiter::direct(rl.quota())),
            }),
        }
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The upstream's configuration.
    pub fn config(&self) -> &UpstreamConfig {
        &self.inner.config
    }

    /// The circuit breaker's current state, for the metrics endpoint.
    pub fn circuit_state(&self) -> CircuitState {
        self.inner.breaker.state()
    }

    /// Sends a request built by `build`, applying rate limit, circuit breaker,
    /// per-attempt timeout, status classification and retries.
    ///
    /// `build` is called once per attempt because a `RequestBuilder` cannot
    /// be replayed. Each attempt waits for the rate limiter, asks the breaker,
    /// sends with the per-attempt timeout, and turns any status of 400 or
    /// above into an [`UpstreamError`] (reading and discarding a bounded part
    /// of the error body so the connection can be reused). Only a response
    /// with a status below 400 is returned.
    ///
    /// If the breaker opens part-way through the retries, the last upstream
    /// error is returned rather than `CircuitOpen`, because it names the
    /// real cause; later calls fail fast with `CircuitOpen`.
    pub async fn send(
        &self,
        idempotency: Idempotency,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, UpstreamError> {
        let inner = &*self.inner;
        let policy = inner.config.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut last_error: Option<UpstreamError> = None;

        for attempt in 1..=max_attempts {
            // Fail fast before queueing on the rate limiter, so an open
            // breaker neither burns quota nor makes callers wait to fail.
            if let Some(retry_in) = inner.breaker.open_for() {
                return Err(last_error.unwrap_or_else(|| self.circuit_open(retry_in)));
            }
            if let Some(limiter) = &inner.limiter {
                limiter.until_ready().await;
            }
            // The permit is taken after the rate-limit wait so that a probe
            // slot is never held by a caller that is merely queueing.
            let permit = match inner.breaker.try_acquire() {
                Ok(permit) => permit,
                Err(retry_in) => {
                    return Err(last_error.unwrap_or_else(|| self.circuit_open(retry_in)));
                }
            };

            let failure = match self.attempt(&build).await {
                Ok(response) => {
                    permit.success();
                    if attempt > 1 {
                        debug!(upstream = %inner.name, attempt, "upstream call succeeded after retry");
                    }
                    return Ok(response);
                }
                Err(failure) => {
                    permit.record(Err(&failure.error));
                    failure
                }
            };

            let error = failure.error;
            if !may_retry(idempotency, &error, failure.never_sent) {
                return Err(error);
            }
            if attempt == max_attempts {
                warn!(
                    upstream = %inner.name,
                    attempt,
                    kind = error.kind(),
                    "upstream call failed, no attempts left"
                );
                return Err(error);
            }
            let Some(delay) = policy.delay_for(attempt - 1, error.retry_after()) else {
                warn!(
                    upstream = %inner.name,
                    attempt,
                    kind = error.kind(),
                    retry_after_ms = error.retry_after().map(|d| d.as_millis() as u64),
                    "upstream asked to wait longer than the retry policy allows, giving up"
                );
                return Err(error);
            };
            debug!(
                upstream = %inner.name,
                attempt,
                kind = error.kind(),
                delay_ms = delay.as_millis() as u64,
                "retrying upstream call"
            );
            last_error = Some(error);
            tokio::time::sleep(delay).await;
        }
        // The loop always returns on its last attempt; this is only reached
        // if that invariant is broken, and then the last error is the truth.
        Err(last_error.unwrap_or(UpstreamError::Timeout))
    }

    /// Makes one attempt: send with the timeout and classify the result.
    async fn attempt(
        &self,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AttemptFailure> {
        let deadline = Instant::now() + self.inner.config.timeout;
        let response = match tokio::time::timeout_at(deadline, build().send()).await {
            Err(_elapsed) => {
                return Err(AttemptFailure {
                    error: UpstreamError::Timeout,
                    never_sent: false,
                });
            }
            Ok(Err(err)) => {
                return Err(AttemptFailure {
                    error: classify_transport(&err),
                    never_sent: err.is_connect(),
                });
            }
            Ok(Ok(response)) => response,
        };
        match classify_status(response.status(), response.headers()) {
            None => Ok(response),
            Some(error) => {
                // Whether the drain finishes in time does not matter: it only
                // exists to let the connection be reused.
                let _ = tokio::time::timeout_at(deadline, drain(response)).await;
                Err(AttemptFailure {
                    error,
                    never_sent: false,
                })
            }
        }
    }

    /// The fail-fast error for this upstream.
    fn circuit_open(&self, retry_in: Duration) -> UpstreamError {
        UpstreamError::CircuitOpen {
            upstream: self.inner.name.clone(),
            retry_in,
        }
    }
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes of a response body.
async fn drain(mut response: reqwest::Response) {
    let mut read = 0usize;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > DRAIN_LIMIT {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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

    /// 1994-11-06T08:49:37Z, the example date of RFC 9110.
    fn rfc_example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
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
    fn retry_after_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("abc", now), None);
    }

    #[test]
    fn retry_after_http_dates() {
        let now = rfc_example() - Duration::from_secs(90);
        let ninety = Some(Duration::from_secs(90));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            ninety
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now),
            ninety
        );
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), ninety);
        // In the past: retry now.
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                rfc_example() + Duration::from_secs(5)
            ),
            Some(Duration::ZERO)
        );
        // Leap years and month ends land on the right day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29T00:00:00Z
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2000 00:00:10 GMT", leap),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        // Far future is capped.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 10:49:37 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
        for bad in [
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:01 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn backoff_cap_grows_exponentially_and_stops_at_max() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let caps: Vec<u64> = (0..6)
            .map(|r| policy.backoff_cap(r).as_millis() as u64)
            .collect();
        assert_eq!(caps, vec![100, 200, 400, 800, 1000, 1000]);
        // Huge retry numbers saturate instead of overflowing.
        assert_eq!(policy.backoff_cap(31), Duration::from_secs(1));
        assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_within_bounds_and_varies() {
        let policy = RetryPolicy::default();
        for retry in 0..8 {
            let cap = policy.backoff_cap(retry);
            let samples: Vec<Duration> = (0..500).map(|_| policy.backoff(retry)).collect();
            assert!(
                samples.iter().all(|d| *d <= cap),
                "retry {retry} exceeded {cap:?}"
            );
            // Full jitter spreads over the whole range, not just near the cap.
            assert!(
                samples.iter().any(|d| *d < cap / 2),
                "retry {retry}: no low samples"
            );
            assert!(
                samples.iter().any(|d| *d > cap / 2),
                "retry {retry}: no high samples"
            );
        }
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.backoff(3), Duration::ZERO);
    }

    #[test]
    fn retry_after_sets_a_floor_or_gives_up() {
        let policy = RetryPolicy::default();
        for _ in 0..100 {
            let d = policy.delay_for(0, Some(Duration::from_secs(2))).unwrap();
            assert!(d >= Duration::from_secs(2));
            assert!(policy.delay_for(0, None).unwrap() <= policy.base_delay);
        }
        assert_eq!(policy.delay_for(0, Some(Duration::from_secs(11))), None);
        assert_eq!(
            policy.delay_for(0, Some(policy.max_delay)),
            Some(policy.max_delay)
        );
    }

    #[test]
    fn retry_rules_by_idempotency_and_kind() {
        use Idempotency::*;
        let retryable = [
            UpstreamError::RateLimited { retry_after: None },
            UpstreamError::Timeout,
            UpstreamError::Connect("refused".into()),
            UpstreamError::Server { status: 502 },
        ];
        let final_ = [
            UpstreamError::Auth { status: 401 },
            UpstreamError::Client { status: 404 },
            UpstreamError::BadResponse("x".into()),
            UpstreamError::CircuitOpen {
                upstream: "u".into(),
                retry_in: Duration::ZERO,
            },
        ];
        for err in &retryable {
            assert!(may_retry(Idempotent, err, false), "{err:?}");
            assert!(!may_retry(NonIdempotent, err, false), "{err:?}");
            assert!(may_retry(NonIdempotent, err, true), "{err:?}");
        }
        for err in &final_ {
            assert!(!may_retry(Idempotent, err, false), "{err:?}");
            assert!(!may_retry(NonIdempotent, err, true), "{err:?}");
        }
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
                "circuit open for notion, retry in 30s",
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

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: threshold,
            open_duration: Duration::from_secs(30),
        })
    }

    fn fail(b: &CircuitBreaker) {
        b.try_acquire().expect("call should be admitted").failure();
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_threshold_and_fails_fast() {
        let b = breaker(5);
        for _ in 0..4 {
            fail(&b);
            assert_eq!(b.state(), CircuitState::Closed);
        }
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open);
        assert_eq!(b.state().as_str(), "open");
        assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(30));

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(20));
        assert_eq!(b.open_for(), Some(Duration::from_secs(20)));
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_success_resets_consecutive_failures() {
        let b = breaker(3);
        fail(&b);
        fail(&b);
        b.try_acquire().unwrap().success();
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), CircuitState::Closed);
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_one_probe_and_closes_on_success() {
        let b = breaker(2);
        fail(&b);
        fail(&b);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert_eq!(b.state().as_str(), "half_open");

        let probe = b.try_acquire().expect("probe admitted");
        assert!(probe.is_probe());
        // Concurrent callers still fail fast while the probe is in flight.
        assert!(b.try_acquire().is_err());
        assert!(b.try_acquire().is_err());
        assert_eq!(b.state(), CircuitState::HalfOpen);

        probe.success();
        assert_eq!(b.state(), CircuitState::Closed);
        let normal = b.try_acquire().expect("closed admits calls");
        assert!(!normal.is_probe());
        normal.success();
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_probe_failure_reopens() {
        let b = breaker(2);
        fail(&b);
        fail(&b);
        tokio::time::advance(Duration::from_secs(31)).await;
        b.try_acquire().expect("probe admitted").failure();
        assert_eq!(b.state(), CircuitState::Open);
        // The new open period starts at the probe failure.
        assert_eq!(b.try_acquire().unwrap_err(), Duration::from_secs(30));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(b.try_acquire().expect("next probe").is_probe());
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_probe_frees_the_slot() {
        let b = breaker(1);
        fail(&b);
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(b.try_acquire().expect("probe admitted"));
        assert_eq!(b.state(), CircuitState::HalfOpen);
        let second = b.try_acquire().expect("a new probe is admitted");
        assert!(second.is_probe());
        second.success();
        assert_eq!(b.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn auth_and_client_errors_do_not_open_the_breaker() {
        let b = breaker(2);
        for _ in 0..10 {
            b.try_acquire()
                .unwrap()
                .record(Err(&UpstreamError::Auth { status: 401 }));
            b.try_acquire()
                .unwrap()
                .record(Err(&UpstreamError::Client { status: 404 }));
        }
        assert_eq!(b.state(), CircuitState::Closed);
        b.try_acquire()
            .unwrap()
            .record(Err(&UpstreamError::Timeout));
        b.try_acquire()
            .unwrap()
            .record(Err(&UpstreamError::Server { status: 500 }));
        assert_eq!(b.state(), CircuitState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn late_outcomes_do_not_close_an_open_breaker() {
        let b = breaker(1);
        let slow = b.try_acquire().unwrap();
        fail(&b);
        assert_eq!(b.state(), CircuitState::Open);
        slow.success();
        assert_eq!(b.state(), CircuitState::Open);
    }

    /// Callers spawn `send` on tokio's multi-threaded runtime, so its future
    /// (and the handle) must be `Send`; this fails to compile otherwise.
    #[test]
    fn send_future_and_upstream_are_send_and_sync() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Upstream>();
        let upstream = Upstream::new("u", UpstreamConfig::default());
        let client = reqwest::Client::new();
        let future = upstream.send(Idempotency::Idempotent, || {
            client.get("http://127.0.0.1:9/")
        });
        assert_send(&future);
        assert_eq!(upstream.name(), "u");
    }

    #[tokio::test(start_paused = true)]
    async fn upstream_fails_fast_when_open_without_building_a_request() {
        let upstream = Upstream::new(
            "test",
            UpstreamConfig {
                breaker: BreakerConfig {
                    failure_threshold: 1,
                    open_duration: Duration::from_secs(30),
                },
                ..UpstreamConfig::default()
            },
        );
        upstream.inner.breaker.try_acquire().unwrap().failure();
        assert_eq!(upstream.circuit_state(), CircuitState::Open);
        let built = std::sync::atomic::AtomicUsize::new(0);
        let client = reqwest::Client::new();
        let err = upstream
            .send(Idempotency::Idempotent, || {
                built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                client.get("http://127.0.0.1:9/")
            })
            .await
            .unwrap_err();
        assert_eq!(
            err,
            UpstreamError::CircuitOpen {
                upstream: "test".into(),
                retry_in: Duration::from_secs(30)
            }
        );
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
