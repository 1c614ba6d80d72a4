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

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use http::{HeaderMap, HeaderName};
use regex::bytes::Regex;
use serde_json::Value;

use crate::check::tls;
use crate::duration;
use crate::suggest;

/// The placeholders that may start a condition, listed in error messages.
const PLACEHOLDERS: &str =
    "expected status, latency, body, body.<path>, header.<name>, cert.expires_in or len(...)";
/// The operators that may follow a placeholder, listed in error messages.
const OPERATORS: &str = "expected one of ==, !=, <, <=, >, >=, contains, matches";
/// The kinds of value that may follow an operator, listed in error messages.
const VALUES: &str =
    "expected a number, a \"string\", a duration such as 800ms, true, false or null";
/// How many characters of a body or JSON value a failure message quotes before cutting it off.
const SHOWN_CHARS: usize = 80;

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

/// What the left side of a condition looks at.
#[derive(Clone, Debug)]
enum Subject {
    Status,
    Latency,
    Value(Target),
    /// `len(...)` of a target: bytes of a string, elements of an array or keys of an object.
    Len(Target),
    /// `cert.expires_in`: the time left until the server's certificate expires.
    CertExpiresIn,
}

/// A part of the response that holds text or JSON.
#[derive(Clone, Debug)]
enum Target {
    /// The raw body.
    Body,
    /// The first value of a header; the name is lower-case, so lookups ignore case.
    Header(HeaderName),
    /// A value inside the body parsed as JSON; an empty path is never stored (that is `Body`).
    Json(Box<[Step]>),
}

/// One step of a JSON path, with the byte offset in the source where its text ends.
#[derive(Clone, Debug)]
struct Step {
    segment: Segment,
    end: u32,
}

#[derive(Clone, Debug)]
enum Segment {
    Key(Box<str>),
    Index(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Matches,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::Matches => "matches",
        }
    }

    fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    /// Returns the operator that means the same with its two sides swapped, for `200 == status`.
    fn flipped(self) -> Op {
        match self {
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            other => other,
        }
    }

    /// Tells whether a comparison operator holds for an ordering; `None` means the two values
    /// are not comparable, which only `!=` accepts.
    fn holds(self, ordering: Option<Ordering>) -> bool {
        match self {
            Op::Eq => ordering == Some(Ordering::Equal),
            Op::Ne => ordering != Some(Ordering::Equal),
            Op::Lt => ordering == Some(Ordering::Less),
            Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            Op::Gt => ordering == Some(Ordering::Greater),
            Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            Op::Contains | Op::Matches => false,
        }
    }
}

/// A number, kept as an integer whenever it is one so that large integers compare exactly.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Num {
    fn from_json(number: &serde_json::Number) -> Num {
        if let Some(i) = number.as_i64() {
            Num::Int(i)
        } else if let Some(u) = number.as_u64() {
            Num::Uint(u)
        } else {
            Num::Float(number.as_f64().unwrap_or(f64::NAN))
        }
    }

    fn from_len(len: usize) -> Num {
        Num::Uint(u64::try_from(len).unwrap_or(u64::MAX))
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Uint(u) => u as f64,
            Num::Float(f) => f,
        }
    }

    fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (Num::Uint(a), Num::Uint(b)) => Some(a.cmp(&b)),
            (Num::Int(a), Num::Uint(b)) => Some(match u64::try_from(a) {
                Ok(a) => a.cmp(&b),
                Err(_) => Ordering::Less,
            }),
            (Num::Uint(a), Num::Int(b)) => Some(match u64::try_from(b) {
                Ok(b) => a.cmp(&b),
                Err(_) => Ordering::Greater,
            }),
            _ => self.as_f64().partial_cmp(&other.as_f64()),
        }
    }
}

/// The right side of a parsed condition, already checked against its left side.
#[derive(Clone, Debug)]
enum Rhs {
    Num(Num),
    Duration(Duration),
    Str(Box<str>),
    Bool(bool),
    Null,
    /// The compiled pattern of `matches`.
    Regex(Regex),
}

impl Condition {
    /// Parses a condition such as `status == 200`, checking everything that can be checked
    /// before a response arrives.
    pub fn parse(source: &str) -> Result<Condition, ConditionError> {
        if u32::try_from(source.len()).is_err() {
            return Err(ConditionError {
                position: 1,
                message: "the condition is too long".to_string(),
            });
        }
        let mut parser = Parser::new(source);
        parser.skip_whitespace();
        if parser.at_end() {
            return Err(parser.error(0, "empty condition"));
        }
        let (left, op, op_at, literal) = if parser.starts_literal() {
            // A literal on the left is accepted for comparisons, and the sides are swapped so
            // that evaluation only ever deals with a placeholder on the left.
            let literal = parser.literal(None)?;
            parser.skip_whitespace();
            let (op, op_at) = parser.operator(parser.text(literal.start, literal.end))?;
            if matches!(op, Op::Contains | Op::Matches) {
                return Err(parser.error(
                    op_at,
                    format!(
                        "{} needs the placeholder on its left, as in body {} \"ok\"",
                        op.as_str(),
                        op.as_str()
                    ),
                ));
            }
            parser.skip_whitespace();
            let left = parser.operand(Some(op))?;
            (left, op.flipped(), op_at, literal)
        } else {
            let left = parser.operand(None)?;
            parser.skip_whitespace();
            let (op, op_at) = parser.operator(parser.text(left.start, left.end))?;
            parser.skip_whitespace();
            let literal = parser.literal(Some(op))?;
            (left, op, op_at, literal)
        };
        parser.skip_whitespace();
        if !parser.at_end() {
            return Err(parser.trailing_input());
        }
        let rhs = parser.check(&left, op, op_at, literal)?;
        Ok(Condition {
            source: source.into(),
            span: (
                parser.offset(left.target_start),
                parser.offset(left.target_end),
            ),
            subject: left.subject,
            op,
            rhs,
        })
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

    /// Decides whether the condition holds, describing a failure without formatting it yet.
    fn test<'v>(&'v self, obs: &'v Observation<'_>) -> Result<(), Failure<'v>> {
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

