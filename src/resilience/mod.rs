//! Resilience layer for every outbound HTTP call patchbay makes.
//!
//! Patchbay talks to several upstreams (the feeds it polls, Notion, Retool and
//! Discord webhooks) and each of them fails in its own ways: they rate limit,
//! time out, return 5xx during incidents, or reject bad credentials. This
//! module owns the policy for all of that in one place so that API clients stay
//! thin and every upstream is treated the same way:
//!
//! * [`UpstreamError`] is the single error taxonomy (`error.rs`). Its [`UpstreamError::kind`]
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

mod breaker;
mod error;
mod holds;
mod retry;
mod retry_after;
mod upstream;

pub use breaker::{BreakerConfig, BreakerPermit, CircuitBreaker, CircuitState};
pub use error::{UpstreamError, classify_status, classify_transport};
pub use holds::Holds;
pub use retry::{Idempotency, RetryPolicy};
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};
pub use upstream::{RateLimit, Upstream, UpstreamConfig};
