//! [`Upstream`]: one named upstream with its circuit breaker, rate limiter and retry policy,
//! and [`Upstream::send`], the call that goes through all of them.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::breaker::{BreakerConfig, CircuitBreaker, CircuitState};
use super::error::{UpstreamError, classify_status, classify_transport};
use super::retry::{Idempotency, RetryPolicy, may_retry};

/// How much of an error response body is read before the response is dropped.
///
/// Reading a small error body lets the connection go back to the pool; a
/// larger one is cheaper to abandon than to download.
const DRAIN_LIMIT: usize = 64 * 1024;

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
