//! Durations as users write them in the config and in commands: a number and one unit, `ms`,
//! `s`, `m`, `h` or `d` (`800ms`, `30s`, `1.5m`, `4h`, `7d`).
//!
//! This is deliberately smaller than `humantime`: one grammar, exact error messages, and the same
//! formatting back (`format`) for logs and replies.

use std::time::Duration;

use crate::model::echo;

/// Parses `30s`, `5m`, `800ms`, `1.5h`, `7d`. The error says what is wrong in words a user can act on.
/// It quotes the text back cut to [`echo`]'s length: a duration typed into a chat command can be
/// thousands of characters long, and the answer must still fit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let quoted = echo(text);
    if number.is_empty() {
        return Err(format!(
            "{quoted} is not a duration; write a number and a unit, like 30s, 5m, 4h or 7d"
        ));
    }
    let value: f64 = number.parse().map_err(|_| {
        format!(
            "{quoted} is not a duration: {} is not a number",
            echo(number)
        )
    })?;
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        // The number is repeated five times in the fix, so only a short one is.
        "" if number.len() <= SHORT_NUMBER => {
            return Err(format!(
                "{quoted} has no unit; write {number}s, {number}m, {number}h, {number}d or {number}ms"
            ));
        }
        "" => {
            return Err(format!(
                "{quoted} has no unit; write a number and a unit, like 30s, 5m, 4h or 7d"
            ));
        }
        other => {
            return Err(format!(
                "{quoted} has an unknown unit {}; use ms, s, m, h or d",
                echo(other)
            ));
        }
    };
    let seconds = value * seconds_per_unit;
    if !seconds.is_finite() || seconds > 100.0 * 365.0 * 86_400.0 {
        return Err(format!("{quoted} is too long"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The longest number a "has no unit" error repeats in its fix (`1.5` becomes `1.5s, 1.5m, ...`).
const SHORT_NUMBER: usize = 12;

/// Formats a duration compactly in the largest unit that keeps it readable: `250ms`, `1.2s`,
/// `5m`, `4h`, `7d`, `1h30m`.
pub fn format(duration: Duration) -> String {
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
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), Ok(expected), "{text}");
        }
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
        ] {
            let error = parse(&text).unwrap_err();
            assert!(error.chars().count() < 300, "{error}");
            assert!(error.contains('…'), "{error}");
        }
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
            assert_eq!(format(duration), expected);
        }
    }
}
