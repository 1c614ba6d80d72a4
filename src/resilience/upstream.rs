//! [`Upstream`]: one named upstream with its circuit breaker, rate limiter, holds and retry
//! policy, and the two calls that go through all of them. [`Upstream::exchange`] returns the
//! answer whatever its status, body included, so a client reads what the upstream says about
//! an error (Discord's `retry_after` and codes, Notion's `code`); [`Upstream::send`] is the
//! same call for clients that need nothing from an error's body.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use super::breaker::{BreakerConfig, CircuitBreaker, CircuitState};
use super::error::{UpstreamError, classify_status, classify_transport};
use super::holds::{DEFAULT_HOLD, Holding, Holds};
use super::retry::{Idempotency, RetryPolicy, may_retry};

/// The default [`UpstreamConfig::body_limit`]: 1 MiB, far more than an error body or a
/// Discord message object, and little enough to hold in memory.
pub const DEFAULT_BODY_LIMIT: usize = 1 << 20;

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
    /// The time one attempt may take: sending the request, the answer's headers and reading
    /// its body (up to `body_limit`). A body that trickles in is a timeout like a silent
    /// upstream.
    pub timeout: Duration,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// When the circuit breaker opens.
    pub breaker: BreakerConfig,
    /// An optional client-side rate limit; calls wait for it rather than fail.
    pub rate_limit: Option<RateLimit>,
    /// The most of an answer's body read; a longer body is cut there and the answer says so
    /// ([`Exchange::truncated`]).
    pub body_limit: usize,
    /// Who turns a 429 into a hold: the layer from `Retry-After`, or the caller.
    pub holding: Holding,
    /// What a call does while its bucket is held: false, fail fast with `rate_limited` (the
    /// caller retries on its own schedule, as the alert outbox does); true, wait the hold out
    /// when it ends within the retry policy's `max_delay` (a client whose callers wait for the
    /// answer, as a Notion sync does with several calls in flight).
    pub wait_out_holds: bool,
}

impl Default for UpstreamConfig {
    /// A 10 s per-attempt timeout, default retry and breaker, no rate limit, bodies up to
    /// [`DEFAULT_BODY_LIMIT`], and 429s held by the layer from `Retry-After`.
    fn default() -> Self {
        UpstreamConfig {
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            rate_limit: None,
            body_limit: DEFAULT_BODY_LIMIT,
            holding: Holding::RetryAfter,
            wait_out_holds: false,
        }
    }
}

/// What the layer needs to know of one call besides its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    /// Whether the call may be repeated (see the retry rules of the module).
    pub idempotency: Idempotency,
    /// The rate-limit bucket the request counts against: it waits out that bucket's holds (and
    /// global ones), and with [`Holding::RetryAfter`] a 429 holds it. `None`: only global
    /// holds apply, and a 429 holds every bucket.
    pub bucket: Option<&'a str>,
    /// A health probe: one attempt, and the circuit breaker neither consulted nor told, so a
    /// probe measures the upstream as it is and its failures are the state machine's to count
    /// (holds and the rate limit still apply: a probe spends the same quota).
    pub probe: bool,
}

impl<'a> Call<'a> {
    /// A call that is safe to repeat, in no particular bucket.
    pub fn idempotent() -> Self {
        Call {
            idempotency: Idempotency::Idempotent,
            bucket: None,
            probe: false,
        }
    }

    /// A health probe (see [`Call::probe`]).
    pub fn probe() -> Self {
        Call {
            idempotency: Idempotency::Idempotent,
            bucket: None,
            probe: true,
        }
    }

    /// A call that could duplicate a side effect if repeated, in no particular bucket.
    pub fn non_idempotent() -> Self {
        Call {
            idempotency: Idempotency::NonIdempotent,
            bucket: None,
            probe: false,
        }
    }

    /// The same call, counted against `bucket`.
    #[must_use]
    pub fn in_bucket(self, bucket: &'a str) -> Self {
        Call {
            bucket: Some(bucket),
            ..self
        }
    }
}

/// An upstream's answer, whatever its status: the status, the headers and the body read up to
/// [`UpstreamConfig::body_limit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The answer's HTTP status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    /// The body, at most [`UpstreamConfig::body_limit`] bytes of it.
    pub body: Vec<u8>,
    /// Whether the body was longer than the limit and was cut there.
    pub truncated: bool,
}

impl Exchange {
    /// The answer in the error taxonomy (see [`classify_status`]); `None` below 400.
    pub fn error(&self) -> Option<UpstreamError> {
        classify_status(self.status, &self.headers)
    }

    /// The answer itself when its status is below 400, else its error.
    pub fn error_for_status(self) -> Result<Self, UpstreamError> {
        match self.error() {
            None => Ok(self),
            Some(error) => Err(error),
        }
    }

