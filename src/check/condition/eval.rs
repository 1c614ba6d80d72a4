//! Deciding whether a condition holds for one response: find what the placeholder names (the
//! status, the latency, the raw body, a header, a JSON value at a path, the certificate's time
//! left) and compare it with the right side. A failure is returned unformatted, as a
//! [`Failure`], so a passing check allocates nothing; `explain.rs` words it.

use std::cmp::Ordering;

use serde_json::Value;

use super::ast::{Num, Op, Rhs, Segment, Subject, Target, parse_number};
use super::explain::{Failure, Missing, Shown, kind_of};
use super::{Condition, Observation, PeerCertificate};

impl Condition {
    /// Decides whether the condition holds, describing a failure without formatting it yet.
    pub(super) fn test<'v>(&'v self, obs: &'v Observation<'_>) -> Result<(), Failure<'v>> {
        let op = self.op;
        match &self.subject {
            Subject::Status => {
                let got = Num::Int(i64::from(obs.status));
                verdict(self.compare_num(got), Shown::Num(got))
            }
            Subject::Latency => {
                let holds = match &self.rhs {
                    Rhs::Duration(limit) => op.holds(Some(obs.latency.cmp(limit))),
                    _ => false,
                };
                verdict(holds, Shown::Duration(obs.latency))
            }
            Subject::CertExpiresIn => match &obs.certificate {
                PeerCertificate::None => Err(Failure::NoCertificate),
                PeerCertificate::Unreadable(reason) => Err(Failure::UnreadableCertificate(reason)),
                PeerCertificate::Leaf {
                    not_after,
                    checked_at,
                } => {
                    let left = *not_after - *checked_at;
                    let holds = match &self.rhs {
                        // Time left below zero is less than any duration a literal can write.
                        Rhs::Duration(limit) => op.holds(Some(match left.to_std() {
                            Ok(left) => left.cmp(limit),
                            Err(_) => Ordering::Less,
                        })),
                        _ => false,
                    };
                    if holds {
                        Ok(())
                    } else {
                        Err(Failure::Expiry {
                            not_after: *not_after,
                            left,
                        })
                    }
                }
            },
            Subject::Len(target) => {
                let len = match self.resolve(target, obs)? {
                    Resolved::Text(bytes) => bytes.len(),
                    Resolved::Json(Value::String(s)) => s.len(),
                    Resolved::Json(Value::Array(items)) => items.len(),
                    Resolved::Json(Value::Object(map)) => map.len(),
                    Resolved::Json(other) => return Err(Failure::NoLength(other)),
                };
                let got = Num::from_len(len);
                verdict(self.compare_num(got), Shown::Num(got))
            }
            Subject::Value(target) => match self.resolve(target, obs)? {
                Resolved::Text(bytes) => {
                    let text = match target {
                        Target::Body => obs.text(),
                        _ => std::str::from_utf8(bytes).ok(),
                    };
                    verdict(self.test_text(bytes, text), Shown::Text(bytes))
                }
                Resolved::Json(value) => verdict(self.test_json(value), Shown::Json(value)),
            },
        }
    }

    /// Finds the text or JSON value that a target names in the response.
    fn resolve<'v>(
        &self,
        target: &'v Target,
        obs: &'v Observation<'_>,
    ) -> Result<Resolved<'v>, Failure<'v>> {
        match target {
            Target::Body => Ok(Resolved::Text(obs.body)),
            Target::Header(name) => match obs.headers.get(name) {
                Some(value) => Ok(Resolved::Text(value.as_bytes())),
                None => Err(Failure::HeaderMissing),
            },
            Target::Json(path) => {
                let mut value = obs.json().ok_or(Failure::NotJson)?;
                for (index, step) in path.iter().enumerate() {
                    let next = match (&step.segment, value) {
                        (Segment::Key(key), Value::Object(map)) => {
                            map.get(&**key).ok_or(Missing::Key)
                        }
                        (Segment::Index(i), Value::Array(items)) => {
                            items.get(*i).ok_or(Missing::Index(items.len()))
                        }
                        (_, other) => Err(Missing::Type(kind_of(other))),
                    };
                    value = next.map_err(|missing| Failure::NotFound {
                        step: index,
                        missing,
                    })?;
                }
                Ok(Resolved::Json(value))
            }
        }
    }

    /// Compares a number from the response with a number literal.
    fn compare_num(&self, got: Num) -> bool {
        match &self.rhs {
            Rhs::Num(limit) => self.op.holds(got.compare(*limit)),
            _ => false,
        }
    }

    /// Tests raw text (the body or a header value); `text` is the same bytes when they are UTF-8.
    fn test_text(&self, bytes: &[u8], text: Option<&str>) -> bool {
        match (&self.rhs, self.op) {
            (Rhs::Str(s), Op::Eq) => bytes == s.as_bytes(),
            (Rhs::Str(s), Op::Ne) => bytes != s.as_bytes(),
            (Rhs::Str(s), Op::Contains) => contains_bytes(bytes, text, s),
            (Rhs::Regex(regex), _) => regex.is_match(bytes),
            // Only a header may be compared with a number; its value must then be a number too.
            (Rhs::Num(limit), op) => {
                let got = text.map(str::trim).and_then(parse_number);
                op.holds(got.and_then(|got| got.compare(*limit)))
            }
            _ => false,
        }
    }

    /// Tests a JSON value found at a path.
    fn test_json(&self, value: &Value) -> bool {
        match (self.op, &self.rhs) {
            (Op::Eq, rhs) => json_equals(value, rhs),
            (Op::Ne, rhs) => !json_equals(value, rhs),
            (Op::Contains, rhs) => match value {
                Value::Array(items) => items.iter().any(|item| json_equals(item, rhs)),
                Value::String(s) => matches!(rhs, Rhs::Str(needle) if s.contains(&**needle)),
                other => match rhs {
                    Rhs::Str(needle) => other.to_string().contains(&**needle),
                    _ => false,
                },
            },
            (Op::Matches, Rhs::Regex(regex)) => match value {
                Value::String(s) => regex.is_match(s.as_bytes()),
                other => regex.is_match(other.to_string().as_bytes()),
            },
            (op, Rhs::Num(limit)) => match value {
                Value::Number(n) => op.holds(Num::from_json(n).compare(*limit)),
                _ => false,
            },
            _ => false,
        }
    }
}

