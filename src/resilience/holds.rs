//! Holds: the waits an upstream announced with a 429, per rate-limit bucket or for every
//! bucket, so that no request goes into a window the upstream said to keep out of.
//! [`Holds`] keeps them; [`Holding`] says who reads a 429's wait and records it, the layer
//! (from `Retry-After`) or the caller (from what the upstream puts in the body).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::retry_after::MAX_RETRY_AFTER;

/// How long a 429 that names no wait holds its bucket back.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(1);

/// Who turns an upstream's 429 (or 503 with `Retry-After`) into a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// The layer: the answer holds the bucket the call named (every bucket when it named
    /// none) for the `Retry-After` wait, or [`DEFAULT_HOLD`] without one. Right for upstreams
    /// whose only word on the wait is that header (Notion, Retool).
    RetryAfter,
    /// The caller, which reads the wait and its scope from the answer and records it with
    /// [`Upstream::hold`](super::Upstream::hold). Discord puts a precise wait, whether the
    /// limit is global, and the name of the bucket the route belongs to in its 429s; only its
    /// client knows how to read them.
    Caller,
}

/// The waits an upstream announced, per bucket or for everything. A call asks
/// [`Holds::remaining`] before it sends and each 429 is recorded with [`Holds::hold`]; a hold
/// on one bucket leaves the others alone.
#[derive(Debug, Default)]
pub struct Holds {
    inner: Mutex<HoldsInner>,
}

#[derive(Debug, Default)]
struct HoldsInner {
    global: Option<Instant>,
    buckets: HashMap<String, Instant>,
}

impl Holds {
    /// Keeps requests on `bucket` (on every bucket when `None`) back for `wait`, capped at
    /// [`MAX_RETRY_AFTER`]. A shorter hold never shortens a longer one already in force.
    pub fn hold(&self, bucket: Option<&str>, wait: Duration) {
        let until = Instant::now() + wait.min(MAX_RETRY_AFTER);
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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

    /// How long requests on `bucket` (a request that names none: only a global hold applies)
    /// must still wait, the longer of the bucket's own hold and a global one, or `None` when
    /// they may go now. Forgets holds that have ended.
    pub fn remaining(&self, bucket: Option<&str>) -> Option<Duration> {
        let now = Instant::now();
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.buckets.retain(|_, until| *until > now);
        if inner.global.is_some_and(|until| until <= now) {
            inner.global = None;
        }
        let own = bucket.and_then(|bucket| inner.buckets.get(bucket).copied());
        [inner.global, own]
            .into_iter()
            .flatten()
            .max()
            .map(|until| until - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_hold_keeps_only_its_bucket_back() {
        let holds = Holds::default();
        holds.hold(Some("a"), Duration::from_secs(2));
        assert_eq!(holds.remaining(Some("a")), Some(Duration::from_secs(2)));
        assert_eq!(holds.remaining(Some("b")), None);
        assert_eq!(holds.remaining(None), None);
        // A shorter hold does not shorten it; a longer one extends it.
        holds.hold(Some("a"), Duration::from_secs(1));
        assert_eq!(holds.remaining(Some("a")), Some(Duration::from_secs(2)));
        holds.hold(Some("a"), Duration::from_secs(3));
        assert_eq!(holds.remaining(Some("a")), Some(Duration::from_secs(3)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(holds.remaining(Some("a")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_global_hold_keeps_every_bucket_back_and_is_capped() {
        let holds = Holds::default();
        holds.hold(Some("a"), Duration::from_secs(5));
        holds.hold(None, Duration::from_secs(2));
        assert_eq!(holds.remaining(Some("b")), Some(Duration::from_secs(2)));
        assert_eq!(holds.remaining(None), Some(Duration::from_secs(2)));
        // The longer of the bucket's own hold and the global one.
        assert_eq!(holds.remaining(Some("a")), Some(Duration::from_secs(5)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(holds.remaining(Some("b")), None);
        holds.hold(None, Duration::from_secs(3600));
        assert_eq!(holds.remaining(None), Some(MAX_RETRY_AFTER));
    }
}
