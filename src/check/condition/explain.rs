//! Wording a failed condition: the text after `failed: `, such as `got 503`, `got 1.204s`,
//! `body.items[5] not found (body.items has 2 elements)` or `5 days left (the certificate
//! expires on ...)`. Values are quoted cut to [`SHOWN_CHARS`] characters, so a large body cannot
//! flood an alert.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::Condition;
use super::ast::{Num, Subject, Target};
use crate::check::tls;
use crate::duration;

/// How many characters of a body or JSON value a failure message quotes before cutting it off.
const SHOWN_CHARS: usize = 80;

impl Condition {
    /// Writes the part of a failure message that follows `failed: `.
    pub(super) fn explain(&self, failure: Failure<'_>) -> String {
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
                let (Subject::Value(Target::Json(path)) | Subject::Len(Target::Json(path))) =
                    &self.subject
                else {
                    return format!("{target} not found");
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

/// Why a condition failed, kept unformatted until an explanation is needed.
pub(super) enum Failure<'v> {
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
pub(super) enum Missing {
    Key,
    /// The index was past the end of an array of this many elements.
    Index(usize),
    /// The step was applied to a value of this kind, which it cannot look into.
    Type(&'static str),
}

/// The value a failed condition saw, formatted as `got ...`.
pub(super) enum Shown<'v> {
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

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ARRAY, HEALTHY, check};

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
}
