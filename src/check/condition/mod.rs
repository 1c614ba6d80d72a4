//! Health-check conditions that are evaluated against one HTTP response.
//!
//! This module owns the small condition language that monitors use to decide whether a
//! response is healthy, in the spirit of Gatus: `status == 200`, `latency < 800ms`,
//! `body.items[0].name != "x"`, `len(body.items) > 0`, `header.content-type contains "json"`,
//! `body.version matches "^v[0-9]+\\."` or `cert.expires_in > 14d`. It owns parsing a condition's text into a compact
//! [`Condition`], reporting parse problems as a [`ConditionError`] that points at a 1-based
//! character column, and evaluating a condition against an [`Observation`] of a response.
//!
//! All the work that can be done once is done by [`Condition::parse`]: literals are decoded,
//! header names are normalised, regular expressions are compiled and type mismatches that are
//! known before any response arrives (such as `latency < 800`) are rejected. Evaluation then
//! only looks values up and compares them; it allocates nothing unless the condition fails and
//! an explanation has to be written. An [`Observation`] parses the body as JSON at most once,
//! however many conditions look at it.
//!
//! The semantics, in short: JSON numbers compare numerically with number literals, whatever mix
//! of integers and floats is involved, and values of different JSON types are never equal, so
//! `body.x == 5` fails when `body.x` is the string `"5"`. A path that does not exist fails every
//! operator, including `!=` and `== null`. `contains` on a JSON array checks whether the
//! literal is one of its elements, on a JSON string it checks for a substring, and on any other
//! JSON value it looks for the string in that value's JSON text; `matches` likewise uses the
//! JSON text of values that are not strings. `body` alone is the raw body as bytes and
//! `header.<name>` is the first value of that header, looked up case-insensitively; a header
//! value is also compared as a number when the literal is a number, so that
//! `header.content-length < 5000` works.
//!
//! `cert.expires_in` is the time from the check to the notAfter of the TLS certificate the server
//! presented (the leaf, on the connection that carried the final response), and compares with
//! durations. It is negative once the certificate has expired, which a check only sees with
//! `tls_verify = false`, since verification refuses an expired certificate first. A response
//! that came over plain http has no certificate and fails every `cert.` condition.
//!
//! The files, in the order a condition meets them: `parser.rs` reads the grammar (a placeholder,
//! an operator and a literal, either way round) over `lexer.rs`'s characters and literals, with
//! `hints.rs` for what an error suggests; `typing.rs` checks that the literal suits the
//! placeholder and operator and builds the right side; `ast.rs` is the parsed form both halves
//! share; `eval.rs` decides whether a condition holds for a response, and `explain.rs` words a
//! failure. This file holds the public API.

mod ast;
mod eval;
mod explain;
mod hints;
mod lexer;
mod parser;
mod typing;

use std::cell::OnceCell;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::HeaderMap;
use serde_json::Value;

use ast::{Op, Rhs, Subject};

/// A parsed health-check condition, such as `status == 200` or `body.items[0].id > 3`.
///
/// A condition keeps the text it was parsed from, which [`Condition::source`] returns and which
/// starts every failure explanation.
#[derive(Clone, Debug)]
pub struct Condition {
    source: Box<str>,
    subject: Subject,
    /// The byte range in `source` of the placeholder that is looked up, without any `len(...)`
    /// around it; failure messages quote it, as in `header.x not found`.
    span: (u32, u32),
    op: Op,
    rhs: Rhs,
}

/// A problem found while parsing a condition, with the 1-based character column where it is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at column {position}: {message}")]
pub struct ConditionError {
    /// The 1-based character column in the condition text where the problem is; a problem at
    /// the very end of the text points one column past its last character.
    pub position: usize,
    /// What is wrong, in one sentence without a trailing full stop.
    pub message: String,
}

/// One HTTP response as the conditions see it.
///
/// The body is parsed as JSON the first time a condition needs it, and the result is kept for
/// every later condition evaluated against the same observation. Changing `body` after that
/// does not reset the cache, so build a new observation for each response.
#[derive(Debug)]
pub struct Observation<'a> {
    /// The response's status code.
    pub status: u16,
    /// How long the request took.
    pub latency: Duration,
    /// The response's headers.
    pub headers: &'a HeaderMap,
    /// The raw response body.
    pub body: &'a [u8],
    /// The body parsed as JSON, or `None` when it is not JSON, once some condition needed it.
    json: OnceCell<Option<Value>>,
    /// The body as text, or `None` when it is not UTF-8, once some condition needed it.
    text: OnceCell<Option<&'a str>>,
    /// The server's TLS certificate, for `cert.` conditions.
    certificate: PeerCertificate,
}

