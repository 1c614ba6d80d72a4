//! Reading `Retry-After`: how long an upstream asked us to wait, as delta-seconds or an HTTP
//! date, capped at [`MAX_RETRY_AFTER`]. HTTP dates are parsed by `httpdate` (already under
//! hyper), which knows all three forms RFC 9110 allows.

use std::time::{Duration, SystemTime};

/// The longest `Retry-After` wait patchbay will ever honour.
///
/// Upstreams occasionally send absurd values (hours, or dates years ahead);
/// capping them keeps one bad header from stalling a worker indefinitely.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Parses a `Retry-After` value relative to `now`.
///
/// Accepts delta-seconds (`"120"`) and HTTP-dates in IMF-fixdate, RFC 850 and
/// asctime form (RFC 9110 §5.6.7). Dates in the past yield zero; every result is
/// capped at [`MAX_RETRY_AFTER`]. Returns `None` for anything unparseable, including
/// a date that does not exist (31 November) or whose weekday is wrong.
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
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// 1994-11-06T08:49:37Z, the example date of RFC 9110.
    fn rfc_example() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777)
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
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:01 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