    /// Writes the part of a failure message that follows `failed: `.
    fn explain(&self, failure: Failure<'_>) -> String {
        let target = &self.source[self.span.0 as usize..self.span.1 as usize];
        match failure {
            Failure::Got(shown) => format!("got {shown}"),
            Failure::NotJson => "body is not JSON".to_string(),
            Failure::HeaderMissing => format!("{target} not found"),
            Failure::NoLength(value) => {
                format!("{target} has no length because it is {}", kind_of(value))
            }
            Failure::NoCertificate => "no TLS certificate: the final URL is not https".to_string(),
            Failure::UnreadableCertificate(reason) => reason.to_string(),
            Failure::Expiry { not_after, left } if left < TimeDelta::zero() => format!(
                "the certificate expired on {} ({} ago)",
                tls::format_date(not_after),
                tls::format_span(left)
            ),
            Failure::Expiry { not_after, left } => format!(
                "{} left (the certificate expires on {})",
                tls::format_span(left),
                tls::format_date(not_after)
            ),
            Failure::NotFound { step, missing } => {
                let path = match &self.subject {
                    Subject::Value(Target::Json(path)) | Subject::Len(Target::Json(path)) => path,
                    _ => return format!("{target} not found"),
                };
                let start = self.span.0 as usize;
                let upto = &self.source[start..path[step].end as usize];
                // The parent is the text before the failing step; the first step follows `body`.
                let parent_end = match step {
                    0 => start + "body".len(),
                    _ => path[step - 1].end as usize,
                };
                let parent = &self.source[start..parent_end];
                match missing {
                    Missing::Key => format!("{upto} not found"),
                    Missing::Index(1) => format!("{upto} not found ({parent} has 1 element)"),
                    Missing::Index(len) => {
                        format!("{upto} not found ({parent} has {len} elements)")
                    }
                    Missing::Type(kind) => format!("{upto} not found ({parent} is {kind})"),
                }
            }
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

/// What a target resolved to in one response.
enum Resolved<'v> {
    Text(&'v [u8]),
    Json(&'v Value),
}

/// Why a condition failed, kept unformatted until an explanation is needed.
enum Failure<'v> {
    Got(Shown<'v>),
    NotJson,
    HeaderMissing,
    NotFound {
        step: usize,
        missing: Missing,
    },
    NoLength(&'v Value),
    /// A `cert.` condition on a response that came over plain http.
    NoCertificate,
    /// A `cert.` condition on a certificate whose expiry could not be read, and why.
    UnreadableCertificate(&'v str),
    /// `cert.expires_in` did not hold: the certificate's notAfter and the time left (negative
    /// once expired).
    Expiry {
        not_after: DateTime<Utc>,
        left: TimeDelta,
    },
}

/// Why a step of a JSON path found nothing.
enum Missing {
    Key,
    /// The index was past the end of an array of this many elements.
    Index(usize),
    /// The step was applied to a value of this kind, which it cannot look into.
    Type(&'static str),
}

/// The value a failed condition saw, formatted as `got ...`.
enum Shown<'v> {
    Num(Num),
    Duration(Duration),
    Text(&'v [u8]),
    Json(&'v Value),
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shown::Num(Num::Int(i)) => write!(f, "{i}"),
            Shown::Num(Num::Uint(u)) => write!(f, "{u}"),
            Shown::Num(Num::Float(x)) => write!(f, "{x}"),
            Shown::Duration(d) => f.write_str(&duration::precise(*d)),
            Shown::Text(bytes) => {
                // At most four bytes make one character, so this slice holds enough characters.
                let head = &bytes[..bytes.len().min(SHOWN_CHARS * 4)];
                let lossy = String::from_utf8_lossy(head);
                let shown: String = lossy.chars().take(SHOWN_CHARS).collect();
                let cut = head.len() < bytes.len() || lossy.chars().nth(SHOWN_CHARS).is_some();
                let quoted = Value::String(shown).to_string();
                if cut {
                    write!(f, "{quoted}… ({} bytes)", bytes.len())
                } else {
                    f.write_str(&quoted)
                }
            }
            Shown::Json(value) => {
                let text = value.to_string();
                match text.char_indices().nth(SHOWN_CHARS) {
                    Some((cut, _)) => write!(f, "{}…", &text[..cut]),
                    None => f.write_str(&text),
                }
            }
        }
    }
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

/// Parses a number written as `-12` or `3.5`, keeping integers exact.
fn parse_number(text: &str) -> Option<Num> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(Num::Int(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Num::Uint(u));
    }
    let valid = !text.is_empty()
        && text
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.');
    if valid {
        text.parse::<f64>().ok().map(Num::Float)
    } else {
        None
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Suggests the placeholder that a mistyped one probably meant, keeping any path after it.
fn suggest_placeholder(text: &str) -> Option<String> {
    // A jq-style path such as `.status` means the same path under `body`.
    if text.starts_with('.') && text.len() > 1 {
        return Some(format!("body{text}"));
    }
    // Gatus writes placeholders in brackets, as in `[STATUS]` or `[BODY].status`.
    if let Some(inner) = text.strip_prefix('[') {
        let (name, rest) = inner.split_once(']')?;
        let name = match name.to_ascii_uppercase().as_str() {
            "STATUS" => "status",
            "RESPONSE_TIME" => "latency",
            "BODY" => "body",
            _ => return None,
        };
        return Some(format!("{name}{rest}"));
    }
    let head_len = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let (head, rest) = text.split_at(head_len);
    let name = match head.to_lowercase().as_str() {
        "code" | "status_code" | "statuscode" => "status",
        "duration" | "response_time" | "responsetime" | "time" | "elapsed" => "latency",
        "length" | "lenght" | "size" => "len",
        "headers" => "header",
        "certificate" | "certs" | "crt" | "tls" | "ssl" => "cert",
        "expires_in" | "expiry" | "cert_expiry" | "cert_expires_in" | "expires" => {
            "cert.expires_in"
        }
        lower => suggest::closest(
            lower,
            &["status", "latency", "body", "header", "len", "cert"],
        )?,
    };
    let suggestion = format!("{name}{rest}");
    (suggestion != text).then_some(suggestion)
}

/// Suggests the operator that an unknown one probably meant.
fn suggest_operator(text: &str) -> Option<&'static str> {
    Some(match text.to_lowercase().as_str() {
        "=" | "===" | "eq" | "is" | "equals" => "==",
        "<>" | "!==" | "!" | "ne" | "neq" | "not" => "!=",
        "=<" | "le" | "lte" => "<=",
        "=>" | "ge" | "gte" => ">=",
        "lt" => "<",
        "gt" => ">",
        "~" | "=~" | "~=" | "like" | "regex" | "match" => "matches",
        "has" | "in" | "includes" | "include" | "contain" => "contains",
        lower => suggest::closest(lower, &["contains", "matches"])?,
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Characters that may appear in a JSON key written after a dot: anything but whitespace and
/// the characters that delimit paths, strings and operators.
fn is_key_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '.' | '[' | ']' | '(' | ')' | '"' | '=' | '!' | '<' | '>')
}

/// Characters that an unknown placeholder is made of, for quoting it whole in the error.
fn is_placeholder_char(c: char) -> bool {
    is_key_char(c) || matches!(c, '.' | '[' | ']')
}

fn is_header_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~')
}

/// The left side as parsed, with character indices into the source.
struct Operand {
    subject: Subject,
    /// Where the whole operand starts and ends, `len(...)` included.
    start: usize,
    end: usize,
    /// Where the looked-up placeholder starts and ends, without `len(...)`.
    target_start: usize,
    target_end: usize,
}

/// A literal as parsed, with character indices into the source.
struct Literal {
    value: LiteralValue,
    start: usize,
    end: usize,
}

enum LiteralValue {
    Num(Num),
    Duration(Duration),
    /// A decoded string, with the source character index of each of its characters so that
    /// regex errors can point into the string.
    Str(String, Vec<usize>),
    Bool(bool),
    Null,
}

impl LiteralValue {
    fn kind(&self) -> &'static str {
        match self {
            LiteralValue::Num(_) => "a number",
            LiteralValue::Duration(_) => "a duration",
            LiteralValue::Str(..) => "a string",
            LiteralValue::Bool(_) => "a boolean",
            LiteralValue::Null => "null",
        }
    }
}

/// What the left side holds, as far as can be known before a response arrives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StaticType {
    Number,
    Duration,
    /// The raw body, which compares with strings only.
    Text,
    /// A header value, which compares with strings, and with numbers when it holds one.
    Header,
    /// A JSON value, whose type is only known at evaluation.
    Json,
}

/// A cursor over the characters of a condition; positions are character indices from 0.
struct Parser<'s> {
    source: &'s str,
    /// Each character with its byte offset.
    chars: Vec<(usize, char)>,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn new(source: &'s str) -> Self {
        Parser {
            source,
            chars: source.char_indices().collect(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn peek_at(&self, index: usize) -> Option<char> {
        self.chars.get(index).map(|&(_, c)| c)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    /// Returns the byte offset of a character index, which may be one past the end.
    fn byte(&self, index: usize) -> usize {
        self.chars
            .get(index)
            .map_or(self.source.len(), |&(byte, _)| byte)
    }

    /// Returns the byte offset of a character index as stored in a condition.
    fn offset(&self, index: usize) -> u32 {
        // The whole source fits in u32, which `Condition::parse` checked first.
        u32::try_from(self.byte(index)).unwrap_or(u32::MAX)
    }

    fn text(&self, start: usize, end: usize) -> &'s str {
        &self.source[self.byte(start)..self.byte(end)]
    }

    fn skip_whitespace(&mut self) {
        self.take_while(char::is_whitespace);
    }

    /// Advances over characters that satisfy `accept`, returning where the run started.
    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        start
    }

    fn error(&self, index: usize, message: impl Into<String>) -> ConditionError {
        ConditionError {
            position: index + 1,
            message: message.into(),
        }
    }

    /// Tells whether the text at the cursor is a literal rather than a placeholder.
    fn starts_literal(&self) -> bool {
        match self.peek() {
            Some('"' | '-') => true,
            Some(c) if c.is_ascii_digit() => true,
            Some('.') => self
                .peek_at(self.pos + 1)
                .is_some_and(|c| c.is_ascii_digit()),
            Some(_) => {
                let end = (self.pos..self.chars.len())
                    .find(|&i| !is_word_char(self.chars[i].1))
                    .unwrap_or(self.chars.len());
                matches!(self.text(self.pos, end), "true" | "false" | "null")
            }
            None => false,
        }
    }

    /// Parses a placeholder, optionally inside `len(...)`; `after` is the operator before it
    /// when a literal came first.
    fn operand(&mut self, after: Option<Op>) -> Result<Operand, ConditionError> {
        let start = self.pos;
        if self.at_end() {
            let after = after.map_or("", Op::as_str);
            return Err(self.error(
                start,
                format!("missing placeholder after {after}; {PLACEHOLDERS}"),
            ));
        }
        if after.is_some() && self.starts_literal() {
            let (op, found) = (after.map_or("", Op::as_str), self.found_here());
            return Err(self.error(
                start,
                format!("expected a placeholder after {op}, found {found}; {PLACEHOLDERS}"),
            ));
        }
        let word_start = self.take_while(is_word_char);
        let word = self.text(word_start, self.pos);
        if word == "len" {
            return self.len_operand(start);
        }
        let subject = match word {
            "status" => Subject::Status,
            "latency" => Subject::Latency,
            "body" => Subject::Value(self.body_path()?),
            "header" => Subject::Value(self.header()?),
            "cert" => self.cert_field()?,
            "" if !self.peek().is_some_and(is_placeholder_char) => {
                let found = self.found_here();
                let message = match after {
                    Some(op) => format!(
                        "expected a placeholder after {}, found {found}; {PLACEHOLDERS}",
                        op.as_str()
                    ),
                    None => format!("missing placeholder before {found}; {PLACEHOLDERS}"),
                };
                return Err(self.error(start, message));
            }
            _ => return Err(self.unknown_placeholder(start)),
        };
        if matches!(
            subject,
            Subject::Status | Subject::Latency | Subject::CertExpiresIn
        ) && matches!(self.peek(), Some('.' | '['))
        {
            let what = if word == "status" {
                "a number"
            } else {
                "a duration"
            };
            return Err(self.error(
                self.pos,
                format!(
                    "{} is {what} and has no fields or elements",
                    self.text(start, self.pos)
                ),
            ));
        }
        // Something glued to a placeholder, as in `status2` or `body-x`, makes it unknown.
        if self.peek().is_some_and(is_key_char) {
            return Err(self.unknown_placeholder(start));
        }
        Ok(Operand {
            subject,
            start,
            end: self.pos,
            target_start: start,
            target_end: self.pos,
        })
    }

    /// Parses the rest of `len(...)` after the word `len`.
    fn len_operand(&mut self, start: usize) -> Result<Operand, ConditionError> {
        self.skip_whitespace();
        if self.peek() != Some('(') {
            return Err(self.error(self.pos, "expected \"(\" after len, as in len(body.items)"));
        }
        self.pos += 1;
        self.skip_whitespace();
        let inner = self.operand(None)?;
        let target = match inner.subject {
            Subject::Value(target) => target,
            Subject::Status | Subject::Latency | Subject::Len(_) | Subject::CertExpiresIn => {
                return Err(self.error(
                    inner.start,
                    format!(
                        "len() applies to body, body.<path> or header.<name>, not {}",
                        self.text(inner.start, inner.end)
                    ),
                ));
            }
        };
        self.skip_whitespace();
        if self.peek() != Some(')') {
            return Err(self.error(self.pos, "expected \")\" to close len("));
        }
        self.pos += 1;
        Ok(Operand {
            subject: Subject::Len(target),
            start,
            end: self.pos,
            target_start: inner.target_start,
            target_end: inner.target_end,
        })
    }

    /// Parses the optional JSON path after the word `body`.
    fn body_path(&mut self) -> Result<Target, ConditionError> {
        let mut steps = Vec::new();
        loop {
            let segment = match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    let key_start = self.take_while(is_key_char);
                    if key_start == self.pos {
                        return Err(self.error(
                            self.pos,
                            "expected a field name after \".\", as in body.status",
                        ));
                    }
                    Segment::Key(self.text(key_start, self.pos).into())
                }
                Some('[') => {
                    self.pos += 1;
                    let digits_start = self.take_while(|c| c.is_ascii_digit());
                    if digits_start == self.pos {
                        return Err(self.error(
                            self.pos,
                            "expected an array index (0, 1, 2, ...) after \"[\"",
                        ));
                    }
                    let index = self
                        .text(digits_start, self.pos)
                        .parse()
                        .map_err(|_| self.error(digits_start, "the array index is too large"))?;
                    if self.peek() != Some(']') {
                        return Err(self.error(self.pos, "expected \"]\" after the array index"));
                    }
                    self.pos += 1;
                    Segment::Index(index)
                }
                _ => break,
            };
            steps.push(Step {
                segment,
                end: self.offset(self.pos),
            });
        }
        Ok(if steps.is_empty() {
            Target::Body
        } else {
            Target::Json(steps.into_boxed_slice())
        })
    }

    /// Parses the `.<name>` after the word `header`.
    fn header(&mut self) -> Result<Target, ConditionError> {
        if self.peek() != Some('.') {
            return Err(self.error(
                self.pos,
                "expected \".\" and a header name after header, as in header.content-type",
            ));
        }
        self.pos += 1;
        let name_start = self.take_while(is_header_char);
        if name_start == self.pos {
            return Err(self.error(
                self.pos,
                "expected a header name after \"header.\", as in header.content-type",
            ));
        }
        let name = HeaderName::from_bytes(self.text(name_start, self.pos).as_bytes())
            .map_err(|_| self.error(name_start, "invalid header name"))?;
        if matches!(self.peek(), Some('.' | '[')) {
            return Err(self.error(
                self.pos,
                "a header value is a string and has no fields or elements",
            ));
        }
        Ok(Target::Header(name))
    }

    /// Parses the `.<field>` after the word `cert`; `expires_in` is the only field so far.
    fn cert_field(&mut self) -> Result<Subject, ConditionError> {
        if self.peek() != Some('.') {
            return Err(self.error(
                self.pos,
                "expected \".expires_in\" after cert, as in cert.expires_in > 14d",
            ));
        }
        self.pos += 1;
        let field_start = self.take_while(is_word_char);
        let field = self.text(field_start, self.pos);
        if field == "expires_in" {
            return Ok(Subject::CertExpiresIn);
        }
        if field.is_empty() {
            return Err(self.error(
                field_start,
                "expected a field name after \"cert.\", as in cert.expires_in",
            ));
        }
        let mut message =
            format!("unknown certificate field \"cert.{field}\"; expected cert.expires_in");
        let alias = matches!(
            field.to_lowercase().as_str(),
            "expiry"
                | "expires"
                | "expiration"
                | "not_after"
                | "notafter"
                | "days_left"
                | "valid_for"
                | "remaining"
        );
        if alias || suggest::closest(field, &["expires_in"]).is_some() {
            message.push_str("; did you mean \"cert.expires_in\"?");
        }
        Err(self.error(field_start, message))
    }

    /// Describes the token at the cursor for an error message, as `==` or `end of input`.
    fn found_here(&self) -> String {
        if self.at_end() {
            return "the end".to_string();
        }
        let end = (self.pos..self.chars.len())
            .find(|&i| self.chars[i].1.is_whitespace())
            .unwrap_or(self.chars.len());
        self.text(self.pos, end).to_string()
    }

    fn unknown_placeholder(&mut self, start: usize) -> ConditionError {
        self.pos = start;
        self.take_while(is_placeholder_char);
        let text = self.text(start, self.pos);
        let mut message = format!("unknown placeholder \"{text}\"; {PLACEHOLDERS}");
        if let Some(suggestion) = suggest_placeholder(text) {
            message.push_str(&format!("; did you mean \"{suggestion}\"?"));
        }
        self.error(start, message)
    }

    /// Parses an operator; `before` is the text of the left side, for messages.
    fn operator(&mut self, before: &str) -> Result<(Op, usize), ConditionError> {
        let start = self.pos;
        let Some(first) = self.peek() else {
            return Err(self.error(
                start,
                format!("missing operator after {before}; {OPERATORS}"),
            ));
        };
        if is_operator_char(first) {
            self.take_while(is_operator_char);
        } else if first.is_alphabetic() {
            self.take_while(is_word_char);
        } else if self.starts_literal() {
            return Err(self.error(
                start,
                format!("missing operator before {}; {OPERATORS}", self.found_here()),
            ));
        } else {
            self.take_while(|c| !c.is_whitespace());
        }
        let text = self.text(start, self.pos);
        let op = match text {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "matches" => Op::Matches,
            _ => {
                let mut message = format!("unknown operator \"{text}\"; {OPERATORS}");
                if let Some(suggestion) = suggest_operator(text) {
                    message.push_str(&format!("; did you mean {suggestion}?"));
                }
                return Err(self.error(start, message));
            }
        };
        Ok((op, start))
    }

    /// Parses a literal; `after` is the operator before it, for messages.
    fn literal(&mut self, after: Option<Op>) -> Result<Literal, ConditionError> {
        let start = self.pos;
        let after = after.map_or("", Op::as_str);
        let value = match self.peek() {
            None => {
                return Err(self.error(start, format!("missing value after {after}; {VALUES}")));
            }
            Some('"') => self.string()?,
            Some(c) if c.is_ascii_digit() || c == '-' || c == '.' => self.number()?,
            Some(c) if is_word_char(c) => {
                self.take_while(is_word_char);
                let word = self.text(start, self.pos);
                match word {
                    "true" => LiteralValue::Bool(true),
                    "false" => LiteralValue::Bool(false),
                    "null" => LiteralValue::Null,
                    _ => return Err(self.bad_value(start, word, after)),
                }
            }
            Some(_) => {
                let found = self.found_here();
                return Err(self.error(
                    start,
                    format!("expected a value after {after}, found {found}; {VALUES}"),
                ));
            }
        };
        Ok(Literal {
            value,
            start,
            end: self.pos,
        })
    }

    /// Explains a bare word where a value was expected.
    fn bad_value(&mut self, start: usize, word: &str, after: &str) -> ConditionError {
        let lower = word.to_lowercase();
        let hint = if matches!(lower.as_str(), "true" | "false" | "null") {
            format!("did you mean {lower}?")
        } else if matches!(word, "status" | "latency" | "body" | "header" | "len") {
            "the right side must be a value; comparing two placeholders is not supported"
                .to_string()
        } else {
            self.pos = start;
            self.take_while(is_key_char);
            format!(
                "strings need double quotes, as in \"{}\"",
                self.text(start, self.pos)
            )
        };
        self.pos = start;
        let found = self.found_here();
        self.error(
            start,
            format!("expected a value after {after}, found {found}; {hint}"),
        )
    }

    /// Parses a double-quoted string with `\"`, `\\`, `\n`, `\t` and `\r` escapes.
    fn string(&mut self) -> Result<LiteralValue, ConditionError> {
        let start = self.pos;
        self.pos += 1;
        let mut text = String::new();
        let mut map = Vec::new();
        loop {
            let at = self.pos;
            match self.peek() {
                None => {
                    return Err(self.error(start, "unterminated string; it needs a closing \""));
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(LiteralValue::Str(text, map));
                }
                Some('\\') => {
                    let decoded = match self.peek_at(at + 1) {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        None => {
                            return Err(
                                self.error(start, "unterminated string; it needs a closing \"")
                            );
                        }
                        Some(other) => {
                            return Err(self.error(
                                at,
                                format!(
                                    "unknown escape \"\\{other}\" in a string; write \\\\ for a \
                                     backslash, as in \"\\\\{other}\""
                                ),
                            ));
                        }
                    };
                    text.push(decoded);
                    map.push(at);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    map.push(at);
                    self.pos += 1;
                }
            }
        }
    }

    /// Parses a number such as `-1` or `0.5`, or a duration such as `800ms` or `1.5s`.
    fn number(&mut self) -> Result<LiteralValue, ConditionError> {
        let start = self.pos;
        let negative = self.peek() == Some('-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.take_while(|c| c.is_ascii_digit() || c == '.');
        let unit_start = self.pos;
        self.take_while(|c| is_word_char(c) || c == '.');
        let token = self.text(start, self.pos);
        let digits = self.text(digits_start, unit_start);
        let unit = self.text(unit_start, self.pos);
        let well_formed = match digits.split_once('.') {
            Some((whole, fraction)) => {
                !whole.is_empty() && !fraction.is_empty() && !fraction.contains('.')
            }
            None => !digits.is_empty(),
        };
        if !well_formed || !unit.chars().all(char::is_alphabetic) {
            return Err(self.error(start, format!("bad number \"{token}\"")));
        }
        if unit.is_empty() {
            let number = parse_number(self.text(start, unit_start));
            return number
                .map(LiteralValue::Num)
                .ok_or_else(|| self.error(start, format!("bad number \"{token}\"")));
        }
        // The value is the duration grammar's own reading; the messages are the language's,
        // because they point at a column and suggest the literal to write instead.
        let value = duration::from_parts(digits, unit);
        if value == Err(duration::Problem::UnknownUnit) {
            let mut message =
                format!("unknown duration unit \"{unit}\"; expected ms, s, m, h or d");
            if let Some(suggestion) = duration::suggest_unit(unit) {
                message.push_str(&format!("; did you mean {digits}{suggestion}?"));
            }
            return Err(self.error(unit_start, message));
        }
        if negative {
            return Err(self.error(start, "a duration cannot be negative"));
        }
        match value {
            Ok(value) => Ok(LiteralValue::Duration(value)),
            Err(duration::Problem::TooLong) => {
                Err(self.error(start, format!("the duration \"{token}\" is too large")))
            }
            Err(_) => Err(self.error(start, format!("bad number \"{token}\""))),
        }
    }

    fn trailing_input(&self) -> ConditionError {
        let rest = self.text(self.pos, self.chars.len()).trim_end();
        let first = rest.split_whitespace().next().unwrap_or("");
        let mut message = format!("unexpected input after the condition: {rest}");
        if matches!(first, "&&" | "||" | "and" | "or" | "AND" | "OR") {
            message.push_str("; conditions cannot be combined, so list each one separately");
        }
        self.error(self.pos, message)
    }

    /// Checks that the literal suits the placeholder and operator, and builds the right side.
    fn check(
        &self,
        left: &Operand,
        op: Op,
        op_at: usize,
        literal: Literal,
    ) -> Result<Rhs, ConditionError> {
        let left_text = self.text(left.start, left.end);
        let kind = literal.value.kind();
        let static_type = match &left.subject {
            Subject::Status | Subject::Len(_) => StaticType::Number,
            Subject::Latency | Subject::CertExpiresIn => StaticType::Duration,
            Subject::Value(Target::Body) => StaticType::Text,
            Subject::Value(Target::Header(_)) => StaticType::Header,
            Subject::Value(Target::Json(_)) => StaticType::Json,
        };
        let at_literal = |message: String| Err(self.error(literal.start, message));
        if matches!(op, Op::Contains | Op::Matches) {
            match static_type {
                StaticType::Number | StaticType::Duration => {
                    let what = if static_type == StaticType::Number {
                        "a number"
                    } else {
                        "a duration"
                    };
                    return Err(self.error(
                        op_at,
                        format!(
                            "{} does not apply to {left_text}, which is {what}",
                            op.as_str()
                        ),
                    ));
                }
                StaticType::Json
                    if op == Op::Contains
                        && !matches!(literal.value, LiteralValue::Duration(_)) => {}
                _ => {
                    if !matches!(literal.value, LiteralValue::Str(..)) {
                        let needs = if op == Op::Matches {
                            "a regular expression in double quotes, as in \"^ok\","
                        } else {
                            "a string"
                        };
                        return at_literal(format!(
                            "{} needs {needs} on the right, not {kind}",
                            op.as_str()
                        ));
                    }
                }
            }
        } else {
            match (static_type, &literal.value) {
                (StaticType::Number, LiteralValue::Num(_))
                | (StaticType::Duration, LiteralValue::Duration(_))
                | (StaticType::Text, LiteralValue::Str(..))
                | (StaticType::Header, LiteralValue::Str(..) | LiteralValue::Num(_))
                | (StaticType::Json, _) => {}
                (StaticType::Number, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with numbers, not {kind}"
                    ));
                }
                (StaticType::Duration, LiteralValue::Num(_)) => {
                    let number = self.text(literal.start, literal.end);
                    return at_literal(format!(
                        "{left_text} compares only with durations; did you mean {number}{}?",
                        duration_habit(&left.subject).0
                    ));
                }
                (StaticType::Duration, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with durations such as {}, not {kind}",
                        duration_habit(&left.subject).1
                    ));
                }
                (StaticType::Text, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with strings, not {kind}; \
                         use body.<path> to compare a JSON value"
                    ));
                }
                (StaticType::Header, _) => {
                    return at_literal(format!(
                        "{left_text} compares only with strings and numbers, not {kind}"
                    ));
                }
            }
            if matches!(literal.value, LiteralValue::Duration(_))
                && static_type != StaticType::Duration
            {
                return at_literal(format!(
                    "a duration compares only with latency and cert.expires_in, not with {left_text}"
                ));
            }
            if op.is_ordering()
                && !matches!(
                    literal.value,
                    LiteralValue::Num(_) | LiteralValue::Duration(_)
                )
            {
                return at_literal(format!(
                    "{} needs a number or a duration on the right, not {kind}",
                    op.as_str()
                ));
            }
        }
        Ok(match literal.value {
            LiteralValue::Str(text, map) if op == Op::Matches => {
                Rhs::Regex(Regex::new(&text).map_err(|err| {
                    let (message, offset) = regex_problem(&err);
                    // Point at the offending character of the pattern when the regex error
                    // says which one it is, and at the opening quote otherwise.
                    let index = offset
                        .and_then(|offset| map.get(offset).copied())
                        .unwrap_or(literal.start);
                    self.error(index, format!("invalid regex: {message}"))
                })?)
            }
            LiteralValue::Str(text, _) => Rhs::Str(text.into_boxed_str()),
            LiteralValue::Num(n) => Rhs::Num(n),
            LiteralValue::Duration(d) => Rhs::Duration(d),
            LiteralValue::Bool(b) => Rhs::Bool(b),
            LiteralValue::Null => Rhs::Null,
        })
    }
}

