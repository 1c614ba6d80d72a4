//! Reading `Retry-After`: how long an upstream asked us to wait, as delta-seconds or an HTTP
//! date, capped at [`MAX_RETRY_AFTER`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `Retry-After` wait patchbay will ever honour.
///
/// Upstreams occasionally send absurd values (hours, or dates years ahead);
/// capping them keeps one bad header from stalling a worker indefinitely.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Parses a `Retry-After` value relative to `now`.
///
/// Accepts delta-seconds (`"120"`) and HTTP-dates in IMF-fixdate, RFC 850 and
/// asctime form. Dates in the past yield zero; every result is capped at
/// [`MAX_RETRY_AFTER`]. Returns `None` for anything unparseable.
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
    let at = parse_http_date(value)?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Parses the three HTTP-date formats of RFC 9110 §5.6.7.
///
/// The weekday is ignored because it is redundant with the date.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let tokens: Vec<&str> = value
        .split([' ', ',', '-'])
        .filter(|t| !t.is_empty())
        .collect();
    let (day, month, year, time) = match tokens.as_slice() {
        // IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" and
        // RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT".
        [_, day, month, year, time, "GMT"] => (*day, *month, *year, *time),
        // asctime "Sun Nov  6 08:49:37 1994".
        [_, month, day, time, year] => (*day, *month, *year, *time),
        _ => return None,
    };
    let day: i64 = parse_digits(day, 1, 2)?;
    let month = match month {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = match year.len() {
        4 => parse_digits(year, 4, 4)?,
        // RFC 850 two-digit years: pick the century closest to now, which for
        // the foreseeable future means 19xx for 70-99 and 20xx otherwise.
        2 => {
            let yy: i64 = parse_digits(year, 2, 2)?;
            if yy >= 70 { 1900 + yy } else { 2000 + yy }
        }
        _ => return None,
    };
    let mut clock = time.split(':');
    let hour: i64 = parse_digits(clock.next()?, 2, 2)?;
    let minute: i64 = parse_digits(clock.next()?, 2, 2)?;
    let second: i64 = parse_digits(clock.next()?, 2, 2)?;
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59);
    if secs < 0 {
        // Before 1970 is certainly in the past, which means "retry now".
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Parses an all-digit token of `min..=max` characters.
fn parse_digits(token: &str, min: usize, max: usize) -> Option<i64> {
    if token.len() < min || token.len() > max || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`), written out to avoid a date-time dependency.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:01 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
