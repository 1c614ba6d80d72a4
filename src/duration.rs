//! Durations: the one grammar users write them in, and the named ways patchbay writes them back.
//!
//! The grammar is a number and one unit, `ms`, `s`, `m`, `h` or `d` (`800ms`, `30s`, `1.5m`,
//! `4h`, `7d`), at most `MAX` long. The config reads it with `parse`, whose messages name the
//! problem in words a user can act on; the condition language lexes its own duration literals
//! (it must point at a column) and hands the number and the unit to `from_parts`, so both read
//! the same values. The decimal number is read exactly, so `1.204s` is 1,204 ms, not a float's
//! neighbour of it.
//!
//! Written by hand on purpose, not taken from `humantime`: one exact grammar and its error
//! messages, where `humantime` accepts more and explains less.
//!
//! The formats, each for one kind of reader:
//! - `compact`: settings and measurements in replies and logs (`250ms`, `1.2s`, `5m`, `1h30m`).
//! - `precise`: what a check measured, to the thousandth of its largest unit (`1.204s`,
//!   `12.5ms`, `1.5m`), so a failed `latency < 800ms` shows the exact figure it compared.
//! - `human`: how long something lasted, for people reading an alert (`12m`, `1h 5m`,
//!   `2d 3h`): the two largest units only.
//!
//! This module sits on the ground floor: it imports only `model`'s `echo`.

use std::time::Duration;

use crate::model::echo;

/// The longest duration the grammar accepts: a hundred years (of 365 days), longer than any
/// retention, interval or certificate lifetime anyone means.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The units a duration may be written in, with their length in nanoseconds, largest first.
const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// The longest number a "has no unit" message repeats in its fix (`1.5` becomes `1.5s, 1.5m,
/// ...`); a longer one would make the message mostly digits.
const SHORT_NUMBER: usize = 12;

/// Fractional digits past this many change no nanosecond of any unit (a day is 8.64e13 ns), so
/// they are not read; this keeps the arithmetic within `u128` however many digits are written.
const FRACTION_DIGITS: usize = 18;

/// Why a number and a unit are not a duration, for callers that word the message themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Nothing number-like before the unit.
    NoNumber,
    /// Digits and points that are not one number, such as `1.2.3`.
    NotANumber,
    /// A number without a unit.
    NoUnit,
    /// A unit that is not `ms`, `s`, `m`, `h` or `d`.
    UnknownUnit,
    /// Longer than [`MAX`].
    TooLong,
}

/// Parses `30s`, `5m`, `800ms`, `1.5h`, `7d` (whitespace around the number and the unit is
/// allowed). The error says what is wrong in words a user can act on. It quotes the text back
/// cut to [`echo`]'s length: a duration typed into a chat command can be thousands of characters
/// long, and the answer must still fit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    from_parts(number, unit).map_err(|problem| {
        let quoted = echo(text);
        match problem {
            Problem::NoNumber => format!(
                "{quoted} is not a duration; write a number and a unit, like 30s, 5m, 4h or 7d"
            ),
            Problem::NotANumber => {
                format!(
                    "{quoted} is not a duration: {} is not a number",
                    echo(number)
                )
            }
            // The number is repeated five times in the fix, so only a short one is.
            Problem::NoUnit if number.len() <= SHORT_NUMBER => format!(
                "{quoted} has no unit; write {number}s, {number}m, {number}h, {number}d or {number}ms"
            ),
            Problem::NoUnit => format!(
                "{quoted} has no unit; write a number and a unit, like 30s, 5m, 4h or 7d"
            ),
            Problem::UnknownUnit => format!(
                "{quoted} has an unknown unit {}; use ms, s, m, h or d",
                echo(unit)
            ),
            Problem::TooLong => format!("{quoted} is too long"),
        }
    })
}

