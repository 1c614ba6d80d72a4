//! The circuit breaker: after a run of upstream faults it opens and calls fail fast, then lets
//! one probe through to learn whether the upstream is back. [`CircuitBreaker`] holds the state,
//! [`BreakerPermit`] is one admitted call that must be told its outcome, and [`CircuitState`] is
//! what the metrics show.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::error::UpstreamError;

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
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