/// The server's TLS certificate as a check saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCertificate {
    /// The response came over plain http, so there was no certificate.
    None,
    /// The server's leaf certificate stops being valid at `not_after`; `checked_at` is when the
    /// check ran, which the time left is counted from.
    Leaf {
        /// The certificate's notAfter.
        not_after: DateTime<Utc>,
        /// When the check ran.
        checked_at: DateTime<Utc>,
    },
    /// A certificate came but its expiry could not be read; this says why.
    Unreadable(String),
}

impl<'a> Observation<'a> {
    /// Describes one response; nothing is parsed until a condition needs it.
    pub fn new(status: u16, latency: Duration, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Observation {
            status,
            latency,
            headers,
            body,
            json: OnceCell::new(),
            text: OnceCell::new(),
            certificate: PeerCertificate::None,
        }
    }

    /// Adds what is known of the server's TLS certificate; without it, the response is taken to
    /// have come over plain http.
    #[must_use]
    pub fn with_certificate(mut self, certificate: PeerCertificate) -> Self {
        self.certificate = certificate;
        self
    }

    /// Returns the body parsed as JSON, parsing it on the first call only.
    fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }

    /// Returns the body as UTF-8 text, validating it on the first call only.
    fn text(&self) -> Option<&'a str> {
        *self
            .text
            .get_or_init(|| std::str::from_utf8(self.body).ok())
    }
}

/// Evaluates every condition and returns the explanation of each that failed (empty = all hold).
pub fn evaluate_all(conditions: &[Condition], obs: &Observation<'_>) -> Vec<String> {
    conditions
        .iter()
        .filter_map(|condition| condition.evaluate(obs).err())
        .collect()
}

impl Condition {
    /// Parses a condition such as `status == 200`, checking everything that can be checked
    /// before a response arrives.
    pub fn parse(source: &str) -> Result<Condition, ConditionError> {
        parser::parse(source)
    }

    /// Returns the text the condition was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Tells whether the condition reads the server's TLS certificate, which the checker then
    /// has to ask for.
    pub fn uses_certificate(&self) -> bool {
        matches!(self.subject, Subject::CertExpiresIn)
    }

    /// Ok(()) when it holds; Err(explanation) otherwise, e.g.
    /// `status == 200 failed: got 503`, `latency < 800ms failed: got 1.204s`,
    /// `body.status == "ok" failed: got "degraded"`, `body.status == "ok" failed: body.status not found`,
    /// `body.status == "ok" failed: body is not JSON`.
    pub fn evaluate(&self, obs: &Observation<'_>) -> Result<(), String> {
        match self.test(obs) {
            Ok(()) => Ok(()),
            Err(failure) => Err(format!("{} failed: {}", self.source, self.explain(failure))),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Condition {
    type Err = ConditionError;

    fn from_str(source: &str) -> Result<Self, Self::Err> {
        Condition::parse(source)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

    // The canned responses and the two table helpers, `check` and `check_errors`, are shared by
    // the tests beside each file of the language.

    /// A canned response; tests build an `Observation` from it so each case starts with an
    /// empty JSON cache.
    pub(super) struct Resp {
        status: u16,
        latency_ms: u64,
        headers: &'static [(&'static str, &'static str)],
        body: &'static [u8],
    }

    impl Resp {
        fn header_map(&self) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in self.headers {
                map.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            map
        }
    }

    /// A healthy JSON response that exercises every kind of JSON value.
    pub(super) const HEALTHY: Resp = Resp {
        status: 200,
        latency_ms: 250,
        headers: &[
            ("Content-Type", "application/json"),
            ("X-Count", "42"),
            ("X-Text", "abc"),
        ],
        body: r#"{"status":"ok","version":"v1.2.3","ok":true,"error":null,"count":"5",
            "data":{"count":3,"ratio":0.5,"big":18446744073709551615,"neg":-1,
                    "tags":["a","b"],"ids":[1,2,3]},
            "items":[{"name":"x","id":7},{"name":"y","id":8}],"empty":[],"one":[1],
            "obj":{"a":1,"b":2},"text":"héllo wörld","flags":[true,null],"x-id":"abc",
            "quote":"say \"hi\" \\ bye","lines":"a\nb",
            "long":"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"}"#
            .as_bytes(),
    };

    /// A slow, failing response whose JSON disagrees with `HEALTHY`.
    pub(super) const DEGRADED: Resp = Resp {
        status: 503,
        latency_ms: 1204,
        headers: &[("content-type", "text/html")],
        body: br#"{"status":"degraded"}"#,
    };

    /// A response whose body is not JSON.
    pub(super) const HTML: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"<html>healthy</html>",
    };

    /// A JSON response whose root is an array, for paths that start with an index.
    pub(super) const ARRAY: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: br#"[{"name":"first"},2]"#,
    };

    /// A JSON object without the fields the other responses have.
    pub(super) const EMPTY: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"{}",
    };

