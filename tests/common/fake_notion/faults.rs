//! What stands in front of the routes: the outage switch, the `Retry-After` holds of 429s and
//! 529s (Notion's limit is per integration, so a hold covers every route), injected faults,
//! the token bucket of the rate limit, and the capabilities an integration may lack. Holds,
//! faults and the bucket apply to requests that carry the integration's token and version
//! only: a request Notion would refuse as unauthorized takes no injected fault away from the
//! integration's own requests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::rest::Reply;
use super::*;

/// Notion's message for a 429.
const RATE_LIMITED: &str = "You have been rate limited. Please try again in a few minutes.";

impl FakeNotion {
    /// Answers the next `times` requests whose path starts with `route` (`/v1/pages`, or with a
    /// method first: `PATCH /v1/blocks/`) with `fault` instead of serving them, faults injected
    /// earlier first. Each stays in [`FakeNotion::requests`] with the status answered.
    pub fn inject(&self, route: &str, fault: Fault, times: usize) {
        if let Fault::Status(status) = fault {
            assert!(
                (500..=599).contains(&status),
                "inject: Fault::Status takes a 5xx status, got {status}"
            );
        }
        let (method, prefix) = match route.split_once(' ') {
            Some((method, prefix)) => (Some(method.to_ascii_uppercase()), prefix.to_string()),
            None => (None, route.to_string()),
        };
        self.inner.lock().faults.push(Injected {
            method,
            prefix,
            fault,
            remaining: times,
        });
    }

    /// While on, every request is answered 503 `service_unavailable` (Notion is down).
    pub fn set_outage(&self, outage: bool) {
        self.inner.lock().outage = outage;
        self.inner.bump();
    }

    /// The rate limit (`None`: none, as when the fake starts). Setting one starts with a full
    /// bucket.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.inner.lock().bucket = limit.map(|limit| Bucket {
            limit,
            tokens: limit.burst,
            at: Instant::now(),
        });
    }

    /// Whether the integration has the "insert content" capability: without it, creating pages
    /// and appending blocks is 403 `restricted_resource`.
    pub fn set_insert_capability(&self, allowed: bool) {
        self.inner.lock().insert_capability = allowed;
    }

    /// Whether the integration has the "update content" capability: without it, updating pages
    /// and data sources is 403 `restricted_resource`.
    pub fn set_update_capability(&self, allowed: bool) {
        self.inner.lock().update_capability = allowed;
    }
}

/// What answers a request before (or instead of) its route.
pub(super) enum Pre {
    Reply(Reply),
    /// Serve it after this long.
    Delay(Duration),
    Hang,
    Drop,
}

/// Whole seconds, rounded up, at least one: what `Retry-After` says for `wait`.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

fn limited(retry_after: u64) -> Reply {
    Reply::error(429, "rate_limited", RATE_LIMITED).retry_after(retry_after)
}

impl St {
    /// A request inside a `Retry-After` hold (a violation), or an injected fault. `peer` is the
    /// client end of the request's connection.
    pub(super) fn before(
        &mut self,
        method: &str,
        path: &str,
        now: Instant,
        peer: SocketAddr,
    ) -> Option<Pre> {
        if let Some(hold) = &self.hold
            && now < hold.until
            && (peer == hold.peer || now.duration_since(hold.answered) >= IN_FLIGHT)
        {
            let (waited, said) = (now.duration_since(hold.answered), hold.retry_after);
            let left = whole_seconds(hold.until.duration_since(now));
            self.violation(format!(
                "{method} {path}: sent {:.3} s after a 429/529 whose Retry-After said {said} s",
                waited.as_secs_f64()
            ));
            return Some(Pre::Reply(limited(left)));
        }
        let at = self.faults.iter().position(|f| {
            f.remaining > 0
                && f.method.as_deref().is_none_or(|m| m == method)
                && path.starts_with(&f.prefix)
        })?;
        let injected = &mut self.faults[at];
        injected.remaining -= 1;
        let fault = injected.fault.clone();
        if injected.remaining == 0 {
            self.faults.remove(at);
        }
        Some(match fault {
            Fault::RateLimited { retry_after_secs } => {
                self.hold_for(now, retry_after_secs, peer);
                Pre::Reply(limited(retry_after_secs))
            }
            Fault::Overloaded | Fault::Status(529) => {
                self.hold_for(now, 1, peer);
                Pre::Reply(server_error(529).retry_after(1))
            }
            Fault::Conflict => Pre::Reply(Reply::error(
                409,
                "conflict_error",
                "Conflict occurred while saving. Please try again.",
            )),
            Fault::Status(status) => Pre::Reply(server_error(status)),
            Fault::Delay(delay) => Pre::Delay(delay),
            Fault::Hang => Pre::Hang,
            Fault::Drop => Pre::Drop,
        })
    }

    /// The 503 of an outage.
    pub(super) fn outage(&self) -> Option<Reply> {
        self.outage.then(|| {
            Reply::error(
                503,
                "service_unavailable",
                "Notion is unavailable, please try again later.",
            )
        })
    }

    /// Takes a token from the bucket; when none is left, the 429 (a violation: the client went
    /// past Notion's rate) with the whole seconds until one is.
    pub(super) fn rate_limit(
        &mut self,
        method: &str,
        path: &str,
        now: Instant,
        peer: SocketAddr,
    ) -> Option<Reply> {
        let bucket = self.bucket.as_mut()?;
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.limit.per_second).min(bucket.limit.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return None;
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.limit.per_second);
        let limit = bucket.limit;
        let retry_after = whole_seconds(wait);
        self.hold_for(now, retry_after, peer);
        self.violation(format!(
            "{method} {path}: over the rate limit ({} requests per second, burst {})",
            limit.per_second, limit.burst
        ));
        Some(limited(retry_after))
    }

    /// Keeps every request out for `seconds` from `now` (a longer hold in force stays).
    fn hold_for(&mut self, now: Instant, seconds: u64, peer: SocketAddr) {
        let until = now + Duration::from_secs(seconds);
        if self.hold.as_ref().is_none_or(|h| h.until < until) {
            self.hold = Some(Hold {
                answered: now,
                until,
                retry_after: seconds,
                peer,
            });
        }
    }

    /// The 403 for an integration without the capability a route needs.
    pub(super) fn lacks(&self, capability: &str) -> Option<Reply> {
        let allowed = match capability {
            "insert" => self.insert_capability,
            _ => self.update_capability,
        };
        (!allowed).then(|| {
            Reply::error(
                403,
                "restricted_resource",
                "Insufficient permissions for this endpoint.",
            )
        })
    }
}

/// A 5xx with Notion's code and message for it.
fn server_error(status: u16) -> Reply {
    let (code, message) = match status {
        502 => ("bad_gateway", "Bad Gateway"),
        503 => (
            "service_unavailable",
            "Notion is unavailable, please try again later.",
        ),
        504 => ("gateway_timeout", "Gateway Timeout"),
        529 => (
            "service_overload",
            "Notion is overloaded, please try again later.",
        ),
        _ => ("internal_server_error", "Unexpected error occurred."),
    };
    Reply::error(status, code, message)
}