/// Reads a duration from its number (digits with at most one decimal point, such as `30`,
/// `1.5` or `.5`) and its unit, already split apart by the caller. Problems are reported in
/// this order: the number, then the unit, then the length.
pub fn from_parts(number: &str, unit: &str) -> Result<Duration, Problem> {
    if number.is_empty() {
        return Err(Problem::NoNumber);
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || (whole.is_empty() && fraction.is_empty()) {
        return Err(Problem::NotANumber);
    }
    let size = match UNITS.iter().find(|(name, _)| *name == unit) {
        Some(&(_, size)) => u128::from(size),
        None if unit.is_empty() => return Err(Problem::NoUnit),
        None => return Err(Problem::UnknownUnit),
    };
    // Exact arithmetic on the decimal digits: whole units, plus the fraction's share of one,
    // rounded down to the nanosecond.
    let fraction = &fraction[..fraction.len().min(FRACTION_DIGITS)];
    let whole: u128 = match whole {
        "" => 0,
        digits => digits.parse().map_err(|_| Problem::TooLong)?,
    };
    let share = match fraction {
        "" => 0,
        digits => {
            let scale = 10u128.pow(u32::try_from(digits.len()).unwrap_or(0));
            digits.parse::<u128>().unwrap_or(0) * size / scale
        }
    };
    let nanos = whole
        .checked_mul(size)
        .and_then(|nanos| nanos.checked_add(share))
        .ok_or(Problem::TooLong)?;
    if nanos > MAX.as_nanos() {
        return Err(Problem::TooLong);
    }
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| Problem::TooLong)
}

/// The unit a user probably meant by a unit the grammar does not know (`sec` for `s`, `hours`
/// for `h`), or the unit itself written in capitals (`MS`).
pub fn suggest_unit(unit: &str) -> Option<&'static str> {
    Some(match unit.to_lowercase().as_str() {
        "msec" | "msecs" | "millis" | "millisecond" | "milliseconds" => "ms",
        "sec" | "secs" | "second" | "seconds" => "s",
        "min" | "mins" | "minute" | "minutes" => "m",
        "hr" | "hrs" | "hour" | "hours" => "h",
        "day" | "days" => "d",
        "ms" => "ms",
        "s" => "s",
        "m" => "m",
        "h" => "h",
        "d" => "d",
        _ => return None,
    })
}