    /// A body that is not valid UTF-8, which raw-body conditions must still handle.
    pub(super) const BINARY: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"\xff\xfehealthy",
    };

    /// A 100-byte body, longer than a failure message quotes.
    pub(super) const LONG: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
    };

    /// Parses and evaluates each condition against its response and compares the outcome with
    /// the expected one, reporting every mismatch at once so one run shows all of them.
    pub(super) fn check(cases: &[(&str, &Resp, Result<(), &str>)]) {
        let mut mismatches = Vec::new();
        for (source, resp, expected) in cases {
            let condition = match Condition::parse(source) {
                Ok(condition) => condition,
                Err(err) => {
                    mismatches.push(format!("{source}\n  did not parse: {err}"));
                    continue;
                }
            };
            let headers = resp.header_map();
            let obs = Observation::new(
                resp.status,
                Duration::from_millis(resp.latency_ms),
                &headers,
                resp.body,
            );
            let got = condition.evaluate(&obs);
            let expected = expected.map_err(str::to_string);
            if got != expected {
                mismatches.push(format!(
                    "{source}\n  expected {expected:?}\n  got      {got:?}"
                ));
            }
        }
        assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
    }

    /// Parses each bad condition and compares the error's column and message exactly.
    pub(super) fn check_errors(cases: &[(&str, usize, &str)]) {
        let mut mismatches = Vec::new();
        for (source, position, message) in cases {
            let expected = ConditionError {
                position: *position,
                message: message.to_string(),
            };
            match Condition::parse(source) {
                Err(err) if err == expected => {}
                other => mismatches.push(format!(
                    "{source}\n  expected Err({expected})\n  got      {:?}",
                    other.map(|c| c.source().to_string())
                )),
            }
        }
        assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
    }

    #[test]
    fn the_json_body_is_parsed_once_and_only_when_needed() {
        let headers = HeaderMap::new();
        let mut obs = Observation::new(200, Duration::ZERO, &headers, br#"{"status":"ok"}"#);
        let status = Condition::parse("status == 200").unwrap();
        let json = Condition::parse("body.status == \"ok\"").unwrap();
        assert_eq!(status.evaluate(&obs), Ok(()));
        // A condition that does not look at JSON must not pay for parsing it.
        assert!(obs.json.get().is_none());
        assert_eq!(json.evaluate(&obs), Ok(()));
        assert!(obs.json.get().is_some());
        // Replacing the body shows the cached parse is what later conditions use.
        obs.body = b"not json";
        assert_eq!(json.evaluate(&obs), Ok(()));
    }

    #[test]
    fn evaluate_all_returns_only_the_failures_in_order() {
        let conditions: Vec<Condition> =
            ["status == 200", "latency < 800ms", "body.status == \"ok\""]
                .iter()
                .map(|source| Condition::parse(source).unwrap())
                .collect();
        let headers = HeaderMap::new();
        let degraded = Observation::new(
            503,
            Duration::from_millis(1204),
            &headers,
            br#"{"status":"ok"}"#,
        );
        assert_eq!(
            evaluate_all(&conditions, &degraded),
            vec![
                "status == 200 failed: got 503".to_string(),
                "latency < 800ms failed: got 1.204s".to_string(),
            ]
        );
        let healthy = Observation::new(
            200,
            Duration::from_millis(3),
            &headers,
            br#"{"status":"ok"}"#,
        );
        assert!(evaluate_all(&conditions, &healthy).is_empty());
    }

    #[test]
    fn a_condition_keeps_its_source_and_survives_cloning() {
        let condition: Condition = "  body.items[0].id == 7 ".parse().unwrap();
        assert_eq!(condition.source(), "  body.items[0].id == 7 ");
        assert_eq!(condition.to_string(), condition.source());
        let copy = condition.clone();
        let headers = HeaderMap::new();
        let obs = Observation::new(200, Duration::ZERO, &headers, br#"{"items":[{"id":8}]}"#);
        assert_eq!(
            copy.evaluate(&obs),
            Err("  body.items[0].id == 7  failed: got 8".to_string())
        );
        assert!(format!("{copy:?}").contains("Condition"));
    }

    #[test]
    fn errors_display_their_column_and_are_std_errors() {
        let err = Condition::parse("status == ").unwrap_err();
        let dynamic: &dyn std::error::Error = &err;
        assert_eq!(
            dynamic.to_string(),
            "at column 11: missing value after ==; expected a number, a \"string\", a duration \
             such as 800ms, true, false or null"
        );
    }

    #[test]
    fn the_parsed_form_stays_compact() {
        // Tens of thousands of conditions are held and evaluated each second, so a condition
        // should stay a few cache lines at most, whatever its text.
        assert!(
            std::mem::size_of::<Condition>() <= 128,
            "{}",
            std::mem::size_of::<Condition>()
        );
    }
}
