//! Resilience layer for every outbound API call patchbay makes.
//!
//! Patchbay talks to several API upstreams (Discord's REST API and webhooks for alerts; Notion
//! and Retool next) and each of them fails in its own ways: they rate limit, time out, return
//! 5xx during incidents, or reject bad credentials. This module owns the policy for all of
//! that in one place so that API clients stay thin and every upstream is treated the same way.
//! Health checks do not come through here: a check is never retried nor short-circuited (see
//! `monitor::http_check`).
//!
//! * [`UpstreamError`] is the single error taxonomy (`error.rs`). Its
//!   [`UpstreamError::kind`] label is stable, so metrics and the audit log can group failures
//!   without parsing messages, and its messages never carry request headers or query
//!   strings, because tokens and webhook secrets live there.
//! * [`parse_retry_after`] reads `Retry-After` (`retry_after.rs`).
//! * [`RetryPolicy`] decides whether and when to retry (`retry.rs`): exponential backoff with
//!   full jitter, `Retry-After` honoured, and never a retry that could duplicate a side
//!   effect (see [`Idempotency`]). It is the one backoff of the crate: the alert dispatcher
//!   spaces its deliveries with it too.
//! * [`CircuitBreaker`] stops hammering an upstream that is down, so a dead upstream costs a
//!   fast local error instead of a timeout per call (`breaker.rs`).
//! * [`Holds`] keeps the waits 429s announced, per rate-limit bucket or for every bucket, so
//!   no request goes into a window the upstream said to keep out of (`holds.rs`).
//! * [`RateLimit`] spaces out calls so that patchbay stays inside an upstream's published
//!   quota instead of learning about it from 429s.
//! * [`Upstream`] ties these together (`upstream.rs`). [`Upstream::exchange`] is the one
//!   entry point: it returns the answer whatever its status, with its body, so a client reads
//!   what the upstream says about an error; [`Upstream::send`] is the same call for clients
//!   that need nothing from an error's body. Every upstream is registered with
//!   `Metrics::watch_upstream`, so its breaker shows in `patchbay_circuit_state`.
//!
//! # Retry rules
//!
//! * Only the kinds `rate_limited`, `timeout`, `connect` and `server` are retried; `auth`,
//!   `client`, `bad_response` and `circuit_open` never are, because repeating the same request
//!   cannot change their outcome.
//! * [`Idempotency::Idempotent`] calls are retried up to [`RetryPolicy::max_attempts`]
//!   attempts in total.
//! * [`Idempotency::NonIdempotent`] calls are retried only when the failure came from the
//!   connector (DNS lookup, TCP connect, TLS handshake, or a connect timeout), as reported by
//!   `reqwest::Error::is_connect`. Those failures happen before any byte of the request is
//!   written, so the upstream provably never saw the request. Any other failure of a
//!   non-idempotent call (a timeout after connecting, a reset, any other HTTP status) is
//!   returned at once, because the side effect may have happened; [`Unanswered::never_sent`]
//!   tells the caller which it was. The exceptions are answers of 429 and 529: the upstream
//!   refused the request without acting on it, so any call may be sent again after the wait.
//! * A [`Call::probe`] (a health check through an API client) makes one attempt and leaves
//!   the breaker out, as health checks always do; holds and the rate limit still apply.
//! * The wait before retry number `n` (0-based) is drawn uniformly from
//!   `[0, min(max_delay, base_delay * 2^n)]` ("full jitter").
//! * When the answer carries a `Retry-After` wait, the delay is the larger of that wait and
//!   the jittered backoff. If the requested wait exceeds [`RetryPolicy::max_delay`] the call
//!   gives up at once and returns that answer (for [`Upstream::send`], the
//!   [`UpstreamError::RateLimited`] error carrying the wait), so a caller such as the poller
//!   can reschedule instead of parking a task for minutes.
//! * `Retry-After` accepts delta-seconds and all three HTTP-date formats, and is capped at
//!   [`MAX_RETRY_AFTER`]; a date in the past means "now".
//! * A client whose caller owns retries (the alert courier: the outbox retries) sets
//!   `max_attempts` to 1 and gets every answer back at once.
//!
//! # Rate-limit holds
//!
//! A call names the rate-limit bucket it counts against ([`Call::bucket`]). While a hold on
//! that bucket, or a global one, is in force, the call fails fast with `rate_limited` and
//! sends nothing, or, with [`UpstreamConfig::wait_out_holds`], waits until the hold ends (a
//! client whose callers wait for the answer, such as Notion's). Holds are checked again after
//! the rate limiter's wait, so a call queued there when a 429 arrived is held too. With [`Holding::RetryAfter`] (the default) a 429 holds the call's bucket
//! (every bucket when it names none) for its `Retry-After`; with [`Holding::Caller`] the client
//! reads the wait and its scope from the answer and records it with [`Upstream::hold`].
//!
//! # Circuit breaker rules
//!
//! Only failures that say the upstream itself is unhealthy (`rate_limited`, `timeout`,
//! `connect`, `server`) count towards opening the breaker. Any other answer, including
//! 401/403/4xx, proves the upstream is up and so counts as a success: the request was wrong,
//! not the upstream. A call kept back by a hold or by the open breaker is no outcome at all.

mod breaker;
mod error;
mod holds;
mod retry;
mod retry_after;
mod upstream;

pub use breaker::{BreakerConfig, BreakerPermit, CircuitBreaker, CircuitState};
pub use error::{UpstreamError, classify_status, classify_transport};
pub use holds::{DEFAULT_HOLD, Holding, Holds};
pub use retry::{Idempotency, RetryPolicy};
pub use retry_after::{MAX_RETRY_AFTER, parse_retry_after};
pub use upstream::{
    AttemptObserver, Call, DEFAULT_BODY_LIMIT, Exchange, RateLimit, Unanswered, Upstream,
    UpstreamConfig,
};