    /// The body parsed as JSON. A body cut at the limit or one that does not parse as `T` is a
    /// [`UpstreamError::BadResponse`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, UpstreamError> {
        if self.truncated {
            return Err(UpstreamError::BadResponse(format!(
                "the answer is larger than {} bytes",
                self.body.len()
            )));
        }
        serde_json::from_slice(&self.body)
            .map_err(|err| UpstreamError::BadResponse(format!("unexpected JSON: {err}")))
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A call that ended without an answer to return: why, and whether its request may have
/// reached the upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct Unanswered {
    /// Why: a transport failure (`timeout`, `connect`, `bad_response`), or a call kept back
    /// without sending (`circuit_open`, or `rate_limited` when a hold was in force).
    pub error: UpstreamError,
    /// True only when the request provably never left: a hold or the open breaker kept it
    /// back, connecting failed (`reqwest::Error::is_connect`: DNS, TCP, TLS), or it could not
    /// be built. When false, a non-idempotent request may have taken effect although its
    /// answer was lost (a timeout, a connection that broke after the request left).
    pub never_sent: bool,
}

impl Unanswered {
    /// A call the layer kept back without sending.
    fn kept_back(error: UpstreamError) -> Self {
        Unanswered {
            error,
            never_sent: true,
        }
    }
}

impl From<Unanswered> for UpstreamError {
    fn from(unanswered: Unanswered) -> Self {
        unanswered.error
    }
}

/// Told the outcome of every attempt an [`Upstream`] makes: `Ok(status)` for an answer below
/// 400, else the error (an answer's or a transport's). Clients count requests and rate
/// pressure with it.
pub type AttemptObserver = Arc<dyn Fn(Result<StatusCode, &UpstreamError>) + Send + Sync>;

/// Shared state behind an [`Upstream`] handle.
struct UpstreamInner {
    name: String,
    config: UpstreamConfig,
    breaker: CircuitBreaker,
    limiter: Option<DefaultDirectRateLimiter>,
    holds: Holds,
    observer: Option<AttemptObserver>,
}

/// One named upstream with its retry policy, circuit breaker, rate limit and holds.
///
/// Cloning is cheap and clones share the breaker, the rate limiter and the holds, so every
/// client of the same upstream (and the metrics endpoint) sees the same health and quota.
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

impl Upstream {
    /// Creates an upstream named `name` (used in errors, logs and metrics).
    pub fn new(name: impl Into<String>, config: UpstreamConfig) -> Self {
        Upstream::build(name.into(), config, None)
    }

    /// An upstream whose every attempt is reported to `observer`.
    pub fn observed(
        name: impl Into<String>,
        config: UpstreamConfig,
        observer: AttemptObserver,
    ) -> Self {
        Upstream::build(name.into(), config, Some(observer))
    }