/// How durations are usually written next to a duration placeholder, as a unit and an example:
/// latency in milliseconds, a certificate's lifetime in days.
fn duration_habit(subject: &Subject) -> (&'static str, &'static str) {
    match subject {
        Subject::CertExpiresIn => ("d", "14d"),
        _ => ("ms", "800ms"),
    }
}

/// Turns a regex error into a one-line summary and, when it names one, the character offset of
/// the problem in the pattern.
fn regex_problem(err: &regex::Error) -> (String, Option<usize>) {
    match err {
        regex::Error::Syntax(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let summary = lines
                .iter()
                .rev()
                .find_map(|line| line.strip_prefix("error: "))
                .unwrap_or(text)
                .trim()
                .to_string();
            // A one-line pattern is shown indented by four spaces, with carets under the
            // problem on the next line.
            let offset = match lines.as_slice() {
                ["regex parse error:", _, carets, _]
                    if carets.trim_start().starts_with('^')
                        && carets.trim().chars().all(|c| c == '^' || c == ' ') =>
                {
                    (carets.len() - carets.trim_start().len()).checked_sub(4)
                }
                _ => None,
            };
            (summary, offset)
        }
        regex::Error::CompiledTooBig(_) => ("the regex is too large".to_string(), None),
        other => (other.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canned response; tests build an `Observation` from it so each case starts with an
    /// empty JSON cache.
    struct Resp {
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
    const HEALTHY: Resp = Resp {
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
    const DEGRADED: Resp = Resp {
        status: 503,
        latency_ms: 1204,
        headers: &[("content-type", "text/html")],
        body: br#"{"status":"degraded"}"#,
    };

    /// A response whose body is not JSON.
    const HTML: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"<html>healthy</html>",
    };

    /// A JSON response whose root is an array, for paths that start with an index.
    const ARRAY: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: br#"[{"name":"first"},2]"#,
    };

    /// A JSON object without the fields the other responses have.
    const EMPTY: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"{}",
    };

    /// A body that is not valid UTF-8, which raw-body conditions must still handle.
    const BINARY: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"\xff\xfehealthy",
    };

    /// A 100-byte body, longer than a failure message quotes.
    const LONG: Resp = Resp {
        status: 200,
        latency_ms: 5,
        headers: &[],
        body: b"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789",
    };

    /// Parses and evaluates each condition against its response and compares the outcome with
    /// the expected one, reporting every mismatch at once so one run shows all of them.
    fn check(cases: &[(&str, &Resp, Result<(), &str>)]) {
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
    fn check_errors(cases: &[(&str, usize, &str)]) {
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
    fn indices_and_missing_paths_explain_where_the_path_broke() {
        check(&[
            (
                "body.items[0].name != \"x\"",
                &HEALTHY,
                Err(r#"body.items[0].name != "x" failed: got "x""#),
            ),
            ("body.items[1].name != \"x\"", &HEALTHY, Ok(())),
            ("body.items[1].id == 8", &HEALTHY, Ok(())),
            ("body[0].name == \"first\"", &ARRAY, Ok(())),
            ("body[1] == 2", &ARRAY, Ok(())),
            (
                "body[2] == 2",
                &ARRAY,
                Err("body[2] == 2 failed: body[2] not found (body has 2 elements)"),
            ),
            (
                "body.status == \"ok\"",
                &ARRAY,
                Err(r#"body.status == "ok" failed: body.status not found (body is an array)"#),
            ),
            (
                "body.items[5].name == \"x\"",
                &HEALTHY,
                Err(
                    r#"body.items[5].name == "x" failed: body.items[5] not found (body.items has 2 elements)"#,
                ),
            ),
            (
                "body.one[1] == 1",
                &HEALTHY,
                Err("body.one[1] == 1 failed: body.one[1] not found (body.one has 1 element)"),
            ),
            (
                "body.items[0].name.first == \"x\"",
                &HEALTHY,
                Err(
                    r#"body.items[0].name.first == "x" failed: body.items[0].name.first not found (body.items[0].name is a string)"#,
                ),
            ),
            (
                "body.data[0] == 1",
                &HEALTHY,
                Err("body.data[0] == 1 failed: body.data[0] not found (body.data is an object)"),
            ),
            (
                "body.data.missing.deeper == 1",
                &HEALTHY,
                Err("body.data.missing.deeper == 1 failed: body.data.missing not found"),
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
    fn placeholder_errors_point_at_the_placeholder() {
        let expected = "expected status, latency, body, body.<path>, header.<name>, cert.expires_in or len(...)";
        check_errors(&[
            (
                "stauts == 200",
                1,
                &format!("unknown placeholder \"stauts\"; {expected}; did you mean \"status\"?"),
            ),
            (
                "bdy.status == \"ok\"",
                1,
                &format!(
                    "unknown placeholder \"bdy.status\"; {expected}; did you mean \"body.status\"?"
                ),
            ),
            (
                "[STATUS] == 200",
                1,
                &format!("unknown placeholder \"[STATUS]\"; {expected}; did you mean \"status\"?"),
            ),
            (
                ".status == \"ok\"",
                1,
                &format!(
                    "unknown placeholder \".status\"; {expected}; did you mean \"body.status\"?"
                ),
            ),
            (
                "headers.x == \"a\"",
                1,
                &format!(
                    "unknown placeholder \"headers.x\"; {expected}; did you mean \"header.x\"?"
                ),
            ),
            (
                "status2 == 1",
                1,
                &format!("unknown placeholder \"status2\"; {expected}; did you mean \"status\"?"),
            ),
            (
                "  foo == 1",
                3,
                &format!("unknown placeholder \"foo\"; {expected}"),
            ),
            (
                "== 200",
                1,
                &format!("missing placeholder before ==; {expected}"),
            ),
            (
                "200 ==",
                7,
                &format!("missing placeholder after ==; {expected}"),
            ),
            (
                "200 == 300",
                8,
                &format!("expected a placeholder after ==, found 300; {expected}"),
            ),
            (
                "status.code == 1",
                7,
                "status is a number and has no fields or elements",
            ),
            (
                "latency[0] < 1s",
                8,
                "latency is a duration and has no fields or elements",
            ),
            (
                "body. == 1",
                6,
                "expected a field name after \".\", as in body.status",
            ),
            (
                "body[x] == 1",
                6,
                "expected an array index (0, 1, 2, ...) after \"[\"",
            ),
            ("body[0 == 1", 7, "expected \"]\" after the array index"),
            (
                "body[99999999999999999999999] == 1",
                6,
                "the array index is too large",
            ),
            (
                "header == \"x\"",
                7,
                "expected \".\" and a header name after header, as in header.content-type",
            ),
            (
                "header. == \"x\"",
                8,
                "expected a header name after \"header.\", as in header.content-type",
            ),
            (
                "header.x.y == \"a\"",
                9,
                "a header value is a string and has no fields or elements",
            ),
            (
                "len body > 0",
                5,
                "expected \"(\" after len, as in len(body.items)",
            ),
            ("len(body > 0", 10, "expected \")\" to close len("),
            (
                "len(status) > 0",
                5,
                "len() applies to body, body.<path> or header.<name>, not status",
            ),
            (
                "len(len(body)) > 0",
                5,
                "len() applies to body, body.<path> or header.<name>, not len(body)",
            ),
        ]);
    }

    #[test]
    fn operator_errors_point_at_the_operator() {
        let expected = "expected one of ==, !=, <, <=, >, >=, contains, matches";
        check_errors(&[
            (
                "status",
                7,
                &format!("missing operator after status; {expected}"),
            ),
            (
                "len(body.items)",
                16,
                &format!("missing operator after len(body.items); {expected}"),
            ),
            (
                "status 200",
                8,
                &format!("missing operator before 200; {expected}"),
            ),
            (
                "status = 200",
                8,
                &format!("unknown operator \"=\"; {expected}; did you mean ==?"),
            ),
            (
                "status => 200",
                8,
                &format!("unknown operator \"=>\"; {expected}; did you mean >=?"),
            ),
            (
                "body.status equals \"ok\"",
                13,
                &format!("unknown operator \"equals\"; {expected}; did you mean ==?"),
            ),
            (
                "body contain \"x\"",
                6,
                &format!("unknown operator \"contain\"; {expected}; did you mean contains?"),
            ),
            (
                "body.v =~ \"x\"",
                8,
                &format!("unknown operator \"=~\"; {expected}; did you mean matches?"),
            ),
            (
                "status & 200",
                8,
                &format!("unknown operator \"&\"; {expected}"),
            ),
            // Columns count characters, not bytes: "ï" is one column although it is two bytes.
            (
                "body.naïve = 1",
                12,
                &format!("unknown operator \"=\"; {expected}; did you mean ==?"),
            ),
            (
                "\"x\" contains body",
                5,
                "contains needs the placeholder on its left, as in body contains \"ok\"",
            ),
        ]);
    }

    #[test]
    fn literal_errors_point_at_the_literal() {
        let values =
            "expected a number, a \"string\", a duration such as 800ms, true, false or null";
        check_errors(&[
            ("", 1, "empty condition"),
            ("   ", 1, "empty condition"),
            (
                "status ==",
                10,
                &format!("missing value after ==; {values}"),
            ),
            (
                "status == ok",
                11,
                "expected a value after ==, found ok; strings need double quotes, as in \"ok\"",
            ),
            (
                "body.ok == True",
                12,
                "expected a value after ==, found True; did you mean true?",
            ),
            (
                "body.a == body.b",
                11,
                "expected a value after ==, found body.b; the right side must be a value; comparing two placeholders is not supported",
            ),
            (
                "status == (1)",
                11,
                &format!("expected a value after ==, found (1); {values}"),
            ),
            (
                "body.status == \"ok",
                16,
                "unterminated string; it needs a closing \"",
            ),
            (
                "body == \"a\\",
                9,
                "unterminated string; it needs a closing \"",
            ),
            (
                "body == \"a\\d\"",
                11,
                "unknown escape \"\\d\" in a string; write \\\\ for a backslash, as in \"\\\\d\"",
            ),
            ("status == 1.2.3", 11, "bad number \"1.2.3\""),
            ("status == 1.", 11, "bad number \"1.\""),
            ("status == .5", 11, "bad number \".5\""),
            ("status == -", 11, "bad number \"-\""),
            ("status == 1e5", 11, "bad number \"1e5\""),
            (
                "latency < 5sec",
                12,
                "unknown duration unit \"sec\"; expected ms, s, m, h or d; did you mean 5s?",
            ),
            (
                "latency < 1.5y",
                14,
                "unknown duration unit \"y\"; expected ms, s, m, h or d",
            ),
            ("latency < -5s", 11, "a duration cannot be negative"),
            (
                "latency < 99999999999999999999d",
                11,
                "the duration \"99999999999999999999d\" is too large",
            ),
            (
                "status == 200 ok",
                15,
                "unexpected input after the condition: ok",
            ),
            (
                "status == 200 && latency < 1s",
                15,
                "unexpected input after the condition: && latency < 1s; conditions cannot be combined, so list each one separately",
            ),
        ]);
    }

    #[test]
    fn regex_errors_point_into_the_pattern() {
        check_errors(&[
            (
                "body matches \"^v[0-9\"",
                17,
                "invalid regex: unclosed character class",
            ),
            // The column skips the escape: the pattern's "(" is after the two-character \\.
            (
                "body matches \"\\\\.(\"",
                18,
                "invalid regex: unclosed group",
            ),
            (
                "body matches 5",
                14,
                "matches needs a regular expression in double quotes, as in \"^ok\", on the right, not a number",
            ),
            (
                "body.v matches true",
                16,
                "matches needs a regular expression in double quotes, as in \"^ok\", on the right, not a boolean",
            ),
        ]);
    }

    #[test]
    fn type_mismatches_known_before_evaluation_are_rejected() {
        check_errors(&[
            (
                "status == \"200\"",
                11,
                "status compares only with numbers, not a string",
            ),
            (
                "status == 200ms",
                11,
                "status compares only with numbers, not a duration",
            ),
            (
                "status contains \"2\"",
                8,
                "contains does not apply to status, which is a number",
            ),
            (
                "latency < 800",
                11,
                "latency compares only with durations; did you mean 800ms?",
            ),
            (
                "latency < \"fast\"",
                11,
                "latency compares only with durations such as 800ms, not a string",
            ),
            (
                "latency matches \"1\"",
                9,
                "matches does not apply to latency, which is a duration",
            ),
            (
                "len(body) == \"3\"",
                14,
                "len(body) compares only with numbers, not a string",
            ),
            (
                "len(body.items) contains 1",
                17,
                "contains does not apply to len(body.items), which is a number",
            ),
            (
                "body.status < \"ok\"",
                15,
                "< needs a number or a duration on the right, not a string",
            ),
            (
                "body.ok >= true",
                12,
                ">= needs a number or a duration on the right, not a boolean",
            ),
            (
                "body.error > null",
                14,
                "> needs a number or a duration on the right, not null",
            ),
            (
                "header.x <= \"a\"",
                13,
                "<= needs a number or a duration on the right, not a string",
            ),
            (
                "body.count == 5s",
                15,
                "a duration compares only with latency and cert.expires_in, not with body.count",
            ),
            (
                "body.ids contains 5s",
                19,
                "contains needs a string on the right, not a duration",
            ),
            (
                "header.x contains 5",
                19,
                "contains needs a string on the right, not a number",
            ),
            (
                "body contains null",
                15,
                "contains needs a string on the right, not null",
            ),
            (
                "body == 5",
                9,
                "body compares only with strings, not a number; use body.<path> to compare a JSON value",
            ),
            (
                "header.x == true",
                13,
                "header.x compares only with strings and numbers, not a boolean",
            ),
            (
                "800 > latency",
                1,
                "latency compares only with durations; did you mean 800ms?",
            ),
        ]);
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

    #[test]
    fn cert_errors_point_at_the_field_and_suggest_the_fix() {
        let expected = "expected status, latency, body, body.<path>, header.<name>, cert.expires_in or len(...)";
        check_errors(&[
            (
                "cert.expire_in > 14d",
                6,
                "unknown certificate field \"cert.expire_in\"; expected cert.expires_in; did you \
                 mean \"cert.expires_in\"?",
            ),
            (
                "cert.expiry > 14d",
                6,
                "unknown certificate field \"cert.expiry\"; expected cert.expires_in; did you mean \
                 \"cert.expires_in\"?",
            ),
            (
                "cert.issuer == \"x\"",
                6,
                "unknown certificate field \"cert.issuer\"; expected cert.expires_in",
            ),
            (
                "cert > 14d",
                5,
                "expected \".expires_in\" after cert, as in cert.expires_in > 14d",
            ),
            (
                "cert. > 14d",
                6,
                "expected a field name after \"cert.\", as in cert.expires_in",
            ),
            (
                "certificate.expires_in > 14d",
                1,
                &format!(
                    "unknown placeholder \"certificate.expires_in\"; {expected}; did you mean \
                     \"cert.expires_in\"?"
                ),
            ),
            (
                "cert_expiry > 14d",
                1,
                &format!(
                    "unknown placeholder \"cert_expiry\"; {expected}; did you mean \
                     \"cert.expires_in\"?"
                ),
            ),
            (
                "cert.expires_in.days > 1",
                16,
                "cert.expires_in is a duration and has no fields or elements",
            ),
            (
                "cert.expires_in > 14",
                19,
                "cert.expires_in compares only with durations; did you mean 14d?",
            ),
            (
                "cert.expires_in > \"soon\"",
                19,
                "cert.expires_in compares only with durations such as 14d, not a string",
            ),
            (
                "cert.expires_in contains \"x\"",
                17,
                "contains does not apply to cert.expires_in, which is a duration",
            ),
            (
                "len(cert.expires_in) > 1",
                5,
                "len() applies to body, body.<path> or header.<name>, not cert.expires_in",
            ),
            (
                "cert.expires_in > 14days",
                21,
                "unknown duration unit \"days\"; expected ms, s, m, h or d; did you mean 14d?",
            ),
        ]);
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
