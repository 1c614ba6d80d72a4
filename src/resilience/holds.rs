//! Holds: the waits an upstream announced with a 429, per rate-limit bucket or for every
//! bucket, so that no request goes into a window the upstream said to keep out of.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::retry_after::MAX_RETRY_AFTER;

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