/// What a target resolved to in one response.
enum Resolved<'v> {
    Text(&'v [u8]),
    Json(&'v Value),
}

fn verdict(holds: bool, shown: Shown<'_>) -> Result<(), Failure<'_>> {
    if holds {
        Ok(())
    } else {
        Err(Failure::Got(shown))
    }
}

/// Tells whether a JSON value equals a literal; values of different types are never equal.
fn json_equals(value: &Value, rhs: &Rhs) -> bool {
    match (value, rhs) {
        (Value::Number(n), Rhs::Num(literal)) => {
            Num::from_json(n).compare(*literal) == Some(Ordering::Equal)
        }
        (Value::String(s), Rhs::Str(literal)) => **s == **literal,
        (Value::Bool(b), Rhs::Bool(literal)) => b == literal,
        (Value::Null, Rhs::Null) => true,
        _ => false,
    }
}

/// Searches bytes for a string, using the fast string search when the bytes are known UTF-8.
fn contains_bytes(haystack: &[u8], text: Option<&str>, needle: &str) -> bool {
    match text {
        Some(text) => text.contains(needle),
        None => {
            needle.is_empty()
                || haystack
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, Utc};
    use http::HeaderMap;

    use super::super::tests::{BINARY, DEGRADED, EMPTY, HEALTHY, HTML, LONG, check};
    use super::super::{Condition, Observation, PeerCertificate};

    #[test]
    fn status_compares_numerically() {
        check(&[
            ("status == 200", &HEALTHY, Ok(())),
            (
                "status == 200",
                &DEGRADED,
                Err("status == 200 failed: got 503"),
            ),
            (
                "status != 503",
                &DEGRADED,
                Err("status != 503 failed: got 503"),
            ),
            ("status != 503", &HEALTHY, Ok(())),
            ("status < 500", &HEALTHY, Ok(())),
            (
                "status < 500",
                &DEGRADED,
                Err("status < 500 failed: got 503"),
            ),
            ("status <= 200", &HEALTHY, Ok(())),
            (
                "status <= 199",
                &HEALTHY,
                Err("status <= 199 failed: got 200"),
            ),
            ("status > 199.5", &HEALTHY, Ok(())),
            (
                "status >= 201",
                &HEALTHY,
                Err("status >= 201 failed: got 200"),
            ),
            ("status==200", &HEALTHY, Ok(())),
            ("  status   ==   200  ", &HEALTHY, Ok(())),
        ]);
    }

    #[test]
    fn latency_compares_with_durations_of_every_unit() {
        check(&[
            ("latency < 800ms", &HEALTHY, Ok(())),
            (
                "latency < 800ms",
                &DEGRADED,
                Err("latency < 800ms failed: got 1.204s"),
            ),
            ("latency <= 2s", &DEGRADED, Ok(())),
            (
                "latency > 1.5s",
                &DEGRADED,
                Err("latency > 1.5s failed: got 1.204s"),
            ),
            // The decimal literal is exact, so equality with 1204ms holds.
            ("latency >= 1.204s", &DEGRADED, Ok(())),
            ("latency == 250ms", &HEALTHY, Ok(())),
            (
                "latency != 250ms",
                &HEALTHY,
                Err("latency != 250ms failed: got 250ms"),
            ),
            ("latency < 5m", &HEALTHY, Ok(())),
            ("latency < 1h", &HEALTHY, Ok(())),
            ("latency < 1d", &HEALTHY, Ok(())),
            (
                "latency < 0.001s",
                &HEALTHY,
                Err("latency < 0.001s failed: got 250ms"),
            ),
        ]);
    }

    #[test]
    fn raw_body_compares_as_text() {
        check(&[
            ("body contains \"healthy\"", &HTML, Ok(())),
            (
                "body contains \"healthy\"",
                &DEGRADED,
                Err(r#"body contains "healthy" failed: got "{\"status\":\"degraded\"}""#),
            ),
            ("body == \"<html>healthy</html>\"", &HTML, Ok(())),
            (
                "body != \"<html>healthy</html>\"",
                &HTML,
                Err(r#"body != "<html>healthy</html>" failed: got "<html>healthy</html>""#),
            ),
            ("body matches \"^<html>\"", &HTML, Ok(())),
            (
                "body matches \"^\\\\{\"",
                &HTML,
                Err(r#"body matches "^\\{" failed: got "<html>healthy</html>""#),
            ),
            // A body that is not UTF-8 is still searched and matched byte by byte.
            ("body contains \"healthy\"", &BINARY, Ok(())),
            ("body matches \"healthy$\"", &BINARY, Ok(())),
            (
                "body == \"x\"",
                &BINARY,
                Err("body == \"x\" failed: got \"\u{fffd}\u{fffd}healthy\""),
            ),
            ("len(body) == 20", &HTML, Ok(())),
            ("len(body) < 1000", &HEALTHY, Ok(())),
            (
                "len(body) > 100",
                &HTML,
                Err("len(body) > 100 failed: got 20"),
            ),
            // A long body is cut to 80 characters so that failure messages stay readable.
            (
                "body contains \"x\"",
                &LONG,
                Err(
                    "body contains \"x\" failed: got \"01234567890123456789012345678901234567890123456789012345678901234567890123456789\"… (100 bytes)",
                ),
            ),
        ]);
    }

    #[test]
    fn json_paths_compare_by_type() {
        check(&[
            ("body.status == \"ok\"", &HEALTHY, Ok(())),
            (
                "body.status == \"ok\"",
                &DEGRADED,
                Err(r#"body.status == "ok" failed: got "degraded""#),
            ),
            (
                "body.status == \"ok\"",
                &EMPTY,
                Err(r#"body.status == "ok" failed: body.status not found"#),
            ),
            (
                "body.status == \"ok\"",
                &HTML,
                Err(r#"body.status == "ok" failed: body is not JSON"#),
            ),
            (
                "body.status != \"ok\"",
                &HTML,
                Err(r#"body.status != "ok" failed: body is not JSON"#),
            ),
            ("body.data.count >= 3", &HEALTHY, Ok(())),
            (
                "body.data.count > 3",
                &HEALTHY,
                Err("body.data.count > 3 failed: got 3"),
            ),
            ("body.data.count == 3.0", &HEALTHY, Ok(())),
            ("body.data.ratio == 0.5", &HEALTHY, Ok(())),
            ("body.data.ratio < 1", &HEALTHY, Ok(())),
            ("body.data.neg == -1", &HEALTHY, Ok(())),
            ("body.data.neg < 0", &HEALTHY, Ok(())),
            // Integers beyond i64 still compare exactly with integer literals.
            ("body.data.big > 9223372036854775807", &HEALTHY, Ok(())),
            ("body.data.big == 18446744073709551615", &HEALTHY, Ok(())),
            // A string that looks like a number is not a number: there is no coercion.
            (
                "body.count == 5",
                &HEALTHY,
                Err(r#"body.count == 5 failed: got "5""#),
            ),
            (
                "body.count > 4",
                &HEALTHY,
                Err(r#"body.count > 4 failed: got "5""#),
            ),
            ("body.count != 5", &HEALTHY, Ok(())),
            ("body.count == \"5\"", &HEALTHY, Ok(())),
            ("body.ok == true", &HEALTHY, Ok(())),
            (
                "body.ok == false",
                &HEALTHY,
                Err("body.ok == false failed: got true"),
            ),
            ("body.ok != false", &HEALTHY, Ok(())),
            ("body.error == null", &HEALTHY, Ok(())),
            (
                "body.ok == null",
                &HEALTHY,
                Err("body.ok == null failed: got true"),
            ),
            // A missing field is not null, so even `== null` and `!=` fail on it.
            (
                "body.nothing == null",
                &HEALTHY,
                Err("body.nothing == null failed: body.nothing not found"),
            ),
            (
                "body.nothing != 1",
                &HEALTHY,
                Err("body.nothing != 1 failed: body.nothing not found"),
            ),
            ("body.x-id == \"abc\"", &HEALTHY, Ok(())),
            (
                "body.quote == \"say \\\"hi\\\" \\\\ bye\"",
                &HEALTHY,
                Ok(()),
            ),
            ("body.lines == \"a\\nb\"", &HEALTHY, Ok(())),
            (
                "body.obj == 1",
                &HEALTHY,
                Err(r#"body.obj == 1 failed: got {"a":1,"b":2}"#),
            ),
            // A long JSON value is cut to 80 characters of its JSON text.
            (
                "body.long == \"x\"",
                &HEALTHY,
                Err(
                    "body.long == \"x\" failed: got \"0123456789012345678901234567890123456789012345678901234567890123456789012345678…",
                ),
            ),
        ]);
    }

    #[test]
    fn len_counts_bytes_elements_and_keys() {
        check(&[
            ("len(body.items) > 0", &HEALTHY, Ok(())),
            ("len(body.items) == 2", &HEALTHY, Ok(())),
            (
                "len(body.empty) > 0",
                &HEALTHY,
                Err("len(body.empty) > 0 failed: got 0"),
            ),
            ("len(body.obj) == 2", &HEALTHY, Ok(())),
            // Length of a string is in bytes: "héllo wörld" has 11 characters and 13 bytes.
            ("len(body.text) == 13", &HEALTHY, Ok(())),
            ("len( body.items ) == 2", &HEALTHY, Ok(())),
            (
                "len(body.data.count) > 0",
                &HEALTHY,
                Err(
                    "len(body.data.count) > 0 failed: body.data.count has no length because it is a number",
                ),
            ),
            (
                "len(body.nope) > 0",
                &HEALTHY,
                Err("len(body.nope) > 0 failed: body.nope not found"),
            ),
            (
                "len(body.items) > 0",
                &HTML,
                Err("len(body.items) > 0 failed: body is not JSON"),
            ),
            ("len(header.x-text) == 3", &HEALTHY, Ok(())),
            (
                "len(header.nope) == 3",
                &HEALTHY,
                Err("len(header.nope) == 3 failed: header.nope not found"),
            ),
        ]);
    }

    #[test]
    fn contains_and_matches_on_json_values() {
        check(&[
            ("body.version matches \"^v[0-9]+\\\\.\"", &HEALTHY, Ok(())),
            (
                "body.status matches \"^ok$\"",
                &DEGRADED,
                Err(r#"body.status matches "^ok$" failed: got "degraded""#),
            ),
            // Values that are not strings are matched and searched through their JSON text.
            ("body.data.count matches \"^[0-9]+$\"", &HEALTHY, Ok(())),
            ("body.obj matches \"\\\"a\\\":1\"", &HEALTHY, Ok(())),
            ("body.obj contains \"\\\"b\\\":2\"", &HEALTHY, Ok(())),
            ("body.data.count contains \"3\"", &HEALTHY, Ok(())),
            ("body.text contains \"wör\"", &HEALTHY, Ok(())),
            (
                "body.text contains \"xyz\"",
                &HEALTHY,
                Err(r#"body.text contains "xyz" failed: got "héllo wörld""#),
            ),
            // On an array, contains checks membership with the same rules as ==.
            ("body.data.tags contains \"a\"", &HEALTHY, Ok(())),
            (
                "body.data.tags contains \"c\"",
                &HEALTHY,
                Err(r#"body.data.tags contains "c" failed: got ["a","b"]"#),
            ),
            ("body.data.ids contains 2", &HEALTHY, Ok(())),
            ("body.data.ids contains 2.0", &HEALTHY, Ok(())),
            (
                "body.data.ids contains \"2\"",
                &HEALTHY,
                Err(r#"body.data.ids contains "2" failed: got [1,2,3]"#),
            ),
            ("body.flags contains true", &HEALTHY, Ok(())),
            ("body.flags contains null", &HEALTHY, Ok(())),
            (
                "body.flags contains false",
                &HEALTHY,
                Err("body.flags contains false failed: got [true,null]"),
            ),
            // A number is only looked for in arrays, never inside strings.
            (
                "body.text contains 5",
                &HEALTHY,
                Err(r#"body.text contains 5 failed: got "héllo wörld""#),
            ),
        ]);
    }

    #[test]
    fn headers_are_case_insensitive_and_may_be_numbers() {
        check(&[
            ("header.content-type contains \"json\"", &HEALTHY, Ok(())),
            (
                "header.Content-Type == \"application/json\"",
                &HEALTHY,
                Ok(()),
            ),
            (
                "header.CONTENT-TYPE contains \"json\"",
                &DEGRADED,
                Err(r#"header.CONTENT-TYPE contains "json" failed: got "text/html""#),
            ),
            // Header values themselves are compared exactly, case included.
            (
                "header.x-text == \"ABC\"",
                &HEALTHY,
                Err(r#"header.x-text == "ABC" failed: got "abc""#),
            ),
            ("header.x-text matches \"^a.c$\"", &HEALTHY, Ok(())),
            (
                "header.x-missing == \"a\"",
                &HEALTHY,
                Err(r#"header.x-missing == "a" failed: header.x-missing not found"#),
            ),
            (
                "header.X-Missing == \"a\"",
                &HEALTHY,
                Err(r#"header.X-Missing == "a" failed: header.X-Missing not found"#),
            ),
            ("header.x-count == 42", &HEALTHY, Ok(())),
            ("header.x-count > 40", &HEALTHY, Ok(())),
            (
                "header.x-count < 40",
                &HEALTHY,
                Err(r#"header.x-count < 40 failed: got "42""#),
            ),
            (
                "header.x-text > 1",
                &HEALTHY,
                Err(r#"header.x-text > 1 failed: got "abc""#),
            ),
            ("header.x-text != 1", &HEALTHY, Ok(())),
        ]);
    }

    #[test]
    fn a_literal_may_stand_on_the_left_of_a_comparison() {
        check(&[
            ("200 == status", &HEALTHY, Ok(())),
            ("500 > status", &HEALTHY, Ok(())),
            (
                "500 > status",
                &DEGRADED,
                Err("500 > status failed: got 503"),
            ),
            (
                "800ms >= latency",
                &DEGRADED,
                Err("800ms >= latency failed: got 1.204s"),
            ),
            ("\"ok\" == body.status", &HEALTHY, Ok(())),
            ("3 <= body.data.count", &HEALTHY, Ok(())),
            ("true == body.ok", &HEALTHY, Ok(())),
            ("null != body.ok", &HEALTHY, Ok(())),
        ]);
    }

    #[test]
    fn cert_expires_in_counts_from_the_check_to_not_after() {
        let checked_at: DateTime<Utc> = "2026-03-02T12:00:00Z".parse().unwrap();
        let leaf = |left: TimeDelta| PeerCertificate::Leaf {
            not_after: checked_at + left,
            checked_at,
        };
        let cases = [
            ("cert.expires_in > 14d", leaf(TimeDelta::days(90)), Ok(())),
            (
                "cert.expires_in > 14d",
                leaf(TimeDelta::days(5) + TimeDelta::hours(12)),
                Err(
                    "cert.expires_in > 14d failed: 5 days left (the certificate expires on \
                     2026-03-08 00:00 UTC)",
                ),
            ),
            (
                "cert.expires_in > 36h",
                leaf(TimeDelta::hours(30)),
                Err(
                    "cert.expires_in > 36h failed: 1 day left (the certificate expires on \
                     2026-03-03 18:00 UTC)",
                ),
            ),
            ("cert.expires_in > 36h", leaf(TimeDelta::hours(37)), Ok(())),
            ("cert.expires_in >= 14d", leaf(TimeDelta::days(14)), Ok(())),
            ("14d < cert.expires_in", leaf(TimeDelta::days(90)), Ok(())),
            (
                "cert.expires_in >= 0s",
                leaf(-TimeDelta::days(3)),
                Err("cert.expires_in >= 0s failed: the certificate expired on \
                     2026-02-27 12:00 UTC (3 days ago)"),
            ),
            // Expired is less than any duration.
            ("cert.expires_in < 1d", leaf(-TimeDelta::days(3)), Ok(())),
            (
                "cert.expires_in > 14d",
                PeerCertificate::None,
                Err("cert.expires_in > 14d failed: no TLS certificate: the final URL is not https"),
            ),
            (
                "cert.expires_in > 14d",
                PeerCertificate::Unreadable("the server sent no certificate".into()),
                Err("cert.expires_in > 14d failed: the server sent no certificate"),
            ),
        ];
        let headers = HeaderMap::new();
        for (source, certificate, expected) in cases {
            let condition = Condition::parse(source).unwrap();
            assert!(condition.uses_certificate(), "{source}");
            let obs = Observation::new(200, Duration::from_millis(5), &headers, b"")
                .with_certificate(certificate);
            assert_eq!(
                condition.evaluate(&obs),
                expected.map_err(str::to_string),
                "{source}"
            );
        }
        assert!(!Condition::parse("latency < 1s").unwrap().uses_certificate());
    }
}