    fn build(name: String, config: UpstreamConfig, observer: Option<AttemptObserver>) -> Self {
        Upstream {
            inner: Arc::new(UpstreamInner {
                name,
                config,
                breaker: CircuitBreaker::new(config.breaker),
                limiter: config.rate_limit.map(|rl| RateLimiter::direct(rl.quota())),
                holds: Holds::default(),
                observer,
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

    /// Keeps calls in `bucket` (every call when `None`) back for `wait`, capped at
    /// [`MAX_RETRY_AFTER`](super::MAX_RETRY_AFTER): what a client with [`Holding::Caller`]
    /// records once it has read a 429's wait and scope.
    pub fn hold(&self, bucket: Option<&str>, wait: Duration) {
        self.inner.holds.hold(bucket, wait);
    }

    /// Sends the request `build` makes and returns the upstream's answer whatever its status,
    /// through every part of the layer.
    ///
    /// `build` is called once per attempt because a `RequestBuilder` cannot be replayed. Each
    /// attempt fails fast while `call.bucket` is held or the breaker is open, waits for the
    /// rate limiter, takes the breaker's permission, and sends with the per-attempt timeout
    /// covering the answer's headers and its body. The breaker is told every outcome, a 429
    /// holds the bucket (with [`Holding::RetryAfter`]), and an attempt that failed in a way
    /// the retry rules allow to repeat is retried after the policy's delay.
    ///
    /// Returns the last answer received, whatever its status; or, when no answer came (or the
    /// first attempt was kept back), [`Unanswered`] with the error and whether the request
    /// may have left. A retry kept back by a hold or by a breaker that opened part-way
    /// returns the previous attempt's outcome, which names the real cause; later calls fail
    /// fast.
    pub async fn exchange(
        &self,
        call: Call<'_>,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Exchange, Unanswered> {
        let inner = &*self.inner;
        let policy = inner.config.retry;
        let max_attempts = if call.probe {
            1
        } else {
            policy.max_attempts.max(1)
        };
        // The previous attempt's outcome, returned when a retry cannot be made.
        let mut previous: Option<Result<Exchange, Unanswered>> = None;

        for attempt in 1..=max_attempts {
            // A hold or an open breaker fails fast before the rate limiter, so neither burns
            // quota nor makes callers wait to fail.
            // Holds are checked before the rate limiter (a held call neither spends quota nor
            // waits to fail) and again after it: a 429 that arrived while this call queued
            // holds it too, or it would be sent inside the window the upstream asked to keep.
            loop {
                if let Some(wait) = inner.holds.remaining(call.bucket) {
                    if inner.config.wait_out_holds && wait <= policy.max_delay {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return previous.unwrap_or_else(|| {
                        Err(Unanswered::kept_back(UpstreamError::RateLimited {
                            retry_after: Some(wait),
                        }))
                    });
                }
                if !call.probe
                    && let Some(retry_in) = inner.breaker.open_for()
                {
                    return previous.unwrap_or_else(|| Err(self.circuit_open(retry_in)));
                }
                if let Some(limiter) = &inner.limiter {
                    limiter.until_ready().await;
                }
                if inner.holds.remaining(call.bucket).is_none() {
                    break;
                }
            }
            // The permit is taken after the rate-limit wait so that a probe slot is never
            // held by a caller that is merely queueing.
            let permit = if call.probe {
                None
            } else {
                match inner.breaker.try_acquire() {
                    Ok(permit) => Some(permit),
                    Err(retry_in) => {
                        return previous.unwrap_or_else(|| Err(self.circuit_open(retry_in)));
                    }
                }
            };

            let outcome = self.attempt(&build).await;
            let (error, never_sent) = match &outcome {
                // An upstream that answers 429 (or 529, overloaded) refused the request before
                // acting on it, so even a call that must not be repeated may be sent again.
                Ok(answer) => (answer.error(), refused_unprocessed(answer.status)),
                Err(unanswered) => (Some(unanswered.error.clone()), unanswered.never_sent),
            };
            if let Some(permit) = permit {
                permit.record(error.as_ref().map_or(Ok(()), Err));
            }
            if let Some(observer) = &inner.observer {
                match (&outcome, &error) {
                    (_, Some(error)) => observer(Err(error)),
                    (Ok(answer), None) => observer(Ok(answer.status)),
                    (Err(_), None) => {}
                }
            }
            let Some(error) = error else {
                if attempt > 1 {
                    debug!(upstream = %inner.name, attempt, "upstream call succeeded after retry");
                }
                return outcome;
            };
            if let (Ok(_), Holding::RetryAfter, Some(wait)) =
                (&outcome, inner.config.holding, rate_limit_wait(&error))
            {
                inner.holds.hold(call.bucket, wait);
            }

            if !may_retry(call.idempotency, &error, never_sent) {
                return outcome;
            }
            if attempt == max_attempts {
                // A caller with one attempt retries (and logs) on its own terms.
                if max_attempts > 1 {
                    warn!(
                        upstream = %inner.name,
                        attempt,
                        kind = error.kind(),
                        "upstream call failed, no attempts left"
                    );
                }
                return outcome;
            }
            // A 429 without `Retry-After` holds its bucket for the default hold: wait at least
            // that long, or the retry would only meet its own hold.
            let wait = match (&outcome, inner.config.holding) {
                (Ok(_), Holding::RetryAfter) => rate_limit_wait(&error).or(error.retry_after()),
                _ => error.retry_after(),
            };
            let Some(delay) = policy.delay_for(attempt - 1, wait) else {
                warn!(
                    upstream = %inner.name,
                    attempt,
                    kind = error.kind(),
                    retry_after_ms = error.retry_after().map(|d| d.as_millis() as u64),
                    "upstream asked to wait longer than the retry policy allows, giving up"
                );
                return outcome;
            };
            debug!(
                upstream = %inner.name,
                attempt,
                kind = error.kind(),
                delay_ms = delay.as_millis() as u64,
                "retrying upstream call"
            );
            previous = Some(outcome);
            tokio::time::sleep(delay).await;
        }
        // The loop always returns on its last attempt; this is only reached if that invariant
        // is broken, and then the previous outcome is the truth.
        previous.unwrap_or(Err(Unanswered {
            error: UpstreamError::Timeout,
            never_sent: false,
        }))
    }

    /// [`Upstream::exchange`] for a client that needs nothing from an error's body: the call
    /// in no bucket (only global holds apply), and any answer of 400 or above turned into its
    /// [`UpstreamError`].
    pub async fn send(
        &self,
        idempotency: Idempotency,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Exchange, UpstreamError> {
        let call = Call {
            idempotency,
            bucket: None,
            probe: false,
        };
        self.exchange(call, build).await?.error_for_status()
    }

    /// Makes one attempt: the request, the answer's headers and its body, all within the
    /// per-attempt timeout.
    async fn attempt(
        &self,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Exchange, Unanswered> {
        let limit = self.inner.config.body_limit;
        let answer = tokio::time::timeout(self.inner.config.timeout, async {
            let response = build().send().await?;
            let status = response.status();
            let headers = response.headers().clone();
            let (body, truncated) = read_body(response, limit).await?;
            Ok::<_, reqwest::Error>(Exchange {
                status,
                headers,
                body,
                truncated,
            })
        })
        .await;
        match answer {
            // The request may have left: a timeout never says how far it got.
            Err(_elapsed) => Err(Unanswered {
                error: UpstreamError::Timeout,
                never_sent: false,
            }),
            Ok(Err(err)) => Err(Unanswered {
                error: classify_transport(&err),
                // A connector failure happens before any byte of the request is written, and
                // a request that could not be built was never sent.
                never_sent: err.is_connect() || err.is_builder(),
            }),
            Ok(Ok(exchange)) => Ok(exchange),
        }
    }

    /// The fail-fast error for this upstream.
    fn circuit_open(&self, retry_in: Duration) -> Unanswered {
        Unanswered::kept_back(UpstreamError::CircuitOpen {
            upstream: self.inner.name.clone(),
            retry_in,
        })
    }
}

/// Whether an answer with `status` says the upstream refused the request without acting on it:
/// 429 Too Many Requests, and 529, which Notion (and others) answer when overloaded.
fn refused_unprocessed(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 529)
}

/// How long a rate-limited answer holds its bucket, or `None` for any other error.
fn rate_limit_wait(error: &UpstreamError) -> Option<Duration> {
    match error {
        UpstreamError::RateLimited { retry_after } => Some(retry_after.unwrap_or(DEFAULT_HOLD)),
        _ => None,
    }
}

/// Reads a body up to `limit` bytes; returns it and whether there was more.
async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        if chunk.len() > room {
            // The rest is left unread: abandoning the connection is cheaper than downloading
            // what nobody will look at.
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers spawn `exchange` on tokio's multi-threaded runtime, so its future (and the
    /// handle) must be `Send`; this fails to compile otherwise.
    #[test]
    fn exchange_future_and_upstream_are_send_and_sync() {
        fn assert_send<T: Send>(_: &T) {}
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Upstream>();
        let upstream = Upstream::new("u", UpstreamConfig::default());
        let client = reqwest::Client::new();
        let future = upstream.exchange(Call::idempotent().in_bucket("b"), || {
            client.get("http://127.0.0.1:9/")
        });
        assert_send(&future);
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
            .exchange(Call::idempotent(), || {
                built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                client.get("http://127.0.0.1:9/")
            })
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Unanswered {
                error: UpstreamError::CircuitOpen {
                    upstream: "test".into(),
                    retry_in: Duration::from_secs(30)
                },
                never_sent: true,
            }
        );
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_bucket_fails_fast_without_building_a_request() {
        let upstream = Upstream::new("test", UpstreamConfig::default());
        upstream.hold(Some("messages:1"), Duration::from_secs(2));
        let built = std::sync::atomic::AtomicUsize::new(0);
        let client = reqwest::Client::new();
        let build = || {
            built.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            client.get("http://127.0.0.1:9/")
        };
        let err = upstream
            .exchange(Call::non_idempotent().in_bucket("messages:1"), build)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Unanswered {
                error: UpstreamError::RateLimited {
                    retry_after: Some(Duration::from_secs(2))
                },
                never_sent: true,
            }
        );
        assert_eq!(built.load(std::sync::atomic::Ordering::SeqCst), 0);
        // A held bucket says nothing about the upstream's health.
        assert_eq!(upstream.circuit_state(), CircuitState::Closed);
    }

    #[test]
    fn exchanges_classify_and_parse_their_answer() {
        let answer = |status: u16, body: &str, truncated: bool| Exchange {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            truncated,
        };
        let ok = answer(200, r#"{"id": 7}"#, false);
        assert_eq!(ok.error(), None);
        assert_eq!(ok.json::<serde_json::Value>().unwrap()["id"], 7);
        assert_eq!(ok.clone().error_for_status(), Ok(ok));
        let refused = answer(404, r#"{"code": "object_not_found"}"#, false);
        assert_eq!(refused.error(), Some(UpstreamError::Client { status: 404 }));
        assert_eq!(refused.text(), r#"{"code": "object_not_found"}"#);
        assert_eq!(
            refused.error_for_status(),
            Err(UpstreamError::Client { status: 404 })
        );
        let cut = answer(200, r#"{"id": "#, true);
        assert_eq!(
            cut.json::<serde_json::Value>().unwrap_err().kind(),
            "bad_response"
        );
        let garbled = answer(200, "<html>", false);
        assert_eq!(
            garbled.json::<serde_json::Value>().unwrap_err().kind(),
            "bad_response"
        );
    }
}