/// A duration compactly, in the units that keep it readable: milliseconds below a second,
/// seconds to a tenth below a minute, then every non-zero unit down to the second: `250ms`,
/// `1.2s`, `5m`, `4h`, `7d`, `1h30m`.
pub fn compact(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = duration.as_secs();
    if secs < 60 {
        let tenths = (ms % 1000) / 100;
        return if tenths == 0 {
            format!("{secs}s")
        } else {
            format!("{secs}.{tenths}s")
        };
    }
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut out = String::new();
    for (value, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

/// A duration in the largest unit it reaches, to the nearest thousandth of that unit, as in
/// `1.204s`, `250ms`, `12.5ms`, `1.5m` or `2h`; zero is `0ms`. What a check measured reads
/// exactly, in the same units its conditions are written in.
pub fn precise(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let mut unit = UNITS
        .iter()
        .position(|&(_, size)| nanos >= u128::from(size))
        .unwrap_or(UNITS.len() - 1);
    loop {
        let (name, size) = UNITS[unit];
        let size = u128::from(size);
        // Thousandths of the unit, rounded to the nearest.
        let scaled = (nanos * 1000 + size / 2) / size;
        // Rounding can reach the next unit up, as 59.9996s does, which then reads better.
        if unit > 0 && scaled * size >= u128::from(UNITS[unit - 1].1) * 1000 {
            unit -= 1;
            continue;
        }
        let (whole, fraction) = (scaled / 1000, scaled % 1000);
        return if fraction == 0 {
            format!("{whole}{name}")
        } else {
            let digits = format!("{fraction:03}");
            format!("{whole}.{}{name}", digits.trim_end_matches('0'))
        };
    }
}

/// How long something lasted, for people reading an alert: `45s`, `12m`, `1h 5m`, `2d 3h`.
/// Seconds below a minute, then minutes, then hours, the two largest units only, each rounded
/// down.
pub fn human(length: Duration) -> String {
    let secs = length.as_secs();
    if secs < 60 {
        return format!("{secs}s");
    }
    let (minutes, hours, days) = (secs / 60 % 60, secs / 3600 % 24, secs / 86_400);
    let (big, small) = match (days, hours) {
        (0, 0) => return format!("{minutes}m"),
        (0, h) => ((h, 'h'), (minutes, 'm')),
        (d, h) => ((d, 'd'), (h, 'h')),
    };
    if small.0 == 0 {
        format!("{}{}", big.0, big.1)
    } else {
        format!("{}{} {}{}", big.0, big.1, small.0, small.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        let cases = [
            ("800ms", Duration::from_millis(800)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1.5m", Duration::from_secs(90)),
            ("4h", Duration::from_secs(4 * 3600)),
            ("7d", Duration::from_secs(7 * 86_400)),
            (" 2s ", Duration::from_secs(2)),
            ("2 s", Duration::from_secs(2)),
            (".5s", Duration::from_millis(500)),
            ("3.s", Duration::from_secs(3)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn decimals_are_read_exactly() {
        let cases = [
            ("1.204", "s", Duration::from_millis(1204)),
            ("0.001", "s", Duration::from_millis(1)),
            ("0.1", "s", Duration::from_millis(100)),
            ("1.5", "d", Duration::from_secs(129_600)),
            // Digits below a nanosecond are dropped, however many there are.
            (
                &format!("0.000000001{}", "9".repeat(100)),
                "s",
                Duration::from_nanos(1),
            ),
            (
                &format!("{}1", "0".repeat(100)),
                "ms",
                Duration::from_millis(1),
            ),
        ];
        for (number, unit, expected) in cases {
            assert_eq!(from_parts(number, unit), Ok(expected), "{number}{unit}");
        }
    }

    #[test]
    fn names_each_problem_in_order() {
        let cases = [
            ("", "s", Problem::NoNumber),
            (".", "s", Problem::NotANumber),
            ("1.2.3", "x", Problem::NotANumber),
            ("5", "", Problem::NoUnit),
            ("5", "sec", Problem::UnknownUnit),
            // The unit is checked before the length.
            (&"9".repeat(60), "y", Problem::UnknownUnit),
            (&"9".repeat(60), "s", Problem::TooLong),
            ("36501", "d", Problem::TooLong),
        ];
        for (number, unit, expected) in cases {
            assert_eq!(from_parts(number, unit), Err(expected), "{number}{unit}");
        }
        assert_eq!(from_parts("36500", "d"), Ok(MAX));
    }

    #[test]
    fn explains_bad_durations() {
        let cases = [
            (
                "30x",
                "\"30x\" has an unknown unit \"x\"; use ms, s, m, h or d",
            ),
            ("30", "\"30\" has no unit; write 30s, 30m, 30h, 30d or 30ms"),
            (
                "s",
                "\"s\" is not a duration; write a number and a unit, like 30s, 5m, 4h or 7d",
            ),
            (
                "1.2.3s",
                "\"1.2.3s\" is not a duration: \"1.2.3\" is not a number",
            ),
            ("36501d", "\"36501d\" is too long"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn long_input_is_quoted_cut() {
        for text in [
            "x".repeat(2000),
            "1".repeat(2000),
            format!("5{}", "x".repeat(2000)),
            format!("{}s", "1.".repeat(1000)),
            format!("{}s", "1".repeat(2000)),
        ] {
            let error = parse(&text).unwrap_err();
            assert!(error.chars().count() < 300, "{error}");
            assert!(error.contains('…'), "{error}");
        }
    }

    #[test]
    fn suggests_the_unit_meant() {
        assert_eq!(suggest_unit("sec"), Some("s"));
        assert_eq!(suggest_unit("Hours"), Some("h"));
        assert_eq!(suggest_unit("MS"), Some("ms"));
        assert_eq!(suggest_unit("y"), None);
    }

    #[test]
    fn formats_compactly() {
        let cases = [
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1204), "1.2s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(7 * 86_400), "7d"),
        ];
        for (duration, expected) in cases {
            assert_eq!(compact(duration), expected);
        }
    }

    #[test]
    fn formats_precisely() {
        let cases = [
            (Duration::ZERO, "0ms"),
            (Duration::from_micros(500), "0.5ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(12_500), "12.5ms"),
            (Duration::from_millis(1204), "1.204s"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(90), "1.5m"),
            // Rounding to thousandths reaches a whole minute, which reads better as 1m.
            (Duration::from_micros(59_999_600), "1m"),
            (Duration::from_secs(7200), "2h"),
            (Duration::from_secs(86_400), "1d"),
            (Duration::from_secs(129_600), "1.5d"),
        ];
        for (duration, expected) in cases {
            assert_eq!(precise(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn lengths_read_in_minutes_and_hours() {
        assert_eq!(human(Duration::from_secs(12 * 60 + 30)), "12m");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(3900)), "1h 5m");
        assert_eq!(human(Duration::from_secs(42)), "42s");
        assert_eq!(human(Duration::from_millis(300)), "0s");
        assert_eq!(
            human(Duration::from_secs(2 * 86_400 + 3 * 3600 + 59)),
            "2d 3h"
        );
        assert_eq!(human(Duration::from_secs(86_400)), "1d");
    }
}
