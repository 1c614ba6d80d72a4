//! How often and when to try a call again: [`Idempotency`] says whether repeating a call could
//! duplicate a side effect, and [`RetryPolicy`] is the one backoff of the crate (full jitter,
//! `Retry-After` as a floor), used by [`Upstream`](super::Upstream) between attempts and by the
//! alert dispatcher between deliveries of an outbox row.

use std::time::Duration;

use super::error::UpstreamError;

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
/// `never_sent` is true only when the request provably never left (the connector failed, or
/// it could not be built), i.e. no byte of it reached the upstream.
pub(super) fn may_retry(idempotency: Idempotency, err: &UpstreamError, never_sent: bool) -> bool {
    match idempotency {
        Idempotency::Idempotent => err.is_retryable(),
        Idempotency::NonIdempotent => never_sent && err.is_retryable(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
